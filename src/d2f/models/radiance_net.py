"""The learned part of radiance virtualisation: a per-pixel weight for the layered renderer."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class RadianceNet(nn.Module):
    """Per-pixel MLP (1x1 convolutions 3 -> 16 -> 16 -> 1; ReLU, ReLU, sigmoid).

    Input: (N, 3, H, W) in [0, 1]. Output: (N, 1, H, W) weight in (0, 1), to be passed through
    :func:`d2f.render.saturation_weight` before rendering.
    """

    def __init__(self, features: int = 16):
        super().__init__()
        self.conv1 = nn.Conv2d(3, features, kernel_size=1)
        self.conv2 = nn.Conv2d(features, features, kernel_size=1)
        self.conv3 = nn.Conv2d(features, 1, kernel_size=1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        hidden = F.relu(self.conv1(image), inplace=True)
        hidden = F.relu(self.conv2(hidden), inplace=True)
        return torch.sigmoid(self.conv3(hidden))
