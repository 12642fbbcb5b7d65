"""The D2F pipeline as one module: image in, bokeh out (with its intermediate maps)."""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from d2f.errors import InputError
from d2f.models.config import D2FConfig
from d2f.models.defocus_net import DefocusNet
from d2f.models.fusion_net import FusionNet
from d2f.models.radiance_net import RadianceNet
from d2f.render.checks import check_finite, check_non_negative, check_same_size, check_tensor
from d2f.render.layered import weighted_layered_render
from d2f.render.radiance import saturation_weight

PRECISIONS = ("fp32", "bf16")

# Pixels per strip of the full-resolution fusion without autograd: bounds its working set (the fusion
# network's widest activation is 64 floats per pixel, 256 MiB per 2**20 pixels).
_STRIP_PIXELS = {"cpu": 2**20, "default": 2**23}


@dataclass
class D2FOutput:
    """What :class:`D2F` computes for a batch of N images of size (H, W), stage 1 running at (h, w).

    Attributes:
        bokeh: (N, 3, H, W) the rendered photo, in [0, 1].
        defocus: (N, 1, h, w) the hallucinated defocus map (0 in focus; nominally in [0, 1]).
        bokeh_small: (N, 3, h, w) the weighted layered rendering at stage-1 resolution.
        fusion_mask: (N, 1, H, W) in [0, 1]: 1 keeps the sharp input, 0 takes the rendered bokeh.
    """

    bokeh: torch.Tensor
    defocus: torch.Tensor
    bokeh_small: torch.Tensor
    fusion_mask: torch.Tensor


class D2F(nn.Module):
    """Defocus to Focus: photo-realistic bokeh from one all-in-focus image.

    1. ``I_s``: the image resized (bilinear, ``align_corners=False``, no antialiasing) to
       :meth:`stage1_size`;
    2. ``D = defocus_net(I_s)``; ``W = saturation_weight(I_s, radiance_net(I_s))``;
       ``B_s = weighted_layered_render(I_s, D, W)``;
    3. ``B`` = ``B_s`` and ``D_up`` = ``D`` bilinearly upsampled to (H, W);
       ``M = clamp(fusion_net(D_up, I), 0, 1)`` (the network sees ``1 - D_up`` and the luma of ``I``);
       ``bokeh = clamp(M * I + (1 - M) * B, 0, 1)``.

    Without autograd (``torch.no_grad`` or ``torch.inference_mode``) step 3 runs on horizontal strips
    that overlap by the fusion network's receptive radius, so memory stays bounded on large photos and
    the result equals the one-piece computation.

    Build it from a :class:`D2FConfig`, or load weights with :func:`d2f.load_official` or
    :func:`d2f.load`; call ``.eval()`` before inference (the loaders do).
    """

    def __init__(self, config: D2FConfig | None = None):
        super().__init__()
        self.config = config or D2FConfig()
        self.defocus_net = DefocusNet(
            self.config.encoder, self.config.decoder_features, self.config.head_features
        )
        self.radiance_net = RadianceNet(self.config.radiance_features)
        self.fusion_net = FusionNet(self.config.fusion_features)

    def stage1_size(self, height: int, width: int) -> tuple[int, int]:
        """Size (h, w) of stage 1 for an (H, W) image.

        ``round(H / scale / multiple) * multiple`` (rounding halves to even, like the reference's numpy)
        and at least ``multiple``; with the defaults, half the size in multiples of 64.
        """
        scale, multiple = self.config.stage1_scale, self.config.stage1_multiple
        return tuple(max(multiple, round(side / scale / multiple) * multiple) for side in (height, width))

    def forward(
        self,
        image: torch.Tensor,
        *,
        precision: str = "fp32",
        strip_height: int | None = None,
        strength: float = 1.0,
        blur_scale: float | torch.Tensor | None = None,
    ) -> D2FOutput:
        """Render bokeh for a batch of images.

        Args:
            image: (N, 3, H, W) floating point, values in [0, 1], on the model's device; any size.
            precision: ``"fp32"``, or ``"bf16"`` to run the three networks under bfloat16 autocast with
                channels-last tensors (faster on recent GPUs); the renderer and the final blend stay
                float32 either way.
            strip_height: rows per strip of the full-resolution fusion without autograd (default:
                about a megapixel per strip on the CPU); results do not depend on it.
            strength: scales the blur: the defocus map is multiplied by it and clipped to the renderer's
                range [0, 1] before rendering and fusion. 1 (the default) is the model's own map, as it
                is; 0 blurs nothing and ``bokeh`` is the input itself, exactly.
            blur_scale: models with ``config.blur_scale`` only: the scene's blur scale, a number or one
                per image (N,), in D2F defocus units >= 0 (the defocus of the farthest background; 0.44
                is about a 20 px blur at half resolution). None uses ``config.blur_scale``.

        Returns:
            :class:`D2FOutput`, in the model's dtype.
        """
        image = self._check_image(image)
        _check_options(precision, strip_height)
        _check_factor("strength", strength)
        image_small = F.interpolate(
            image, size=self.stage1_size(*image.shape[-2:]), mode="bilinear", align_corners=False
        )
        defocus, bokeh_small = self.render_stage1(
            image_small, precision=precision, strength=strength, blur_scale=blur_scale
        )
        if strength == 0:
            # Everything is in focus: every pixel keeps the sharp input (not its resampled rendering).
            bokeh, fusion_mask = image.clone(), torch.ones_like(image[:, :1])
        else:
            bokeh, fusion_mask = self._fuse(image, defocus, bokeh_small, precision, strip_height)
        return D2FOutput(bokeh=bokeh, defocus=defocus, bokeh_small=bokeh_small, fusion_mask=fusion_mask)

    def render_stage1(
        self,
        image_small: torch.Tensor,
        *,
        precision: str = "fp32",
        strength: float = 1.0,
        blur_scale: float | torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Steps 1-2 on an image already at stage-1 size: ``(defocus, bokeh_small)``.

        The renderer runs in float32 (or wider) whatever ``precision`` says. A relative model's map
        (``config.blur_scale`` set) is first multiplied by the blur scale (see :meth:`forward`). With
        ``strength != 1`` the returned defocus map is the scaled and clipped one that was rendered;
        otherwise it is the network's map as it is, rendered clamped to [0, 1] when
        ``config.clamp_defocus`` is set.
        """
        config = self.config
        scale = self._blur_scale(blur_scale, image_small)
        with self._network_precision(image_small, precision):
            network_input = _memory_format(image_small, precision)
            defocus = self.predict_defocus(network_input).to(image_small.dtype).contiguous()
            radiance = self.radiance_net(network_input).to(image_small.dtype).contiguous()
        if scale is not None:
            defocus = defocus * scale
        if strength != 1:
            defocus = (defocus * strength).clamp(0, 1)
        weight = saturation_weight(
            image_small,
            radiance,
            threshold=config.saturation_threshold,
            gain=config.saturation_gain,
            power=config.saturation_power,
        )
        rendered_defocus = defocus.clamp(0, 1) if config.clamp_defocus else defocus
        bokeh_small = weighted_layered_render(
            image_small, rendered_defocus, weight, kernel_sizes=config.kernel_sizes, alpha=config.alpha
        ).to(image_small.dtype)
        return defocus, bokeh_small

    def defocus_network_size(self, height: int, width: int) -> tuple[int, int]:
        """Size (h, w) at which the defocus network runs for a stage-1 image of (height, width).

        The stage-1 size itself unless ``config.defocus_long_side`` is set and exceeded; then the
        image is shrunk, keeping its aspect, to that longer side, both sides in multiples of 32.
        """
        long_side = self.config.defocus_long_side
        if long_side is None or max(height, width) <= long_side:
            return height, width
        scale = long_side / max(height, width)
        return tuple(max(32, round(side * scale / 32) * 32) for side in (height, width))

    def predict_defocus(self, image_small: torch.Tensor) -> torch.Tensor:
        """The defocus network's raw map (N, 1, h, w) for an image (N, 3, h, w) at stage-1 size.

        The network runs at :meth:`defocus_network_size` and its map is upsampled back to (h, w);
        neither ``strength`` nor the clamp is applied.
        """
        size = tuple(image_small.shape[-2:])
        network_size = self.defocus_network_size(*size)
        if network_size == size:
            return self.defocus_net(image_small)
        shrunk = F.interpolate(
            image_small, size=network_size, mode="bilinear", antialias=True, align_corners=False
        )
        defocus = self.defocus_net(shrunk)
        return F.interpolate(defocus, size=size, mode="bilinear", align_corners=False)

    def fuse(
        self,
        image: torch.Tensor,
        defocus: torch.Tensor,
        bokeh_small: torch.Tensor,
        *,
        precision: str = "fp32",
        strip_height: int | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Step 3 alone (for stage-2 training and profiling): fuse stage 1's results with the image.

        Args:
            image: (N, 3, H, W) the sharp input, in [0, 1].
            defocus: (N, 1, h, w) and bokeh_small: (N, 3, h, w), stage 1's results at any resolution.
            precision, strip_height: as for :meth:`forward`.

        Returns:
            ``(bokeh, fusion_mask)``: (N, 3, H, W) and (N, 1, H, W), both in [0, 1].
        """
        image = self._check_image(image)
        _check_options(precision, strip_height)
        for tensor, name, channels in ((defocus, "defocus", 1), (bokeh_small, "bokeh_small", 3)):
            check_tensor(tensor, name, channels=(channels,))
            if tensor.shape[0] != image.shape[0] or tensor.device != image.device:
                raise InputError(
                    f"{name}: expected a batch of {image.shape[0]} on {image.device} like the image, "
                    f"got shape {tuple(tensor.shape)} on {tensor.device}"
                )
        check_same_size(defocus, bokeh_small, "defocus", "bokeh_small")
        return self._fuse(
            image, defocus.to(image.dtype), bokeh_small.to(image.dtype), precision, strip_height
        )

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``model.safetensors`` and ``config.json`` into ``directory``; see :func:`d2f.load`."""
        # checkpoint.py builds D2F models, so it can only be imported once this module is loaded.
        from d2f.models.checkpoint import save_pretrained

        return save_pretrained(self, directory)

    def _check_image(self, image: object) -> torch.Tensor:
        check_tensor(image, "image", channels=(3,))
        parameter = next(self.parameters())
        if image.device != parameter.device:
            raise InputError(f"image: expected the model's device ({parameter.device}), got {image.device}")
        check_finite(image, "image")
        return image.to(parameter.dtype)

    def _blur_scale(
        self, blur_scale: float | torch.Tensor | None, image: torch.Tensor
    ) -> float | torch.Tensor | None:
        """The factor of a relative model's map: a number, or an (N, 1, 1, 1) tensor; None otherwise."""
        if self.config.blur_scale is None:
            if blur_scale is not None:
                raise InputError(
                    "blur_scale: this model predicts D2F defocus itself (its config's blur_scale is None); "
                    "use strength to scale its blur"
                )
            return None
        if blur_scale is None:
            return self.config.blur_scale
        if isinstance(blur_scale, torch.Tensor):
            if blur_scale.dim() > 1 or blur_scale.numel() not in (1, image.shape[0]):
                raise InputError(
                    f"blur_scale: expected a number or one value per image ({image.shape[0]},), "
                    f"got shape {tuple(blur_scale.shape)}"
                )
            if not blur_scale.is_floating_point():
                raise InputError(f"blur_scale: expected a floating-point tensor, got {blur_scale.dtype}")
            check_finite(blur_scale, "blur_scale")
            check_non_negative(blur_scale, "blur_scale")
            return blur_scale.to(image.device, image.dtype).reshape(-1, 1, 1, 1)
        _check_factor("blur_scale", blur_scale)
        return float(blur_scale)

    def _network_precision(self, image: torch.Tensor, precision: str):
        if precision == "bf16":
            return torch.autocast(device_type=image.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _fuse(
        self,
        image: torch.Tensor,
        defocus: torch.Tensor,
        bokeh_small: torch.Tensor,
        precision: str,
        strip_height: int | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        height, width = image.shape[-2:]
        defocus_up = F.interpolate(defocus, size=(height, width), mode="bilinear", align_corners=False)
        bokeh_up = F.interpolate(bokeh_small, size=(height, width), mode="bilinear", align_corners=False)
        if torch.is_grad_enabled():
            return self._fuse_rows(image, defocus_up, bokeh_up, 0, height, precision)
        if strip_height is None:
            budget = _STRIP_PIXELS.get(image.device.type, _STRIP_PIXELS["default"])
            strip_height = max(16, budget // (image.shape[0] * width))
        bokeh = torch.empty_like(image)
        fusion_mask = torch.empty_like(defocus_up)
        for top in range(0, height, strip_height):
            bottom = min(height, top + strip_height)
            rows = slice(top, bottom)
            bokeh[..., rows, :], fusion_mask[..., rows, :] = self._fuse_rows(
                image, defocus_up, bokeh_up, top, bottom, precision
            )
        return bokeh, fusion_mask

    def _fuse_rows(
        self,
        image: torch.Tensor,
        defocus_up: torch.Tensor,
        bokeh_up: torch.Tensor,
        top: int,
        bottom: int,
        precision: str,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Blend and mask of rows ``top:bottom``, computed from inputs widened by the receptive radius."""
        radius = self.fusion_net.receptive_radius
        start, stop = max(0, top - radius), min(image.shape[-2], bottom + radius)
        with self._network_precision(image, precision):
            mask = self.fusion_net(defocus_up[..., start:stop, :], image[..., start:stop, :])
        mask = mask[..., top - start : bottom - start, :].to(image.dtype).clamp(0, 1)
        sharp, blurred = image[..., top:bottom, :], bokeh_up[..., top:bottom, :]
        return (mask * sharp + (1 - mask) * blurred).clamp(0, 1), mask


def _check_options(precision: str, strip_height: int | None) -> None:
    if precision not in PRECISIONS:
        raise InputError(f"precision: expected one of {PRECISIONS}, got {precision!r}")
    if strip_height is not None and (
        isinstance(strip_height, bool) or not isinstance(strip_height, int) or strip_height < 1
    ):
        raise InputError(f"strip_height: expected a positive integer, got {strip_height!r}")


def _check_factor(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
        raise InputError(f"{name}: expected a finite number >= 0, got {value!r}")


def _memory_format(x: torch.Tensor, precision: str) -> torch.Tensor:
    """Channels-last for the defocus network on the bf16 fast path, where GPU convolutions prefer it."""
    return x.contiguous(memory_format=torch.channels_last) if precision == "bf16" else x
