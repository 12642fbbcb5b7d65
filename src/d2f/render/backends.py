"""How the layer stack is blurred.

Each backend yields, for every blurred level from the farthest (``L - 1``) to level 1, the level's
stack ``[m_i, m_i * values]`` blurred with its soft disk, as a :class:`BlurredLevel` (the blurred
stack and where it sits in the frame), or ``None`` when the level's mask is exactly zero (its blur is
zero and compositing it changes nothing).

- ``direct`` (:func:`blur_levels_direct`): depthwise convolution of the whole frame, padded by the
  level's radius. The literal form.
- ``fft`` on the CPU (:func:`blur_levels_cropped`): the frame is padded once by the largest radius;
  each level is blurred only over the bounding box that its mask reaches (a defocus map puts most
  levels in a part of the frame only, and leaves some empty), small kernels by direct convolution and
  large ones by products of spectra at a fast transform size.
- ``fft`` elsewhere (:func:`blur_levels_batched`): whole-frame transforms of several levels at once
  (the nearest, smallest kernels by direct convolution), which keeps a GPU busy without any host
  synchronisation.

Every path is exact: an output pixel only reads input within the kernel radius, which lies inside the
padded frame, so circular convolution never wraps into the kept pixels, and padding once by the
largest radius contains every smaller level's padding.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import torch
import torch.nn.functional as F

from d2f.render.kernels import Aperture, aperture_kernel, aperture_spectra

# On the CPU, kernels up to this diameter are applied by direct convolution (cheaper than a transform).
DIRECT_MAX_SIZE = 11

# Spectra of one batched chunk are kept under this many bytes (the working set is a few times that).
CHUNK_BYTES = 512 * 2**20

# In the batched path, the nearest levels with kernels up to this diameter are blurred directly. Replayed
# as CUDA graphs on an H100, 7 / 11 / 15 / 19 gave 2.19 / 2.28 / 2.47 / 2.77 ms at 512x768 and 7.84 / 8.03 /
# 8.70 / 9.81 ms at 1024x1536 (docs/performance.md); transforming every level was slower still.
BATCHED_DIRECT_MAX_SIZE = 7


class BlurredLevel(NamedTuple):
    """A blurred level stack (N, 1 + C, h, w) whose top-left pixel is at (top, left) of the frame."""

    stack: torch.Tensor
    top: int
    left: int


def padding_mode(height: int, width: int, max_size: int) -> str:
    """``"reflect"``, or ``"replicate"`` when the image is too small to reflect the largest radius."""
    return "reflect" if min(height, width) > max_size // 2 else "replicate"


def stack_level(values: torch.Tensor, masks: torch.Tensor, level: int) -> torch.Tensor:
    """(N, 1 + C, H, W): the level's mask and the values it selects, blurred together."""
    mask = masks[:, level : level + 1]
    return torch.cat([mask, mask * values], dim=1)


def next_fast_size(size: int, *, even: bool = False) -> int:
    """Smallest integer >= ``size`` whose prime factors are 2, 3 and 5 (fast for FFT libraries)."""
    candidate = size
    while True:
        if not (even and candidate % 2):
            remainder = candidate
            for prime in (2, 3, 5):
                while remainder % prime == 0:
                    remainder //= prime
            if remainder == 1:
                return candidate
        candidate += 1


def blur_levels_direct(
    values: torch.Tensor,
    masks: torch.Tensor,
    sizes: tuple[int, ...],
    aperture: Aperture | None = None,
    *,
    padded: bool = False,
) -> Iterator[BlurredLevel | None]:
    """The literal form: one depthwise convolution of the whole frame per level.

    With ``padded``, ``values`` and ``masks`` already carry ``max(sizes) // 2`` pixels of surroundings
    on every side (as every backend takes them then) and the levels cover the frame inside them.
    """
    mode = padding_mode(*values.shape[-2:], max(sizes))
    channels = 1 + values.shape[1]
    margin = max(sizes) // 2
    for level in range(len(sizes), 0, -1):
        size = sizes[level - 1]
        kernel = convolution_weight(size, aperture, values)
        if padded:
            skip = margin - size // 2
            stacked = stack_level(values, masks, level)[..., skip : values.shape[-2] - skip,
                                                        skip : values.shape[-1] - skip]
        else:
            stacked = F.pad(stack_level(values, masks, level), (size // 2,) * 4, mode=mode)
        yield BlurredLevel(F.conv2d(stacked, kernel.expand(channels, 1, size, size), groups=channels), 0, 0)


def blur_levels_cropped(
    values: torch.Tensor,
    masks: torch.Tensor,
    sizes: tuple[int, ...],
    aperture: Aperture | None = None,
    *,
    padded: bool = False,
) -> Iterator[BlurredLevel | None]:
    """Blur each level only over the bounding box that its mask can reach (see the module docstring;
    ``padded`` as for :func:`blur_levels_direct`)."""
    margin = max(sizes) // 2
    padded_values, padded_masks, height, width = _padded_frame(values, masks, sizes, padded)
    offset = margin if padded else 0
    # Masks are non-negative, so a row or column is used where its maximum is above zero.
    rows_used = masks[:, 1:].amax(dim=(0, 3)) > 0  # (L - 1, H)
    columns_used = masks[:, 1:].amax(dim=(0, 2)) > 0  # (L - 1, W)
    track_gradients = torch.is_grad_enabled() and (values.requires_grad or masks.requires_grad)
    for level in range(len(sizes), 0, -1):
        size = sizes[level - 1]
        radius = size // 2
        rows = _dilated_extent(rows_used[level - 1], radius, offset, height)
        columns = _dilated_extent(columns_used[level - 1], radius, offset, width)
        if rows is None or columns is None:
            yield None
            continue
        # Output box [top, bottom) x [left, right) reads the input box grown by the radius.
        (top, bottom), (left, right) = rows, columns
        window = (
            slice(None),
            slice(None),
            slice(margin + top - radius, margin + bottom + radius),
            slice(margin + left - radius, margin + right + radius),
        )
        mask = padded_masks[:, level - 1 : level][window]
        if size > DIRECT_MAX_SIZE and not track_gradients:
            blurred = _valid_fft_blur_of_level(mask, padded_values[window], size, aperture)
            yield BlurredLevel(blurred, top, left)
            continue
        stacked = torch.cat([mask, mask * padded_values[window]], dim=1)
        yield BlurredLevel(_valid_blur(stacked, size, aperture), top, left)


def blur_levels_batched(
    values: torch.Tensor,
    masks: torch.Tensor,
    sizes: tuple[int, ...],
    chunk_bytes: int = CHUNK_BYTES,
    direct_max_size: int | None = None,
    aperture: Aperture | None = None,
    *,
    padded: bool = False,
) -> Iterator[BlurredLevel | None]:
    """Whole-frame transforms of as many levels at once as ``chunk_bytes`` of spectra allow.

    The frame is padded once by the largest radius; each chunk's stacks ``[m_i, m_i * values]`` are
    written straight into one zero-padded transform buffer. The nearest levels whose kernels are at
    most ``direct_max_size`` wide are blurred by direct convolution instead, which is cheaper than
    their share of the transform (``None``: :data:`BATCHED_DIRECT_MAX_SIZE`, read at each call so that
    ``benchmarks/render.py --direct-max-sizes`` can compare thresholds).
    """
    if direct_max_size is None:
        direct_max_size = BATCHED_DIRECT_MAX_SIZE
    margin = max(sizes) // 2
    padded_values, padded_masks, height, width = _padded_frame(values, masks, sizes, padded)
    # Compositing runs from the farthest level down, so only a run of the nearest levels goes direct.
    direct_levels = 0
    while direct_levels < len(sizes) and sizes[direct_levels] <= direct_max_size:
        direct_levels += 1
    fft_levels = list(range(len(sizes), direct_levels, -1))
    if fft_levels:
        fft_shape = _transform_shape(height + 2 * margin, width + 2 * margin)
        spectrum_bytes = values.shape[0] * (1 + values.shape[1]) * fft_shape[0] * (fft_shape[1] // 2 + 1) * 8
        per_chunk = max(1, chunk_bytes // spectrum_bytes)
        for first in range(0, len(fft_levels), per_chunk):
            chunk = fft_levels[first : first + per_chunk]
            blurred = _fft_blur_of_levels(padded_values, padded_masks, chunk, sizes, fft_shape, aperture)
            kept = blurred[..., margin : margin + height, margin : margin + width]
            for index in range(len(chunk)):
                yield BlurredLevel(kept[:, index], 0, 0)
    for level in range(direct_levels, 0, -1):
        radius = sizes[level - 1] // 2
        window = (slice(None), slice(None), slice(margin - radius, margin + height + radius))
        window += (slice(margin - radius, margin + width + radius),)
        mask = padded_masks[:, level - 1 : level][window]
        stacked = torch.cat([mask, mask * padded_values[window]], dim=1)
        yield BlurredLevel(_valid_direct_blur(stacked, sizes[level - 1], aperture), 0, 0)


def _padded_frame(
    values: torch.Tensor, masks: torch.Tensor, sizes: tuple[int, ...], padded: bool
) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """``(values, masks[:, 1:])`` padded by the largest radius on every side (as given when
    ``padded``) and the unpadded frame's (height, width)."""
    margin = max(sizes) // 2
    if padded:
        return values, masks[:, 1:], values.shape[-2] - 2 * margin, values.shape[-1] - 2 * margin
    height, width = values.shape[-2:]
    mode = padding_mode(height, width, max(sizes))
    padding = (margin,) * 4
    return F.pad(values, padding, mode=mode), F.pad(masks[:, 1:], padding, mode=mode), height, width


def _fft_blur_of_levels(
    padded_values: torch.Tensor,
    padded_masks: torch.Tensor,
    levels: list[int],
    sizes: tuple[int, ...],
    fft_shape: tuple[int, int],
    aperture: Aperture | None = None,
) -> torch.Tensor:
    """(N, len(levels), 1 + C, Fh, Fw): the padded stacks of ``levels`` (consecutive, from the farthest)
    blurred by circular convolution."""
    level_sizes = [sizes[level - 1] for level in levels]
    spectra = aperture_spectra(
        level_sizes, fft_shape, aperture, device=padded_values.device, dtype=padded_values.dtype
    )[None, :, None]
    # The chunk's levels run from far to near: its masks are a flipped slice (no index tensor to copy).
    chunk_masks = padded_masks[:, levels[-1] - 1 : levels[0]].flip(1).unsqueeze(2)  # (N, k, 1, Hp, Wp)
    if torch.is_grad_enabled() and (padded_values.requires_grad or padded_masks.requires_grad):
        stacked = torch.cat([chunk_masks, chunk_masks * padded_values.unsqueeze(1)], dim=2)
        return torch.fft.irfft2(torch.fft.rfft2(stacked, s=fft_shape) * spectra, s=fft_shape)
    # Without autograd: one buffer, written in place, transformed, filtered in place. Only its margins
    # beyond the padded frame are zeroed: the frame itself is written over.
    padded_height, padded_width = padded_values.shape[-2:]
    batch, channels = padded_values.shape[:2]
    buffer = padded_values.new_empty(batch, len(levels), 1 + channels, *fft_shape)
    buffer[..., padded_height:, :].zero_()
    buffer[..., :padded_height, padded_width:].zero_()
    buffer[:, :, :1, :padded_height, :padded_width] = chunk_masks
    torch.mul(chunk_masks, padded_values.unsqueeze(1), out=buffer[:, :, 1:, :padded_height, :padded_width])
    return torch.fft.irfft2(torch.fft.rfft2(buffer).mul_(spectra), s=fft_shape)


def _dilated_extent(
    used: torch.Tensor, radius: int, offset: int = 0, length: int | None = None
) -> tuple[int, int] | None:
    """[first, last + 1) of the True entries of ``used``, grown by ``radius``, shifted back by ``offset``
    (the surroundings ``used`` includes) and clipped to [0, length); None if nothing is left."""
    indices = used.nonzero()
    if indices.numel() == 0:
        return None
    length = used.numel() if length is None else length
    first, last = int(indices[0]), int(indices[-1])
    start, stop = max(first - radius - offset, 0), min(last + 1 + radius - offset, length)
    return (start, stop) if start < stop else None


def convolution_weight(size: int, aperture: Aperture | None, like: torch.Tensor) -> torch.Tensor:
    """The kernel as ``F.conv2d`` wants it: flipped, since conv2d correlates and a blur convolves (a
    no-op for the symmetric round kernels, whose values stay exactly those of today)."""
    kernel = aperture_kernel(size, aperture, device=like.device, dtype=like.dtype)
    return kernel if aperture is None or aperture.is_round else kernel.flip((0, 1))


def _valid_blur(window: torch.Tensor, size: int, aperture: Aperture | None = None) -> torch.Tensor:
    """Blur without padding: (N, C, h + 2r, w + 2r) -> (N, C, h, w); direct for small kernels, else FFT."""
    if size <= DIRECT_MAX_SIZE:
        return _valid_direct_blur(window, size, aperture)
    fft_shape = _transform_shape(*window.shape[-2:])
    return _filter_and_crop(torch.fft.rfft2(window, s=fft_shape), window, fft_shape, size, aperture)


def _valid_direct_blur(window: torch.Tensor, size: int, aperture: Aperture | None = None) -> torch.Tensor:
    """Depthwise convolution without padding: (N, C, h + 2r, w + 2r) -> (N, C, h, w)."""
    channels = window.shape[1]
    kernel = convolution_weight(size, aperture, window)
    return F.conv2d(window, kernel.expand(channels, 1, size, size), groups=channels)


def _valid_fft_blur_of_level(
    mask: torch.Tensor, values: torch.Tensor, size: int, aperture: Aperture | None = None
) -> torch.Tensor:
    """:func:`_valid_blur` of ``[mask, mask * values]`` by FFT, without autograd.

    The stack is written straight into the zero-padded transform buffer (no concatenation, no second
    padded copy) and the spectrum is multiplied in place: the same arithmetic with fewer passes.
    """
    batch, channels = values.shape[:2]
    window_h, window_w = mask.shape[-2:]
    fft_shape = _transform_shape(window_h, window_w)
    buffer = mask.new_zeros(batch, 1 + channels, *fft_shape)
    buffer[:, :1, :window_h, :window_w] = mask
    torch.mul(mask, values, out=buffer[:, 1:, :window_h, :window_w])
    return _filter_and_crop(torch.fft.rfft2(buffer), mask, fft_shape, size, aperture)


def _transform_shape(window_h: int, window_w: int) -> tuple[int, int]:
    """Fast transform size for a window: 2-3-5-smooth sides, the last one even (for the real FFT)."""
    return next_fast_size(window_h), next_fast_size(window_w, even=True)


def _filter_and_crop(
    spectrum: torch.Tensor,
    window: torch.Tensor,
    fft_shape: tuple[int, int],
    size: int,
    aperture: Aperture | None = None,
) -> torch.Tensor:
    """Multiply ``spectrum`` (of a zero-padded ``window``) by the kernel's in place, invert, and keep the
    pixels whose kernel lies inside the window."""
    spectrum.mul_(aperture_spectra((size,), fft_shape, aperture, device=window.device, dtype=window.dtype)[0])
    blurred = torch.fft.irfft2(spectrum, s=fft_shape)
    radius = size // 2
    window_h, window_w = window.shape[-2:]
    return blurred[..., radius : window_h - radius, radius : window_w - radius]
