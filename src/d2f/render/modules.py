"""Thin ``nn.Module`` wrappers around the renderer's functions, for use inside models."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from d2f.render.kernels import KERNEL_SIZES, Aperture, check_kernel_sizes
from d2f.render.layered import layered_blur, resolve_backend, weighted_layered_render
from d2f.render.radiance import saturation_weight


class _LayeredBase(nn.Module):
    def __init__(
        self,
        kernel_sizes: Sequence[int] = KERNEL_SIZES,
        alpha: float = 100.0,
        backend: str = "auto",
        aperture: Aperture | None = None,
        cats_eye: float = 0.0,
    ):
        super().__init__()
        self.kernel_sizes = check_kernel_sizes(kernel_sizes)
        self.alpha = float(alpha)
        resolve_backend(backend, 1, 1, torch.device("cpu"))  # fail early on an unknown name
        self.backend = backend
        self.aperture = aperture
        self.cats_eye = float(cats_eye)

    def extra_repr(self) -> str:
        text = f"kernel_sizes={self.kernel_sizes}, alpha={self.alpha}, backend={self.backend!r}"
        if self.aperture is not None or self.cats_eye:
            text += f", aperture={self.aperture}, cats_eye={self.cats_eye}"
        return text


class LayeredBlur(_LayeredBase):
    """Module form of :func:`d2f.render.layered_blur`."""

    def forward(self, x: torch.Tensor, defocus: torch.Tensor) -> torch.Tensor:
        return layered_blur(
            x,
            defocus,
            kernel_sizes=self.kernel_sizes,
            alpha=self.alpha,
            backend=self.backend,
            aperture=self.aperture,
            cats_eye=self.cats_eye,
        )


class WeightedLayeredRender(_LayeredBase):
    """Module form of :func:`d2f.render.weighted_layered_render`."""

    def forward(self, image: torch.Tensor, defocus: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return weighted_layered_render(
            image,
            defocus,
            weight,
            kernel_sizes=self.kernel_sizes,
            alpha=self.alpha,
            backend=self.backend,
            aperture=self.aperture,
            cats_eye=self.cats_eye,
        )


class SaturationWeight(nn.Module):
    """Module form of :func:`d2f.render.saturation_weight`."""

    def __init__(self, threshold: float = 0.99, gain: float = 3.0, power: float = 5.0):
        super().__init__()
        self.threshold, self.gain, self.power = float(threshold), float(gain), float(power)

    def forward(self, image: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return saturation_weight(image, weight, self.threshold, self.gain, self.power)

    def extra_repr(self) -> str:
        return f"threshold={self.threshold}, gain={self.gain}, power={self.power}"
