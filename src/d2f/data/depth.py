"""From measured disparity to circle of confusion and D2F defocus, for real scenes with depth.

Stereo disparity is proportional to inverse depth, so the thin-lens CoC is linear in it:
``coc = strength * (disparity - focus_disparity)`` (positive in front of the focus plane, like
:func:`d2f.render.scene.thin_lens_coc`). Real disparity maps have holes (occlusions, no texture):
scikit-image's Middlebury "motorcycle" marks them with ``inf``, OpenCV's "aloe" ground truth with 0.
They are filled with the nearest known value (:func:`d2f.depth_maps.fill_unknown`, which lives below
:mod:`d2f.io` so that reading a user's depth map fills it the same way), so no NaN ever reaches the maps.
"""

from __future__ import annotations

import numpy as np
import torch

from d2f.depth_maps import fill_unknown, known_disparity
from d2f.errors import InputError
from d2f.render.kernels import diameter_to_defocus
from d2f.render.lens import central_focus


def central_focus_disparity(disparity: torch.Tensor) -> float:
    """The median disparity (1, H, W) of the central ninth of the frame: where a photographer usually
    focuses (:func:`d2f.render.lens.central_focus` for one image)."""
    return float(central_focus(disparity[None])[0])


def normalise_disparity(disparity: torch.Tensor, focus_disparity: float) -> tuple[torch.Tensor, float, float]:
    """Disparity rescaled per image to [0, 1] (near = 1): ``(d - min) / (max - min)``.

    Args:
        disparity: (1, H, W) finite disparities (any unit proportional to 1 / depth).
        focus_disparity: the in-focus disparity, in the same unit.

    Returns:
        ``(normalised, normalised_focus, span)``: the (1, H, W) map, the focus disparity in the same
        normalisation (outside [0, 1] when the focus plane is not in the frame) and ``max - min``
        (multiply a CoC strength per disparity unit by it to get the CoC per normalised unit). A map of
        one value normalises to 0 with a span of 0.
    """
    low, high = (float(value) for value in torch.aminmax(disparity))
    span = high - low
    if span <= 0:
        return torch.zeros_like(disparity), 0.0, 0.0
    return (disparity - low) / span, (float(focus_disparity) - low) / span, span


def disparity_to_coc(
    disparity: object, *, max_coc: float = 140.0, focus_disparity: float | None = None
) -> tuple[torch.Tensor, float]:
    """Signed CoC diameters (1, H, W) in pixels from a disparity map, unknown pixels filled.

    The strength is chosen so that the largest |CoC| in the frame is ``max_coc`` (140 px: D2F's
    largest kernel, 70 px, at half resolution).

    Args:
        disparity: (H, W) or (1, H, W); inf, NaN and values <= 0 are unknown.
        max_coc: largest CoC diameter in pixels, >= 0.
        focus_disparity: the in-focus disparity; default :func:`central_focus_disparity`.

    Returns:
        ``(coc, focus_disparity)``.
    """
    if not (isinstance(max_coc, int | float) and np.isfinite(max_coc) and max_coc >= 0):
        raise InputError(f"max_coc: expected a finite number >= 0, got {max_coc!r}")
    filled = fill_unknown(disparity)
    if focus_disparity is None:
        focus_disparity = central_focus_disparity(filled)
    elif not np.isfinite(focus_disparity):
        raise InputError(f"focus_disparity: expected a finite number, got {focus_disparity!r}")
    offset = filled - focus_disparity
    largest = float(offset.abs().max())
    strength = max_coc / largest if largest > 0 else 0.0
    return offset * strength, float(focus_disparity)


def disparity_to_defocus(
    disparity: object, *, max_coc: float = 140.0, focus_disparity: float | None = None
) -> torch.Tensor:
    """D2F defocus (1, H, W) in [0, 1] from a disparity map: ``diameter_to_defocus(|coc| / 2)``.

    The CoC is in full-resolution pixels and D2F's kernels live at half resolution, hence the halving,
    as for synthetic scenes. See :func:`disparity_to_coc` for the arguments.
    """
    coc, _ = disparity_to_coc(disparity, max_coc=max_coc, focus_disparity=focus_disparity)
    return diameter_to_defocus(coc.abs() / 2)


__all__ = [
    "central_focus_disparity",
    "disparity_to_coc",
    "disparity_to_defocus",
    "fill_unknown",
    "known_disparity",
    "normalise_disparity",
]
