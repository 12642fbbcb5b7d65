"""Building blocks of the defocus network's RefineNet decoder (MiDaS style)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from d2f.models.conv import Conv3x3


class ResidualConvUnit(nn.Module):
    """``relu -> conv3x3 -> relu -> conv3x3`` plus a skip connection, at constant width.

    The reference applies its first ReLU in place, which overwrites the unit's input before the skip
    reads it: the skip therefore adds ``relu(x)``, not ``x``. This unit computes exactly that.

    Shapes: (N, C, H, W) -> (N, C, H, W).
    """

    def __init__(self, features: int):
        super().__init__()
        self.conv1 = Conv3x3(features, features)
        self.conv2 = Conv3x3(features, features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        activated = F.relu(x)
        hidden = F.relu(self.conv1(activated), inplace=True)
        return self.conv2(hidden) + activated


class FeatureFusionBlock(nn.Module):
    """Refines the coarser decoder path, adds a refined encoder feature map, upsamples by 2.

    ``out = residual2(path + residual1(lateral))`` (without the lateral term when there is none), then
    bilinear x2 upsampling with ``align_corners=True``. ``residual1`` exists even in the coarsest block,
    which never uses it, because the reference's checkpoints hold its weights.

    Shapes: path and lateral (N, C, H, W) -> (N, C, 2H, 2W).
    """

    def __init__(self, features: int):
        super().__init__()
        self.residual1 = ResidualConvUnit(features)
        self.residual2 = ResidualConvUnit(features)

    def forward(self, path: torch.Tensor, lateral: torch.Tensor | None = None) -> torch.Tensor:
        if lateral is not None:
            path = path + self.residual1(lateral)
        refined = self.residual2(path)
        return F.interpolate(refined, scale_factor=2, mode="bilinear", align_corners=True)
