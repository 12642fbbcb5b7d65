"""Blur kernels of the D2F renderer and the map between defocus units and kernel diameters."""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Aperture:
    """The shape of the lens's aperture, which every blur kernel takes.

    Attributes:
        blades: 0 for a round aperture, else 3 to 12: a regular polygon of that many blades whose
            corners touch the kernel's circle (its diameter is the kernel's).
        rotation: degrees counter-clockwise of the polygon; at 0 one corner points straight up.
        curvature: 0 straight blades, 1 round (the circle itself); in between, each edge bulges out
            towards the circle (the boundary radius is blended linearly).
        clip: optical vignetting (cat's eye), ``(x, y)`` with y pointing down, as a fraction of the
            kernel's radius: the shape is intersected with two discs of its radius centred at
            ``+clip / 2`` and ``-clip / 2``, which leaves a lens shape whose long axis is
            perpendicular to ``clip``. ``(0, 0)`` clips nothing.
    """

    blades: int = 0
    rotation: float = 0.0
    curvature: float = 0.0
    clip: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        if isinstance(self.blades, bool) or self.blades not in (0, *range(3, 13)):
            raise InputError(
                f"aperture blades: expected 0 (round) or an integer from 3 to 12, got {self.blades!r}"
            )
        if not math.isfinite(self.rotation):
            raise InputError(f"aperture rotation: expected a finite number of degrees, got {self.rotation!r}")
        if not 0 <= self.curvature <= 1:
            raise InputError(f"aperture curvature: expected a number from 0 to 1, got {self.curvature!r}")
        if len(self.clip) != 2 or not all(math.isfinite(part) and abs(part) <= 2 for part in self.clip):
            raise InputError(f"aperture clip: expected two finite numbers within [-2, 2], got {self.clip!r}")

    @property
    def is_round(self) -> bool:
        """True where the kernels are today's soft disks exactly."""
        return (self.blades == 0 or self.curvature == 1) and self.clip == (0.0, 0.0)

    def with_clip(self, clip: tuple[float, float]) -> Aperture:
        """This aperture vignetted by ``clip`` (see the class docstring)."""
        return dataclasses.replace(self, clip=(float(clip[0]), float(clip[1])))


ROUND = Aperture()


def aperture_kernel(
    size: int,
    aperture: Aperture | None = None,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Kernel of diameter ``size`` in the shape of ``aperture``, soft-edged like the soft disk, sum 1.

    The soft disk's profile ``0.5 + 0.5 * tanh(0.25 * (R**2 - d**2) + 0.5)`` with ``R**2`` replaced by
    the squared boundary radius of the shape in the pixel's direction (so the rim falls off over about
    a pixel everywhere); the vignetting discs are intersected by taking the minimum of the profiles.
    Row ``i``, column ``j`` is the offset ``(y, x) = (i - r, j - r)``: this is the point spread
    function itself, so a light renders as this picture (convolution, not correlation).

    Args:
        size: odd diameter in pixels, >= 1.
        aperture: the shape; None or a round one gives :func:`soft_disk_kernel` exactly.

    Returns:
        Tensor of shape ``(size, size)``, non-negative, summing to 1.
    """
    if aperture is None or aperture.is_round:
        return soft_disk_kernel(size, device=device, dtype=dtype)
    (size,) = check_kernel_sizes((size,))
    radius = size // 2
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64, device=float64_device(device))
    y, x = offsets[:, None], offsets[None, :]
    kernel = _aperture_profile(radius, aperture, x, y)
    kernel = kernel / kernel.sum()
    return kernel.to(device=device, dtype=dtype or torch.get_default_dtype())


def _aperture_profile(radius: int, aperture: Aperture, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The unnormalised soft profile of ``aperture`` at offsets ``x``, ``y`` (y down), kernel radius r."""
    squared_distance = x**2 + y**2
    if aperture.blades == 0 or aperture.curvature == 1:
        squared_radius: float | torch.Tensor = float(radius**2)
    else:
        sector = 2 * math.pi / aperture.blades
        corner = math.pi / 2 + math.radians(aperture.rotation)
        angle = torch.atan2(-y, x)
        # Angle from the edge's middle within its sector; a polygon's boundary radius is apothem / cos.
        within = torch.remainder(angle - corner, sector) - sector / 2
        polygon = radius * math.cos(sector / 2) / torch.cos(within)
        boundary = aperture.curvature * radius + (1 - aperture.curvature) * polygon
        squared_radius = boundary**2
    profile = _soft_disk_profile(squared_radius, squared_distance)
    clip_x, clip_y = aperture.clip
    if clip_x or clip_y:
        shift_x, shift_y = clip_x * radius / 2, clip_y * radius / 2
        for sign in (1, -1):
            shifted = (x - sign * shift_x) ** 2 + (y - sign * shift_y) ** 2
            profile = torch.minimum(profile, _soft_disk_profile(float(radius**2), shifted))
    return profile


def aperture_spectra(
    sizes: Sequence[int],
    fft_shape: tuple[int, int],
    aperture: Aperture | None = None,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Spectra ``(len(sizes), Fh, Fw // 2 + 1)`` of :func:`aperture_kernel` centred at the origin.

    A round aperture gives :func:`soft_disk_spectra` (real). Other shapes are neither even in x nor in
    y, so their spectra are complex: ``torch.fft.rfft2`` of each kernel placed on the ``fft_shape``
    grid with its centre at (0, 0) (offsets wrapped around), which multiplied with an image's
    spectrum convolves it with the kernel.
    """
    if aperture is None or aperture.is_round:
        return soft_disk_spectra(sizes, fft_shape, device=device, dtype=dtype)
    sizes, _ = _check_spectra_shape(sizes, fft_shape)
    fft_height, fft_width = fft_shape
    dtype = dtype or torch.get_default_dtype()
    grid = torch.zeros(len(sizes), fft_height, fft_width, device=device, dtype=dtype)
    for index, size in enumerate(sizes):
        kernel = aperture_kernel(size, aperture, device=device, dtype=dtype)
        radius = size // 2
        # Offsets -r..r wrapped onto the grid: the centre at (0, 0), negative offsets at the far end.
        rolled = torch.roll(kernel, shifts=(-radius, -radius), dims=(0, 1))
        grid[index, :radius + 1, :radius + 1] = rolled[:radius + 1, :radius + 1]
        grid[index, :radius + 1, fft_width - radius:] = rolled[:radius + 1, radius + 1:]
        grid[index, fft_height - radius:, :radius + 1] = rolled[radius + 1:, :radius + 1]
        grid[index, fft_height - radius:, fft_width - radius:] = rolled[radius + 1:, radius + 1:]
    return torch.fft.rfft2(grid)


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


def _check_spectra_shape(sizes: Sequence[int], fft_shape: tuple[int, int]) -> tuple[tuple[int, ...], int]:
    """The checked kernel sizes and their largest radius, which both sides of ``fft_shape`` must exceed."""
    sizes = check_kernel_sizes(sizes)
    max_radius = max(sizes) // 2
    if max_radius >= min(fft_shape):
        raise InputError(
            f"fft_shape: expected both sides above the kernel radius {max_radius}, got {fft_shape}"
        )
    return sizes, max_radius


def _interpolate(values, x_points: list[float], y_points: list[float]):
    """Piecewise-linear interpolation, clamped at both ends, for floats and tensors alike."""
    if isinstance(values, torch.Tensor):
        if not values.is_floating_point():
            values = values.to(torch.get_default_dtype())
        # Segment by segment with Python numbers: no table tensor is copied to the device, so a
        # CUDA graph can capture it.
        result = torch.full_like(values, y_points[0])
        for x0, x1, y0, y1 in zip(x_points, x_points[1:], y_points, y_points[1:], strict=False):
            result = torch.where(values >= x0, y0 + (values - x0) * ((y1 - y0) / (x1 - x0)), result)
        return torch.where(values > x_points[-1], y_points[-1], result)
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
    sizes, max_radius = _check_spectra_shape(sizes, fft_shape)
    fft_height, fft_width = fft_shape
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
