"""What a model may be told about each pair: where the photographer focused and at which apertures.

Methods that are told where to focus are compared with those that are not only when the hints are
reported beside the scores; :func:`pair_hints` gives them as render options (see
:class:`d2f.options.RenderOptions`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

from d2f.errors import InputError
from d2f.metrics import TILE_SIZE, sharpness_change, textured_tiles
from d2f.real_lens.pairs import LoadedPair

#: Where a focus point came from, as the report says it.
FROM_MASK = "focus mask"
FROM_TILES = "sharpest tile"


def focus_point(
    mask: np.ndarray | None, input_sharpness: np.ndarray, target_sharpness: np.ndarray
) -> tuple[tuple[float, float], str]:
    """The point (x, y), in pixels of the photo, a lens focused on, and where it was found.

    Inside a non-empty focus ``mask`` ((H, W) bool): the mask pixel farthest from the mask's border
    (the frame's edge counts as border). Otherwise the centre of the textured tile (see
    :func:`d2f.metrics.textured_tiles`) where the target kept the largest share of the input's
    sharpness, from the two :func:`d2f.metrics.tile_sharpness` maps.
    """
    if mask is not None and mask.any():
        return deepest_point(mask), FROM_MASK
    textured = textured_tiles(input_sharpness)
    if not textured.any():  # a flat photo: every tile is as good as another
        textured = np.ones_like(textured)
    kept = np.where(textured, sharpness_change(target_sharpness, input_sharpness), -np.inf)
    row, column = np.unravel_index(int(np.argmax(kept)), kept.shape)
    return (float((column + 0.5) * TILE_SIZE), float((row + 0.5) * TILE_SIZE)), FROM_TILES


def deepest_point(mask: np.ndarray) -> tuple[float, float]:
    """(x, y) of the pixel of a non-empty (H, W) bool mask farthest from the mask's border (the frame's
    edge counts as border): a point surely on the subject."""
    if mask.ndim != 2 or not mask.any():
        raise InputError(f"mask: expected a non-empty (H, W) mask, got shape {mask.shape} with "
                         f"{int(np.count_nonzero(mask))} pixels set")
    distance = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    row, column = np.unravel_index(int(np.argmax(distance)), distance.shape)
    return float(column), float(row)


def pair_hints(
    loaded: LoadedPair,
    input_sharpness: np.ndarray,
    target_sharpness: np.ndarray,
    *,
    focus: bool,
    aperture: bool,
) -> tuple[dict[str, Any], str | None]:
    """Render options for one pair (``focus``, ``f_number``, ``input_f_number``, as asked and known), and
    where the focus point came from (None without one).

    The f-numbers are passed only where the CSV gives them.
    """
    hints: dict[str, Any] = {}
    source = None
    if focus:
        hints["focus"], source = focus_point(loaded.mask, input_sharpness, target_sharpness)
    if aperture:
        if loaded.pair.f_bokeh is not None:
            hints["f_number"] = loaded.pair.f_bokeh
        if loaded.pair.f_original is not None:
            hints["input_f_number"] = loaded.pair.f_original
    return hints, source


__all__ = ["FROM_MASK", "FROM_TILES", "deepest_point", "focus_point", "pair_hints"]
