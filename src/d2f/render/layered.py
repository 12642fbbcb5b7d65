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

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from d2f.errors import InputError
from d2f.render.backends import (
    BlurredLevel,
    blur_levels_batched,
    blur_levels_cropped,
    blur_levels_direct,
    padding_mode,
    stack_level,
)
from d2f.render.checks import (
    check_finite,
    check_non_negative,
    check_same_size,
    check_tensor,
    compute_dtype,
)
from d2f.render.kernels import KERNEL_SIZES, Aperture, check_kernel_sizes, float64_device

BACKENDS = ("auto", "direct", "fft")

# Added to denominators as the reference does, so fully transparent pixels give 0 rather than NaN.
_EPSILON = 1e-10

# Below this many pixels per image the direct backend is faster than the FFT set-up.
_DIRECT_MAX_PIXELS = 48 * 48

#: Cat's eye: the frame is cut into this many zones per side (odd, so the centre zone is round), each
#: rendered with the kernels of its centre; neighbouring zones cross-fade over a quarter of a zone.
CATS_EYE_ZONES = 5

#: Cat's eye: the clipping discs' displacement, in kernel radii, per unit of strength and of the
#: distance from the frame's centre (1 at the corners); capped where the lens shape would vanish.
CATS_EYE_SHIFT = 1.2
_MAX_CATS_EYE_SHIFT = 1.8


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
    # Level centres rounded from float64 like the reference's Python floats (made on the defocus map's
    # device: a copy from the host would wait for a GPU's queue).
    centres = torch.arange(num_levels, dtype=torch.float64, device=float64_device(defocus.device)) * interval
    centres = centres.to(device=defocus.device, dtype=defocus.dtype).view(1, num_levels, 1, 1)
    if torch.is_grad_enabled() and defocus.requires_grad:
        return 0.5 + 0.5 * torch.tanh(alpha * (interval - (defocus - centres).abs()))
    # Without autograd the same formula runs in place on one buffer: it is memory-bound.
    masks = (defocus - centres).abs_()
    return masks.sub_(interval).mul_(-alpha).tanh_().mul_(0.5).add_(0.5)


def layered_blur(
    x: torch.Tensor,
    defocus: torch.Tensor,
    *,
    kernel_sizes: Sequence[int] = KERNEL_SIZES,
    alpha: float = 100.0,
    backend: str = "auto",
    aperture: Aperture | None = None,
    cats_eye: float = 0.0,
) -> torch.Tensor:
    """Blur ``x`` layer by layer according to ``defocus`` and composite back to front.

    Args:
        x: (N, C, H, W) values to blur (an image, a radiance-weighted image, a weight map).
        defocus: (N, 1, H, W) defocus map; ``i / (L - 1)`` selects ``kernel_sizes[i - 1]``.
        kernel_sizes: odd kernel diameters of levels 1 .. L - 1.
        alpha: sharpness of the layer masks.
        backend: ``"direct"``, ``"fft"`` or ``"auto"`` (the faster one for the size and device).
        aperture: the kernels' shape (:class:`d2f.render.kernels.Aperture`); None: round.
        cats_eye: optical vignetting, >= 0 (0 off, 1 a fast 50 mm wide open): towards the frame's
            edges the kernels are clipped into cat's eyes whose long axis is tangential. The frame is
            rendered in :data:`CATS_EYE_ZONES` x :data:`CATS_EYE_ZONES` zones, each with the kernels of
            its centre, cross-faded (see docs/lens-controls.md for the error of this approximation).

    Returns:
        (N, C, H, W) in float32 or float64 (the wider of the inputs' dtypes and float32).
    """
    check_tensor(x, "x")
    _check_defocus(defocus, x, "x")
    check_finite(x, "x")
    dtype = compute_dtype(x, defocus)
    with _full_precision(x):
        accumulated, coverage = _render_layers(
            x.to(dtype), defocus.to(dtype), kernel_sizes, alpha, backend, aperture, cats_eye
        )
        return accumulated / (coverage + _EPSILON)


def weighted_layered_render(
    image: torch.Tensor,
    defocus: torch.Tensor,
    weight: torch.Tensor,
    *,
    kernel_sizes: Sequence[int] = KERNEL_SIZES,
    alpha: float = 100.0,
    backend: str = "auto",
    aperture: Aperture | None = None,
    cats_eye: float = 0.0,
) -> torch.Tensor:
    """Radiance-weighted layered rendering: ``layered_blur(I * W) / (layered_blur(W) + 1e-10)``.

    Both layered blurs run in one pass: the layer masks and their blurs are shared.

    Args:
        image: (N, 3, H, W) in [0, 1].
        defocus: (N, 1, H, W) defocus map.
        weight: (N, 1, H, W) or (N, 3, H, W) non-negative radiance weight, e.g. from
            :func:`d2f.render.saturation_weight`.
        kernel_sizes, alpha, backend, aperture, cats_eye: as for :func:`layered_blur`.

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
        accumulated, coverage = _render_layers(
            values, defocus, kernel_sizes, alpha, backend, aperture, cats_eye
        )
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


def _render_layers(
    values: torch.Tensor,
    defocus: torch.Tensor,
    kernel_sizes: Sequence[int],
    alpha: float,
    backend: str,
    aperture: Aperture | None = None,
    cats_eye: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Composite the blurred layers back to front; returns the accumulated values and coverage."""
    sizes = check_kernel_sizes(kernel_sizes)
    resolve_backend(backend, 1, 1, values.device)  # a bad name is an error before any work
    if aperture is not None and not isinstance(aperture, Aperture):
        raise InputError(f"aperture: expected a d2f.render.kernels.Aperture, got {type(aperture).__name__}")
    if isinstance(cats_eye, bool) or not isinstance(cats_eye, (int, float)) or not 0 <= cats_eye < math.inf:
        raise InputError(f"cats_eye: expected a finite number >= 0, got {cats_eye!r}")
    if cats_eye == 0:
        return _render_layers_with(values, defocus, sizes, alpha, backend, aperture)
    return _render_zones(values, defocus, sizes, alpha, backend, aperture or Aperture(), float(cats_eye))


def _render_zones(
    values: torch.Tensor,
    defocus: torch.Tensor,
    sizes: tuple[int, ...],
    alpha: float,
    backend: str,
    aperture: Aperture,
    cats_eye: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cat's eye: each zone rendered over its window with the kernels of its centre, cross-faded.

    A zone's window reaches the largest kernel radius beyond the pixels it is kept for, into the frame
    padded once as a whole-frame render pads it, so those pixels equal a whole-frame render with its
    kernels.
    """
    height, width = values.shape[-2:]
    margin = max(sizes) // 2
    half_diagonal = max(1e-9, 0.5 * (height**2 + width**2) ** 0.5)
    composite = values.new_zeros(values.shape[0], 1 + values.shape[1], height, width)
    # Padded once, as the whole frame would be; each zone's window then takes its real surroundings.
    mode = padding_mode(height, width, max(sizes))
    padded_values = F.pad(values, (margin,) * 4, mode=mode)
    padded_defocus = F.pad(defocus, (margin,) * 4, mode=mode)
    for rows, row_weight, centre_y in _zone_weights(height, values):
        for columns, column_weight, centre_x in _zone_weights(width, values):
            shift = cats_eye * CATS_EYE_SHIFT / half_diagonal
            clip_x, clip_y = (centre_x - width / 2) * shift, (centre_y - height / 2) * shift
            length = (clip_x**2 + clip_y**2) ** 0.5
            if length > _MAX_CATS_EYE_SHIFT:
                clip_x, clip_y = clip_x * _MAX_CATS_EYE_SHIFT / length, clip_y * _MAX_CATS_EYE_SHIFT / length
            window = (..., slice(rows[0], rows[1] + 2 * margin), slice(columns[0], columns[1] + 2 * margin))
            accumulated, coverage = _render_layers_with(
                padded_values[window],
                padded_defocus[window],
                sizes,
                alpha,
                backend,
                aperture.with_clip((clip_x, clip_y)),
                padded=True,
            )
            zone = torch.cat([coverage, accumulated], dim=1)
            weight = row_weight[:, None] * column_weight[None, :]
            composite[..., rows[0] : rows[1], columns[0] : columns[1]] += zone * weight
    return composite[:, 1:], composite[:, :1]


def _zone_weights(length: int, like: torch.Tensor) -> list[tuple[tuple[int, int], torch.Tensor, float]]:
    """Along one axis: each zone's span ``[start, stop)``, its weights there (a partition of unity:
    linear cross-fades a quarter of a zone wide around the borders) and its centre."""
    zones = CATS_EYE_ZONES
    zone = length / zones
    fade = zone / 4
    positions = torch.arange(length, device=like.device, dtype=like.dtype) + 0.5
    result = []
    for index in range(zones):
        start, stop = index * zone, (index + 1) * zone
        rising = ((positions - (start - fade / 2)) / fade).clamp(0, 1) if index > 0 else 1.0
        falling = (((stop + fade / 2) - positions) / fade).clamp(0, 1) if index < zones - 1 else 1.0
        weights = positions.new_ones(length) * rising * falling
        used = (weights > 0).nonzero()
        if used.numel() == 0:  # a frame narrower than the zones: some have no pixel
            continue
        span = (int(used[0]), int(used[-1]) + 1)
        result.append((span, weights[span[0] : span[1]], (start + stop) / 2))
    return result


def _render_layers_with(
    values: torch.Tensor,
    defocus: torch.Tensor,
    sizes: tuple[int, ...],
    alpha: float,
    backend: str,
    aperture: Aperture | None,
    *,
    padded: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`_render_layers` with one kernel set over the whole frame; with ``padded``, ``values`` and
    ``defocus`` carry ``max(sizes) // 2`` pixels of surroundings on every side, and the result is the
    frame inside them."""
    margin = max(sizes) // 2 if padded else 0
    height, width = values.shape[-2] - 2 * margin, values.shape[-1] - 2 * margin
    backend = resolve_backend(backend, height, width, values.device)
    masks = layer_masks(defocus, len(sizes) + 1, alpha)
    if backend == "direct":
        blurred_levels = blur_levels_direct(values, masks, sizes, aperture, padded=padded)
    elif values.device.type == "cpu":
        blurred_levels = blur_levels_cropped(values, masks, sizes, aperture, padded=padded)
    else:
        blurred_levels = blur_levels_batched(values, masks, sizes, aperture=aperture, padded=padded)
    if padded:
        inner = (..., slice(margin, margin + height), slice(margin, margin + width))
        values, masks = values[inner], masks[inner]
    # Channel 0 is the coverage, the others the accumulated values: both are composited alike.
    composite = values.new_zeros(values.shape[0], 1 + values.shape[1], height, width)
    track_gradients = torch.is_grad_enabled() and (values.requires_grad or defocus.requires_grad)
    for level in [*blurred_levels, BlurredLevel(stack_level(values, masks, 0), 0, 0)]:
        if level is not None:
            composite = _composite_over(composite, level, in_place=not track_gradients)
    return composite[:, 1:], composite[:, :1]


def _composite_over(composite: torch.Tensor, level: BlurredLevel, *, in_place: bool) -> torch.Tensor:
    """``composite * (1 - blurred mask) + blurred stack`` over the level's box (nothing changes outside)."""
    box_height, box_width = level.stack.shape[-2:]
    if in_place:
        box = composite[..., level.top : level.top + box_height, level.left : level.left + box_width]
        # One pass over the box: box = stack + box * (1 - blurred mask).
        torch.addcmul(level.stack, box, 1 - level.stack[:, :1], out=box)
        return composite
    height, width = composite.shape[-2:]
    bottom, right = height - level.top - box_height, width - level.left - box_width
    stack = F.pad(level.stack, (level.left, right, level.top, bottom))
    return torch.addcmul(stack, composite, 1 - stack[:, :1])


__all__ = [
    "BACKENDS",
    "layer_masks",
    "layered_blur",
    "resolve_backend",
    "weighted_layered_render",
]
