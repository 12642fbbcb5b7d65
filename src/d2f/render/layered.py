"""Weighted layered rendering: the stage-1 bokeh of D2F.

The image is cut into ``L = len(kernel_sizes) + 1`` soft layers by its defocus map; layer ``i`` is
blurred with a soft disk of diameter ``kernel_sizes[i - 1]`` (layer 0 stays sharp) and the layers are
composited back to front, each blurred layer covering what lies behind it by its blurred mask.

Two backends compute the same thing: ``"direct"`` (grouped convolutions, the literal form) and ``"fft"``
(one reflection padding by the largest radius, products with the kernels' spectra, one crop). Images
not larger than the largest kernel radius cannot be reflection-padded; both backends then pad by
replicating the border instead (so they still agree).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F

from d2f.errors import InputError
from d2f.render.checks import (
    check_finite,
    check_non_negative,
    check_same_size,
    check_tensor,
    compute_dtype,
)
from d2f.render.kernels import KERNEL_SIZES, check_kernel_sizes, soft_disk_kernel

BACKENDS = ("auto", "direct", "fft")

# Added to denominators as the reference does, so fully transparent pixels give 0 rather than NaN.
_EPSILON = 1e-10

# Spectra of one FFT chunk are kept under this many bytes (the working set is a few times that).
_CHUNK_BYTES = {"cpu": 96 * 2**20, "default": 512 * 2**20}

# Below this many pixels per image the direct backend is faster than the FFT set-up.
_DIRECT_MAX_PIXELS = 48 * 48

# One level of the stack: its blurred mask (N, 1, H, W) and blurred masked values (N, C, H, W).
Level = tuple[torch.Tensor, torch.Tensor]


def layer_masks(defocus: torch.Tensor, num_levels: int = 15, alpha: float = 100.0) -> torch.Tensor:
    """Soft masks of the depth-of-field layers.

    ``m_i = 0.5 + 0.5 * tanh(alpha * (1 / (L - 1) - |defocus - i / (L - 1)|))`` for ``i = 0 .. L - 1``:
    a pixel belongs to the levels within one interval of its defocus, with a smooth edge so that the
    defocus map receives gradients.

    Args:
        defocus: (N, 1, H, W) defocus map, nominally in [0, 1].
        num_levels: L >= 2.
        alpha: sharpness of the masks' edges.

    Returns:
        (N, L, H, W) masks in [0, 1].
    """
    check_tensor(defocus, "defocus", channels=(1,))
    check_finite(defocus, "defocus")
    if isinstance(num_levels, bool) or not isinstance(num_levels, int) or num_levels < 2:
        raise InputError(f"num_levels: expected an integer >= 2, got {num_levels!r}")
    interval = 1.0 / (num_levels - 1)
    # Level centres rounded from float64 like the reference's Python floats.
    centres = torch.tensor([i * interval for i in range(num_levels)], dtype=torch.float64)
    centres = centres.to(device=defocus.device, dtype=defocus.dtype).view(1, num_levels, 1, 1)
    return 0.5 + 0.5 * torch.tanh(alpha * (interval - (defocus - centres).abs()))


def layered_blur(
    x: torch.Tensor,
    defocus: torch.Tensor,
    *,
    kernel_sizes: Sequence[int] = KERNEL_SIZES,
    alpha: float = 100.0,
    backend: str = "auto",
) -> torch.Tensor:
    """Blur ``x`` layer by layer according to ``defocus`` and composite back to front.

    Args:
        x: (N, C, H, W) values to blur (an image, a radiance-weighted image, a weight map).
        defocus: (N, 1, H, W) defocus map; ``i / (L - 1)`` selects ``kernel_sizes[i - 1]``.
        kernel_sizes: odd kernel diameters of levels 1 .. L - 1.
        alpha: sharpness of the layer masks.
        backend: ``"direct"``, ``"fft"`` or ``"auto"`` (the faster one for the size and device).

    Returns:
        (N, C, H, W) in float32 or float64 (the wider of the inputs' dtypes and float32).
    """
    check_tensor(x, "x")
    _check_defocus(defocus, x, "x")
    check_finite(x, "x")
    dtype = compute_dtype(x, defocus)
    with _full_precision(x):
        accumulated, coverage = _render_layers(x.to(dtype), defocus.to(dtype), kernel_sizes, alpha, backend)
        return accumulated / (coverage + _EPSILON)


def weighted_layered_render(
    image: torch.Tensor,
    defocus: torch.Tensor,
    weight: torch.Tensor,
    *,
    kernel_sizes: Sequence[int] = KERNEL_SIZES,
    alpha: float = 100.0,
    backend: str = "auto",
) -> torch.Tensor:
    """Radiance-weighted layered rendering: ``layered_blur(I * W) / (layered_blur(W) + 1e-10)``.

    Both layered blurs run in one pass: the layer masks and their blurs are shared.

    Args:
        image: (N, 3, H, W) in [0, 1].
        defocus: (N, 1, H, W) defocus map.
        weight: (N, 1, H, W) or (N, 3, H, W) non-negative radiance weight, e.g. from
            :func:`d2f.render.saturation_weight`.
        kernel_sizes, alpha, backend: as for :func:`layered_blur`.

    Returns:
        (N, 3, H, W) bokeh image, in float32 or float64.
    """
    check_tensor(image, "image", channels=(3,))
    _check_defocus(defocus, image, "image")
    check_tensor(weight, "weight", channels=(1, 3))
    check_same_size(image, weight, "image", "weight")
    check_finite(image, "image")
    check_finite(weight, "weight")
    check_non_negative(weight, "weight")
    dtype = compute_dtype(image, defocus, weight)
    with _full_precision(image):
        image, defocus, weight = image.to(dtype), defocus.to(dtype), weight.to(dtype)
        weight = weight.expand_as(image)
        values = torch.cat([image * weight, weight], dim=1)
        accumulated, coverage = _render_layers(values, defocus, kernel_sizes, alpha, backend)
        radiance = accumulated[:, :3] / (coverage + _EPSILON)
        total_weight = accumulated[:, 3:] / (coverage + _EPSILON)
        return radiance / (total_weight + _EPSILON)


def _check_defocus(defocus: torch.Tensor, reference: torch.Tensor, reference_name: str) -> None:
    check_tensor(defocus, "defocus", channels=(1,))
    check_same_size(reference, defocus, reference_name, "defocus")
    check_finite(defocus, "defocus")


def _full_precision(reference: torch.Tensor):
    return torch.autocast(device_type=reference.device.type, enabled=False)


def resolve_backend(backend: str, height: int, width: int, device: torch.device) -> str:
    """The backend that ``backend`` names for an image of this size on this device."""
    if backend not in BACKENDS:
        raise InputError(f"backend: expected one of {BACKENDS}, got {backend!r}")
    if backend != "auto":
        return backend
    if device.type != "cpu":
        return "fft"
    return "direct" if height * width <= _DIRECT_MAX_PIXELS else "fft"


def padding_mode(height: int, width: int, kernel_sizes: Sequence[int]) -> str:
    """``"reflect"``, or ``"replicate"`` when the image is too small to reflect the largest radius."""
    return "reflect" if min(height, width) > max(kernel_sizes) // 2 else "replicate"


def _render_layers(
    values: torch.Tensor,
    defocus: torch.Tensor,
    kernel_sizes: Sequence[int],
    alpha: float,
    backend: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Composite the blurred layers back to front; returns the accumulated values and coverage."""
    sizes = check_kernel_sizes(kernel_sizes)
    height, width = values.shape[-2:]
    backend = resolve_backend(backend, height, width, values.device)
    masks = layer_masks(defocus, len(sizes) + 1, alpha)
    blurred_levels = _blur_levels_fft if backend == "fft" else _blur_levels_direct
    accumulated = torch.zeros_like(values)
    coverage = torch.zeros_like(defocus)
    for blurred_mask, blurred_values in blurred_levels(values, masks, sizes):
        accumulated = accumulated * (1 - blurred_mask) + blurred_values
        coverage = coverage * (1 - blurred_mask) + blurred_mask
    return accumulated, coverage


def _sharp_level(values: torch.Tensor, masks: torch.Tensor) -> Level:
    mask = masks[:, :1]
    return mask, mask * values


def _stack_level(values: torch.Tensor, masks: torch.Tensor, level: int) -> torch.Tensor:
    """(N, 1 + C, H, W): the level's mask and the values it selects, blurred together."""
    mask = masks[:, level : level + 1]
    return torch.cat([mask, mask * values], dim=1)


def _blur_levels_direct(values: torch.Tensor, masks: torch.Tensor, sizes: tuple[int, ...]) -> Iterator[Level]:
    """Levels from the farthest to the sharp one, each blurred by a depthwise convolution."""
    mode = padding_mode(*values.shape[-2:], sizes)
    channels = 1 + values.shape[1]
    for level in range(len(sizes), 0, -1):
        size = sizes[level - 1]
        radius = size // 2
        kernel = soft_disk_kernel(size, device=values.device, dtype=values.dtype)
        stacked = F.pad(_stack_level(values, masks, level), (radius,) * 4, mode=mode)
        blurred = F.conv2d(stacked, kernel.expand(channels, 1, size, size), groups=channels)
        yield blurred[:, :1], blurred[:, 1:]
    yield _sharp_level(values, masks)


def _blur_levels_fft(values: torch.Tensor, masks: torch.Tensor, sizes: tuple[int, ...]) -> Iterator[Level]:
    """Levels from the farthest to the sharp one, blurred by products of spectra, in chunks of levels.

    Padding once by the largest radius contains every smaller level's padding, and the crop keeps only
    outputs whose kernel footprint lies inside the padded image, so circular convolution never wraps
    into them: the result equals the direct backend's up to rounding.
    """
    height, width = values.shape[-2:]
    margin = max(sizes) // 2
    mode = padding_mode(height, width, sizes)
    fft_shape = (next_fast_size(height + 2 * margin), next_fast_size(width + 2 * margin, even=True))
    spectra = kernel_spectra(sizes, fft_shape, device=values.device, dtype=values.dtype)
    channels = 1 + values.shape[1]
    for chunk in _level_chunks(len(sizes), values.shape[0] * channels, fft_shape, values.device):
        stacked = torch.stack([_stack_level(values, masks, level) for level in chunk], dim=1)
        padded = F.pad(stacked.flatten(0, 1), (margin,) * 4, mode=mode).unflatten(0, stacked.shape[:2])
        spectrum = torch.fft.rfft2(padded, s=fft_shape)
        level_spectra = spectra[[level - 1 for level in chunk]].view(1, len(chunk), 1, *spectrum.shape[-2:])
        spectrum = torch.view_as_complex(torch.view_as_real(spectrum) * level_spectra.unsqueeze(-1))
        blurred = torch.fft.irfft2(spectrum, s=fft_shape)[..., margin : margin + height, margin : margin + width]
        for index in range(len(chunk)):
            yield blurred[:, index, :1], blurred[:, index, 1:]
    yield _sharp_level(values, masks)


def _level_chunks(
    num_blurred: int, channels: int, fft_shape: tuple[int, int], device: torch.device
) -> Iterator[list[int]]:
    """Blurred levels from the farthest down, grouped so that one group's spectra fit the budget."""
    spectrum_bytes = channels * fft_shape[0] * (fft_shape[1] // 2 + 1) * 8
    budget = _CHUNK_BYTES.get(device.type, _CHUNK_BYTES["default"])
    per_chunk = max(1, budget // spectrum_bytes)
    levels = list(range(num_blurred, 0, -1))
    for start in range(0, len(levels), per_chunk):
        yield levels[start : start + per_chunk]


def kernel_spectra(
    sizes: Sequence[int], fft_shape: tuple[int, int], *, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """(len(sizes), Fh, Fw // 2 + 1) real spectra of the soft disk kernels, centred at the origin.

    The kernels are symmetric, so their spectra are real; dropping the rounding-level imaginary part
    halves the cost of the products.
    """
    placed = torch.zeros(len(sizes), *fft_shape, device=device, dtype=dtype)
    for index, size in enumerate(sizes):
        radius = size // 2
        placed[index, :size, :size] = soft_disk_kernel(size, device=device, dtype=dtype)
        # Move the kernel's centre to (0, 0), wrapping negative offsets around.
        placed[index] = torch.roll(placed[index], shifts=(-radius, -radius), dims=(0, 1))
    return torch.fft.rfft2(placed).real


def next_fast_size(size: int, *, even: bool = False) -> int:
    """Smallest integer >= ``size`` whose prime factors are 2, 3, 5 and 7 (fast for FFT libraries)."""
    candidate = size
    while True:
        if not (even and candidate % 2):
            remainder = candidate
            for prime in (2, 3, 5, 7):
                while remainder % prime == 0:
                    remainder //= prime
            if remainder == 1:
                return candidate
        candidate += 1


__all__ = [
    "BACKENDS",
    "layer_masks",
    "layered_blur",
    "padding_mode",
    "resolve_backend",
    "weighted_layered_render",
]
