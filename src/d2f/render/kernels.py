"""Blur kernels of the D2F renderer and the map between defocus units and kernel diameters."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch

from d2f.errors import InputError

#: Diameters in pixels (at the half resolution where stage 1 runs) of the soft disk kernels of
#: levels 1..14; level 0 means "no blur". Values from the reference implementation.
KERNEL_SIZES: tuple[int, ...] = (3, 5, 7, 11, 15, 19, 23, 27, 33, 39, 45, 53, 61, 69)


def check_kernel_sizes(kernel_sizes: Sequence[int]) -> tuple[int, ...]:
    """Validate a sequence of kernel diameters and return it as a tuple of ints."""
    sizes = tuple(kernel_sizes)
    if not sizes:
        raise InputError("kernel_sizes: expected at least one kernel size, got an empty sequence")
    for size in sizes:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1 or size % 2 == 0:
            raise InputError(f"kernel_sizes: expected positive odd integers, got {sizes!r}")
    return sizes


def soft_disk_kernel(
    size: int, *, device: torch.device | str | None = None, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """Soft disk kernel of diameter ``size``, normalised to sum 1.

    With radius ``r = size // 2`` on the integer grid ``x, y in [-r, r]`` the kernel is
    ``0.5 + 0.5 * tanh(0.25 * (r**2 - x**2 - y**2) + 0.5)``: a disk whose rim falls off over about
    one pixel, so that its size can be learned through and it does not alias.

    Args:
        size: odd diameter in pixels, >= 1.
        device, dtype: of the result (default: torch's defaults).

    Returns:
        Tensor of shape ``(size, size)``, non-negative, summing to 1.
    """
    (size,) = check_kernel_sizes((size,))
    radius = size // 2
    # Computed in float64 and cast once, so every dtype sees the same rounded kernel; on a GPU it is
    # computed there, since a copy from the host would make the caller wait for the GPU's queue.
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64, device=float64_device(device))
    squared_distance = offsets[:, None] ** 2 + offsets[None, :] ** 2
    kernel = _soft_disk_profile(radius**2, squared_distance)
    kernel = kernel / kernel.sum()
    return kernel.to(device=device, dtype=dtype or torch.get_default_dtype())


def _soft_disk_profile(squared_radius: float | torch.Tensor, squared_distance: torch.Tensor) -> torch.Tensor:
    """The unnormalised soft disk ``0.5 + 0.5 * tanh(0.25 * (r**2 - d**2) + 0.5)`` (shared by the kernel
    and its spectra, so that both use one formula)."""
    return 0.5 + 0.5 * torch.tanh(0.25 * (squared_radius - squared_distance) + 0.5)


def float64_device(device: torch.device | str | None) -> torch.device:
    """Where float64 kernel arithmetic runs for a result on ``device``: CUDA itself, else the CPU."""
    if device is not None and torch.device(device).type == "cuda":
        return torch.device(device)
    return torch.device("cpu")


def _diameter_table(kernel_sizes: Sequence[int]) -> tuple[list[float], list[float]]:
    sizes = check_kernel_sizes(kernel_sizes)
    if any(later <= earlier for earlier, later in itertools.pairwise(sizes)) or sizes[0] <= 1:
        raise InputError(f"kernel_sizes: expected strictly increasing sizes above 1, got {sizes!r}")
    levels = len(sizes)
    defocus_points = [i / levels for i in range(levels + 1)]
    diameter_points = [1.0, *map(float, sizes)]
    return defocus_points, diameter_points


def _interpolate(values, x_points: list[float], y_points: list[float]):
    """Piecewise-linear interpolation, clamped at both ends, for floats and tensors alike."""
    if isinstance(values, torch.Tensor):
        if not values.is_floating_point():
            values = values.to(torch.get_default_dtype())
        xs = torch.tensor(x_points, dtype=values.dtype, device=values.device)
        ys = torch.tensor(y_points, dtype=values.dtype, device=values.device)
        clamped = values.clamp(xs[0], xs[-1])
        segment = (torch.bucketize(clamped.detach(), xs, right=True) - 1).clamp(0, len(x_points) - 2)
        x0, x1, y0, y1 = xs[segment], xs[segment + 1], ys[segment], ys[segment + 1]
        return y0 + (clamped - x0) * (y1 - y0) / (x1 - x0)
    value = float(values)
    if math.isnan(value):
        raise InputError("value: expected a number, got NaN")
    value = min(max(value, x_points[0]), x_points[-1])
    for x0, x1, y0, y1 in zip(x_points, x_points[1:], y_points, y_points[1:], strict=False):
        if value <= x1:
            return y0 + (value - x0) * (y1 - y0) / (x1 - x0)
    return y_points[-1]


def defocus_to_diameter(defocus, kernel_sizes: Sequence[int] = KERNEL_SIZES):
    """Map D2F defocus units to blur-kernel diameters in pixels.

    Piecewise linear through ``0 -> 1`` (one pixel: no blur) and ``i / L -> kernel_sizes[i - 1]``
    with ``L = len(kernel_sizes)``; values outside ``[0, 1]`` are clamped.

    Args:
        defocus: a float or a tensor of any shape.

    Returns:
        The same kind as ``defocus``: diameters in ``[1, kernel_sizes[-1]]``.
    """
    defocus_points, diameter_points = _diameter_table(kernel_sizes)
    return _interpolate(defocus, defocus_points, diameter_points)


def diameter_to_defocus(diameter, kernel_sizes: Sequence[int] = KERNEL_SIZES):
    """Inverse of :func:`defocus_to_diameter`: blur diameters in pixels to D2F defocus units.

    Diameters below 1 pixel map to 0 and above ``kernel_sizes[-1]`` to 1, so a physical circle of
    confusion of any size becomes a valid defocus map.

    Args:
        diameter: a float or a tensor of any shape (absolute circle-of-confusion diameters).

    Returns:
        The same kind as ``diameter``: defocus in ``[0, 1]``.
    """
    defocus_points, diameter_points = _diameter_table(kernel_sizes)
    return _interpolate(diameter, diameter_points, defocus_points)


def soft_disk_spectrum(
    size: int,
    fft_shape: tuple[int, int],
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Real spectrum ``(Fh, Fw // 2 + 1)`` of the soft disk kernel centred at the origin.

    This equals ``torch.fft.rfft2`` of the kernel placed on an ``fft_shape`` grid with its centre at
    (0, 0); see :func:`soft_disk_spectra`.
    """
    return soft_disk_spectra((size,), fft_shape, device=device, dtype=dtype)[0]


def soft_disk_spectra(
    sizes: Sequence[int],
    fft_shape: tuple[int, int],
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Real spectra ``(len(sizes), Fh, Fw // 2 + 1)`` of soft disk kernels centred at the origin.

    Each equals ``torch.fft.rfft2`` of its kernel placed on an ``fft_shape`` grid with its centre at
    (0, 0). The kernels are even in x and in y, so each spectrum is the real product
    ``cos_h @ folded_kernel @ cos_w.T`` over the offsets 0..r (the negative offsets folded onto the
    positive ones): two small batched matrix products for all kernels instead of large transforms, and
    a few kernel launches in all, whatever the number of sizes.
    """
    sizes = check_kernel_sizes(sizes)
    fft_height, fft_width = fft_shape
    max_radius = max(sizes) // 2
    if max_radius >= min(fft_height, fft_width):
        raise InputError(
            f"fft_shape: expected both sides above the kernel radius {max_radius}, got {fft_shape}"
        )
    dtype = dtype or torch.get_default_dtype()
    # The quadrant x, y in 0..r of every kernel, in float64 like soft_disk_kernel, zero beyond its radius.
    offsets = torch.arange(max_radius + 1, dtype=torch.float64, device=float64_device(device))
    squared_distance = offsets[:, None] ** 2 + offsets[None, :] ** 2
    squared_extent = torch.maximum(offsets[:, None], offsets[None, :]) ** 2
    # One fill per size (no host-to-device copy: it would wait for a GPU's queue and break graph capture).
    squared_radii = torch.stack([offsets.new_full((), float((size // 2) ** 2)) for size in sizes])
    squared_radii = squared_radii.view(-1, 1, 1)
    quadrants = _soft_disk_profile(squared_radii, squared_distance)
    quadrants = quadrants * (squared_extent <= squared_radii)
    # Weight 2 for the offsets that stand for both signs, 1 for the centre (no item assignment: that
    # copies from the host, which a CUDA graph capture forbids).
    fold = 2.0 - (offsets == 0).to(torch.float64)
    folded = fold[:, None] * quadrants * fold[None, :]
    # The folded quadrant sums to the whole kernel's sum: normalising it normalises the kernel.
    folded = folded / folded.sum(dim=(1, 2), keepdim=True)
    # On a GPU the products run in float64 (cheap at these sizes), so that TF32 matrix products, if
    # a user enables them, never round the spectra.
    product_dtype = torch.float64 if float64_device(device).type == "cuda" else dtype
    folded = folded.to(device=device, dtype=product_dtype)
    cos_h = _cosine_table(fft_height, fft_height, max_radius, device, product_dtype)
    cos_w = _cosine_table(fft_width // 2 + 1, fft_width, max_radius, device, product_dtype)
    return (cos_h @ folded @ cos_w.T).to(dtype)


def _cosine_table(
    frequencies: int, period: int, radius: int, device: torch.device | str | None, dtype: torch.dtype
) -> torch.Tensor:
    """``cos(2 pi u x / period)`` for u < frequencies, x in 0..radius; the phase is reduced exactly in
    integers first, so the table is accurate in float32 too."""
    phase = (
        torch.outer(torch.arange(frequencies, device=device), torch.arange(radius + 1, device=device))
        % period
    )
    return torch.cos(phase.to(dtype) * (2 * math.pi / period))
