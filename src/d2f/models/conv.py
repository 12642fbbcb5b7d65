"""A 3x3 convolution that takes NNPACK's Winograd path on the CPU at inference time.

Most of the defocus network's arithmetic is wide 3x3, stride-1 convolutions (256 channels in the RefineNet
decoder, 256 -> 128 -> 32 in the head). On the CPU, NNPACK computes them with Winograd transforms, which
need about a third of the multiplications of the direct method that PyTorch picks for a single image
(the decoder runs over twice as fast), and agree with it to float rounding (relative differences around
1e-6). Narrow convolutions, such as the fusion network's, gain nothing from it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# Below this many pixels per channel the direct method is faster (measured on a 2-core AMD EPYC).
_WINOGRAD_MIN_PIXELS = 1024


def conv3x3(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, padding: int) -> torch.Tensor:
    """``F.conv2d`` of a 3x3, stride-1 kernel, through NNPACK's Winograd path when it applies.

    It applies to a float32, contiguous 4-d CPU input of at least 1024 pixels and float32 weights when
    no gradient is needed, CPU autocast is off, and NNPACK is available and enabled
    (``torch.backends.nnpack.flags(enabled=False)`` turns it off). Otherwise, and if NNPACK declines,
    this is the ordinary convolution.
    """
    if _winograd_applies(x, weight):
        try:
            return torch._nnpack_spatial_convolution(x, weight, bias, [padding, padding])
        except RuntimeError:
            pass  # NNPACK declined (it gives no reason): the direct method computes the same
    return F.conv2d(x, weight, bias, padding=padding)


class Conv3x3(nn.Conv2d):
    """``nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)`` computed by :func:`conv3x3`.

    Same parameters and state-dict keys as the ``nn.Conv2d`` it replaces.
    """

    def __init__(self, in_channels: int, out_channels: int, *, bias: bool = True):
        super().__init__(in_channels, out_channels, kernel_size=3, padding=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return conv3x3(x, self.weight, self.bias, padding=1)


def _winograd_applies(x: torch.Tensor, weight: torch.Tensor) -> bool:
    needs_gradient = torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad)
    return (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and weight.dtype == torch.float32
        and x.dim() == 4
        and x.shape[-2] * x.shape[-1] >= _WINOGRAD_MIN_PIXELS
        and x.is_contiguous()
        and not needs_gradient
        and not torch.is_autocast_enabled("cpu")
        and torch._C._get_nnpack_enabled()
        and torch.backends.nnpack.is_available()
    )
