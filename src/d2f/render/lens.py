"""From disparity, focus and aperture to D2F defocus: the thin lens, in the image's own units.

A thin lens blurs a point at disparity ``d`` (inverse depth) into a circle of confusion whose diameter
is proportional to ``|d - d_focus|`` and to the aperture's diameter, ``f / N``. d2f works with a
disparity normalised per photo (0 the farthest, 1 the nearest) and measures blur as a fraction of the
image's longer side, so that a photo looks the same at any resolution:

``coc = LENS_BLUR * (1 / N - 1 / N_input) * max(|d - d_focus| - focus_range, 0) * strength``

(a fraction of the longer side; ``N_input`` is the photo's own f-number, infinite when it is all in
focus). Where the photo's disparity range ``R`` in 1/m is known (a model that predicts it, or a metric
depth map), the blur
follows the scene's scale as a real lens's does: ``METRIC_LENS_BLUR * R`` takes ``LENS_BLUR``'s place,
so a close-up (several 1/m from front to back) blurs far more than a street at the same f-number.
The diameter in pixels of the working image is then mapped to D2F defocus units with
:func:`d2f.render.diameter_to_defocus`. A depth model's focus map can also name the subject
(:func:`subject_weight`); :func:`thin_lens_defocus` then keeps it sharp where its predicted depth
wavers near the focus.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from d2f.errors import InputError
from d2f.render.checks import check_tensor
from d2f.render.kernels import KERNEL_SIZES, diameter_to_defocus

#: Circle of confusion, as a fraction of the image's longer side, per unit of normalised disparity and
#: per unit of ``1 / N``, where the photo's disparity range is unknown (a model without a blur-range
#: head, given a depth map that is not metric): one global constant maps an f-number to an amount of
#: blur. Fitted on the real-lens development set with d2f-lite-2's depth network without its head,
#: told the focus and the f-numbers, by a rule written before the fit: the highest mean PSNR over its
#: 21 pairs on the grid 0.03 x 2^(k/2), ties (within 0.02 dB) to the higher SSIM
#: (``scripts/fit_lens_constants.py``; 0.06 and 0.085 tie at 20.80 dB, SSIM 0.710 and 0.707). That
#: set's rules allow a few global constants; see docs/evaluation.md.
LENS_BLUR = 0.06

#: Circle of confusion, as a fraction of the longer side, per 1/m of disparity offset and per unit of
#: ``1 / N``, for a photo whose disparity range is known (predicted, ``D2FConfig.blur_range``, or
#: measured, a metric depth map); in metres. A 50 mm lens on a 36 mm wide sensor gives
#: ``f**2 / 36 mm`` = 0.069 m (far from the focus distance). Fitted on the real-lens development set
#: like LENS_BLUR, by the same rule, with d2f-lite-2 (its predicted range) told the focus and the
#: f-numbers: grid 0.069 x 2^(k/2), k = -2..4 (``scripts/fit_lens_constants.py``: 21.42 dB, tied with
#: 0.138 at 21.43 dB and chosen by SSIM, 0.731 against 0.727).
METRIC_LENS_BLUR = 0.0976

#: The f-number :func:`coc_fraction` takes when given none; a model passes its own look instead
#: (``D2FConfig.default_f_number``).
DEFAULT_F_NUMBER = 2.0


def coc_fraction(
    f_number: float | None,
    input_f_number: float | None = None,
    strength: float = 1.0,
    *,
    disparity_range: torch.Tensor | None = None,
) -> float | torch.Tensor:
    """Blur diameter, as a fraction of the longer side, per unit of normalised disparity offset.

    ``LENS_BLUR * (1 / N - 1 / N_input) * strength``, with ``N`` = :data:`DEFAULT_F_NUMBER` when None
    and an infinite ``N_input`` when None; never negative. With ``disparity_range`` (N,) in 1/m, the
    span of each photo's normalised disparity, ``METRIC_LENS_BLUR * disparity_range`` replaces
    ``LENS_BLUR`` and the result is a tensor (N,).
    """
    aperture = 1.0 / (DEFAULT_F_NUMBER if f_number is None else f_number)
    if input_f_number is not None:
        aperture -= 1.0 / input_f_number
    aperture = max(0.0, aperture * strength)
    if disparity_range is None:
        return LENS_BLUR * aperture
    if not isinstance(disparity_range, torch.Tensor) or disparity_range.dim() != 1:
        raise InputError(
            f"disparity_range: expected a tensor of one value per image (N,), got "
            f"{getattr(disparity_range, 'shape', type(disparity_range).__name__)}"
        )
    return METRIC_LENS_BLUR * aperture * disparity_range.clamp_min(0)


#: :func:`subject_weight`: a focus map's logits, normalised per image from their median (0) to their
#: 99th percentile (1), count as the subject from 0.3 (weight 0) to 0.7 (weight 1), smoothly.
SUBJECT_EDGES = (0.3, 0.7)


def thin_lens_defocus(
    disparity: torch.Tensor,
    focus_disparity: torch.Tensor | float,
    coc_pixels: float | torch.Tensor,
    *,
    focus_range: float = 0.0,
    subject: torch.Tensor | None = None,
    subject_depth_of_field: float = 0.0,
    kernel_sizes: Sequence[int] = KERNEL_SIZES,
) -> torch.Tensor:
    """D2F defocus (N, 1, H, W) in [0, 1] from a disparity map and a focus disparity.

    Args:
        disparity: (N, 1, H, W) normalised disparity (0 far, 1 near).
        focus_disparity: the in-focus disparity, a number or one per image (N,).
        coc_pixels: blur diameter in pixels of this map per unit of disparity offset, a number or one
            per image (N,), >= 0.
        focus_range: offsets up to this stay in focus (Lightroom's focus range), >= 0.
        subject: (N, 1, H, W) in [0, 1], where the photo's subject is (:func:`subject_weight`), or None.
        subject_depth_of_field: T >= 0; with ``subject``, an offset ``o`` under T shrinks to
            ``o * (1 - subject * (1 - o / T))`` (``o**2 / T`` on the subject): a subject whose
            predicted depth wavers around the focus stays sharp, while a subject far from the focus
            (a click on the background) blurs as before. 0 leaves offsets as they are.
        kernel_sizes: the renderer's kernel diameters.

    Returns:
        ``diameter_to_defocus(max(1, coc_pixels * max(offset - focus_range, 0)))``, ``offset`` being
        ``|disparity - focus|`` after the subject's shrink.
    """
    check_tensor(disparity, "disparity", channels=(1,))
    if not 0 <= focus_range < float("inf"):
        raise InputError(f"focus_range: expected a finite number >= 0, got {focus_range!r}")
    if not 0 <= subject_depth_of_field < float("inf"):
        raise InputError(
            f"subject_depth_of_field: expected a finite number >= 0, got {subject_depth_of_field!r}"
        )
    batch = disparity.shape[0]
    focus = _per_image(focus_disparity, batch, disparity)
    scale = _per_image(coc_pixels, batch, disparity)
    offset = (disparity - focus).abs()
    if subject is not None:
        check_tensor(subject, "subject", channels=(1,))
        if subject.shape != disparity.shape or subject.device != disparity.device:
            raise InputError(
                f"subject: expected the shape of disparity {tuple(disparity.shape)} on {disparity.device}, "
                f"got {tuple(subject.shape)} on {subject.device}"
            )
    if subject is not None and subject_depth_of_field > 0:
        nearness = (1 - offset / subject_depth_of_field).clamp_min(0)
        offset = offset * (1 - subject.to(offset.dtype).clamp(0, 1) * nearness)
    offset = (offset - focus_range).clamp_min(0)
    return diameter_to_defocus((offset * scale).clamp_min(1.0), kernel_sizes)


def subject_weight(focus_logits: torch.Tensor) -> torch.Tensor:
    """Where a depth model's focus map (N, 1, H, W) of logits outlines the subject: (N, 1, H, W) in [0, 1].

    The map is a softmax over each image's pixels, so only differences of logits count: they are
    normalised per image from the median (0, the background of most photos) to the 99th percentile
    (1, the subject's peak), then mapped through a smoothstep between :data:`SUBJECT_EDGES`. A flat
    map (no subject singled out) gives 0 everywhere.
    """
    check_tensor(focus_logits, "focus_logits", channels=(1,))
    flat = focus_logits.flatten(1).float()
    middle = flat.median(dim=1).values
    # kthvalue, not quantile: no limit on the map's size
    peak = flat.kthvalue(max(1, math.ceil(0.99 * flat.shape[1])), dim=1).values
    spread = (peak - middle).clamp_min(torch.finfo(flat.dtype).eps).reshape(-1, 1, 1, 1)
    normalised = (focus_logits.float() - middle.reshape(-1, 1, 1, 1)) / spread
    low, high = SUBJECT_EDGES
    step = ((normalised - low) / (high - low)).clamp(0, 1)
    return (step * step * (3 - 2 * step)).to(focus_logits.dtype)


def weighted_median(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Per image, the weighted median of ``values`` (N, 1, H, W) under ``weights`` (N, 1, H, W) >= 0.

    Returns (N,): the smallest value at which the cumulative weight reaches half the total.
    """
    flat_values = values.flatten(1)
    flat_weights = weights.flatten(1).clamp_min(0)
    order = flat_values.argsort(dim=1)
    sorted_values = flat_values.gather(1, order)
    cumulative = flat_weights.gather(1, order).cumsum(dim=1)
    half = cumulative[:, -1:] / 2
    index = (cumulative < half).sum(dim=1, keepdim=True).clamp_max(flat_values.shape[1] - 1)
    return sorted_values.gather(1, index)[:, 0]


def disparity_at(disparity: torch.Tensor, point: tuple[float, float], window: int) -> torch.Tensor:
    """Per image, the median disparity (N,) in a ``window`` x ``window`` box centred on ``point``.

    ``point`` is (x, y) in pixels of this map (clamped to the frame): a median, so that a click on a
    thin edge takes the surface most of the box shows.
    """
    height, width = disparity.shape[-2:]
    x = min(max(round(point[0]), 0), width - 1)
    y = min(max(round(point[1]), 0), height - 1)
    half = max(0, window // 2)
    box = disparity[..., max(0, y - half) : y + half + 1, max(0, x - half) : x + half + 1]
    return box.flatten(1).median(dim=1).values


def check_focus_point(point: tuple[float, float], width: int, height: int) -> None:
    """Refuse a focus point (x, y), in pixels, outside a ``width`` x ``height`` photo (its far edges
    included) with one line; negative or non-finite points are refused where options are parsed."""
    if point[0] > width or point[1] > height:
        raise InputError(
            f"focus: ({point[0]:g}, {point[1]:g}) is outside the photo ({width}x{height} pixels; x from 0 "
            f"to {width}, y from 0 to {height})"
        )


def central_focus(disparity: torch.Tensor) -> torch.Tensor:
    """Per image, the median disparity (N,) of the central ninth of the frame: a photographer's guess."""
    height, width = disparity.shape[-2:]
    centre = disparity[..., height // 3 : max(height // 3 + 1, 2 * height // 3),
                       width // 3 : max(width // 3 + 1, 2 * width // 3)]
    return centre.flatten(1).median(dim=1).values


def _per_image(value: float | torch.Tensor, batch: int, like: torch.Tensor) -> torch.Tensor | float:
    if isinstance(value, torch.Tensor):
        if value.numel() not in (1, batch):
            raise InputError(f"expected a number or one value per image ({batch},), got {tuple(value.shape)}")
        return value.to(like.device, like.dtype).reshape(-1, 1, 1, 1)
    return float(value)


__all__ = [
    "DEFAULT_F_NUMBER",
    "LENS_BLUR",
    "METRIC_LENS_BLUR",
    "SUBJECT_EDGES",
    "central_focus",
    "check_focus_point",
    "coc_fraction",
    "disparity_at",
    "subject_weight",
    "thin_lens_defocus",
    "weighted_median",
]
