"""Stage 1 of D2F: the defocus hallucination network (ResNeXt encoder, RefineNet decoder, head)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from d2f.errors import ConfigError, InputError
from d2f.models.blocks import FeatureFusionBlock
from d2f.models.conv import Conv3x3, conv3x3
from d2f.models.efficientnet_lite import EfficientNetLite0
from d2f.render.checks import check_tensor

#: The encoder's output stride: the network's input sides must be multiples of it.
ENCODER_STRIDE = 32

# Bilinear x2 upsampling (align_corners=False) followed by a 3-tap filter (w0, w1, w2), along one axis:
# output 2i + a = sum_t (_UPSAMPLE_PHASES[a] @ w)[t] * input[i - 1 + t], away from the border.
_UPSAMPLE_PHASES = torch.tensor(
    [
        [[0.75, 0.25, 0.0], [0.25, 0.75, 0.75], [0.0, 0.0, 0.25]],
        [[0.25, 0.0, 0.0], [0.75, 0.75, 0.25], [0.0, 0.25, 0.75]],
    ],
    dtype=torch.float64,
)

# Output pixels per strip of the defocus head without autograd (its widest activation holds 128 floats
# per output pixel, 256 MiB per 2**19 pixels, plus NNPACK's workspace of a similar size).
_HEAD_STRIP_PIXELS = {"cpu": 2**19, "default": 2**23}


class ResNetEncoder(nn.Module):
    """The four stages of a torchvision ResNet-family network, at strides 4, 8, 16 and 32.

    ``stem`` is ``conv1, bn1, relu, maxpool`` (folded into stage 1, as in the reference); the classifier
    is dropped. The network is built with ``weights=None``: nothing is ever downloaded.
    """

    def __init__(self, name: str):
        super().__init__()
        # Imported here: torchvision loads torch._dynamo (seconds on a small CPU), which d2f-lite never needs.
        import torchvision

        try:
            resnet = torchvision.models.get_model(name, weights=None)
        except ValueError as error:
            raise ConfigError(f"encoder: unknown torchvision model {name!r}") from error
        if not isinstance(resnet, torchvision.models.ResNet):
            raise ConfigError(f"encoder: expected a ResNet-family model, got {name!r}")
        self.stem = nn.Sequential(resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool)
        self.layer1, self.layer2 = resnet.layer1, resnet.layer2
        self.layer3, self.layer4 = resnet.layer3, resnet.layer4
        self.channels = tuple(_stage_channels(stage) for stage in self.stages())

    def stages(self) -> tuple[nn.Module, ...]:
        return (self.layer1, self.layer2, self.layer3, self.layer4)

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        features = []
        x = self.stem(image)
        for stage in self.stages():
            x = stage(x)
            features.append(x)
        return features


class RefineNetDecoder(nn.Module):
    """Lateral 3x3 convolutions to a common width, then fusion blocks from the coarsest level up.

    Output: (N, features, H/2, W/2) for encoder features at strides 4..32 of an (H, W) input.
    """

    def __init__(self, encoder_channels: tuple[int, ...], features: int):
        super().__init__()
        self.lateral1, self.lateral2, self.lateral3, self.lateral4 = (
            Conv3x3(channels, features, bias=False)
            for channels in encoder_channels
        )
        self.fusion1, self.fusion2, self.fusion3, self.fusion4 = (
            FeatureFusionBlock(features) for _ in range(4)
        )

    def forward(self, encoder_features: list[torch.Tensor]) -> torch.Tensor:
        level1, level2, level3, level4 = encoder_features
        path = self.fusion4(self.lateral4(level4))
        path = self.fusion3(path, self.lateral3(level3))
        path = self.fusion2(path, self.lateral2(level2))
        return self.fusion1(path, self.lateral1(level1))


class DefocusHead(nn.Module):
    """3x3 conv, bilinear x2 (``align_corners=False``), 3x3 conv, ReLU, 1x1 conv to one channel.

    No final activation: the defocus map is unbounded, nominally in [0, 1]. Without autograd, a large
    input is processed in horizontal strips, each widened by the rows its outputs depend on, so that
    the full-resolution activations (128 channels at the stage-1 size) never exist at once; the result
    equals the one-piece computation.
    """

    # Input rows that the outputs of input rows [top, bottom) depend on, above and below: conv2 reads one
    # upsampled row either side, which reads input row top - 1 (or bottom), which conv1 widens by one.
    strip_halo = 2

    def __init__(self, in_channels: int, features: tuple[int, int], out_channels: int = 1):
        super().__init__()
        hidden, narrow = features
        self.conv1 = Conv3x3(in_channels, hidden)
        self.conv2 = Conv3x3(hidden, narrow)
        self.conv3 = nn.Conv2d(narrow, out_channels, kernel_size=1)
        # A buffer follows the module to its device: no host-to-device copy (a GPU sync) per forward.
        self.register_buffer("upsample_phases", _UPSAMPLE_PHASES.clone(), persistent=False)

    def forward(self, x: torch.Tensor, *, strip_height: int | None = None) -> torch.Tensor:
        """(N, C, h, w) -> (N, out_channels, 2h, 2w); ``strip_height``: input rows per strip."""
        height, width = x.shape[-2:]
        if strip_height is None:
            budget = _HEAD_STRIP_PIXELS.get(x.device.type, _HEAD_STRIP_PIXELS["default"])
            strip_height = max(8, budget // (4 * x.shape[0] * width))
        if torch.is_grad_enabled() or strip_height >= height:
            return self._forward(x)
        strips = []
        for top in range(0, height, strip_height):
            bottom = min(height, top + strip_height)
            start, stop = max(0, top - self.strip_halo), min(height, bottom + self.strip_halo)
            strip = self._forward(x[..., start:stop, :])
            strips.append(strip[..., 2 * (top - start) : 2 * (bottom - start), :])
        return torch.cat(strips, dim=-2)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv3(F.relu(self._upsample_conv(self.conv1(x)), inplace=True))

    def _upsample_conv(self, hidden: torch.Tensor) -> torch.Tensor:
        """``conv2(upsample_x2(hidden))`` without the upsampled tensor (the head's largest).

        Output row ``2i + a`` of the composition reads rows ``i - 1 .. i + 1`` of ``hidden`` through a
        3x3 filter (``_UPSAMPLE_PHASES[a]`` applied to the conv's taps), and likewise for columns, so the
        four output phases are one convolution at the low resolution with four times the channels,
        interleaved by ``pixel_shuffle``: the same arithmetic on a quarter of the pixels, with no
        128-channel full-size tensor. Replicate padding reproduces the upsampling's clamped border; the
        outermost output rows and columns, where the convolution zero-pads the upsampled image, are
        computed literally from the two border rows or columns.
        """
        weight, bias = self.conv2.weight, self.conv2.bias
        with torch.autocast(weight.device.type, enabled=False):
            phases = self.upsample_phases.double()  # exact in any float dtype (quarters)
            kernels = torch.einsum("aij,ocjl,bkl->oabcik", phases, weight.double(), phases)
        kernels = kernels.reshape(-1, *weight.shape[1:]).to(weight.dtype)
        padded = F.pad(hidden, (1, 1, 1, 1), mode="replicate")
        bias = None if bias is None else bias.repeat_interleave(4)
        out = F.pixel_shuffle(conv3x3(padded, kernels, bias, padding=0), 2)
        top, bottom = self._literal(hidden[..., :2, :]), self._literal(hidden[..., -2:, :])
        out[..., :1, :], out[..., -1:, :] = top[..., :1, :], bottom[..., -1:, :]
        left, right = self._literal(hidden[..., :2]), self._literal(hidden[..., -2:])
        out[..., :1], out[..., -1:] = left[..., :1], right[..., -1:]
        return out

    def _literal(self, hidden: torch.Tensor) -> torch.Tensor:
        """``conv2(upsample_x2(hidden))`` as written, for the border bands."""
        return self.conv2(F.interpolate(hidden, scale_factor=2, mode="bilinear", align_corners=False))


class BlurRangeHead(nn.Module):
    """A photo's log disparity range (log 1/m) from :func:`pooled_features`: one linear layer.

    Fitted in closed form (ridge regression, :mod:`d2f.train.blur_range`) with the feature
    standardisation folded into its weights. Output: (N,) in at least float32, the log of a range in
    1/m.
    """

    def __init__(self, in_features: int):
        super().__init__()
        self.linear = nn.Linear(in_features, 1)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        # At least float32, even under autocast: the range is an exponent, and bf16 weights would round
        # it by about 1 %. (Features that bf16 networks computed shift it by about as much.)
        dtype = torch.promote_types(self.linear.weight.dtype, torch.float32)
        with torch.autocast(features.device.type, enabled=False):
            weight, bias = self.linear.weight.to(dtype), self.linear.bias.to(dtype)
            return F.linear(features.to(dtype), weight, bias)[:, 0]


def pooled_features(encoder_features: list[torch.Tensor], decoded: torch.Tensor) -> torch.Tensor:
    """(N, F): the spatial mean of every encoder level and of the decoder's output, concatenated, in
    at least float32."""
    dtype = torch.promote_types(decoded.dtype, torch.float32)
    return torch.cat([x.to(dtype).mean(dim=(2, 3)) for x in (*encoder_features, decoded)], dim=1)


class DefocusNet(nn.Module):
    """Defocus hallucination: an image to its defocus map, at the same resolution.

    Input: (N, 3, H, W) in [0, 1], H and W multiples of 32. Output: (N, out_channels, H, W): with one
    channel the defocus map, nominally in [0, 1] (0 is in focus; ``i / 14`` selects the renderer's kernel
    level ``i``); a depth model's two channels are disparity and focus logits (``D2FConfig.predicts``).
    With ``blur_range``, :meth:`predict` also gives each photo's log disparity range (:class:`BlurRangeHead`).
    """

    def __init__(
        self,
        encoder: str = "resnext50_32x4d",
        decoder_features: int = 256,
        head_features: tuple[int, int] = (128, 32),
        out_channels: int = 1,
        blur_range: bool = False,
    ):
        super().__init__()
        self.encoder = build_encoder(encoder)
        self.decoder = RefineNetDecoder(self.encoder.channels, decoder_features)
        self.head = DefocusHead(decoder_features, head_features, out_channels)
        self.pooled_size = sum(self.encoder.channels) + decoder_features
        self.range_head = BlurRangeHead(self.pooled_size) if blur_range else None

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.head(self.decoder(self.encoder(self._check_input(image))))

    def predict(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(map, log_range)``: :meth:`forward`'s map and the (N,) log disparity range (None without
        a range head)."""
        features = self.encoder(self._check_input(image))
        decoded = self.decoder(features)
        log_range = None
        if self.range_head is not None:
            log_range = self.range_head(pooled_features(features, decoded))
        return self.head(decoded), log_range

    def pooled(self, image: torch.Tensor) -> torch.Tensor:
        """The (N, :attr:`pooled_size`) features the range head reads (for fitting it)."""
        features = self.encoder(self._check_input(image))
        return pooled_features(features, self.decoder(features))

    def _check_input(self, image: torch.Tensor) -> torch.Tensor:
        check_tensor(image, "image", channels=(3,))
        height, width = image.shape[-2:]
        if height % ENCODER_STRIDE or width % ENCODER_STRIDE:
            raise InputError(
                f"image: expected height and width that are multiples of {ENCODER_STRIDE}, "
                f"got {height}x{width}"
            )
        return image


def build_encoder(name: str) -> nn.Module:
    """The encoder a config names: ``"efficientnet_lite0"`` (d2f-lite) or a torchvision ResNet."""
    if name == "efficientnet_lite0":
        return EfficientNetLite0()
    return ResNetEncoder(name)


def _stage_channels(stage: nn.Module) -> int:
    """Output channels of a ResNet stage: those of its last block's last convolution."""
    last_block = stage[-1]
    last_conv = last_block.conv3 if hasattr(last_block, "conv3") else last_block.conv2
    return last_conv.out_channels
