"""Aperture sweeps: does a method's blur grow with the aperture as the real lens's does?

A sweep is a scene photographed at several apertures: pairs with the same ``original`` and at least two
different known ``f_bokeh``. Its **background** is a fixed set of textured tiles: those wholly inside
the focus mask's background (the mask's complement eroded by 40 px) where a mask is given, otherwise
the half of the textured tiles that the widest aperture's photo blurred most. The **background blur**
of an image is the factor by which it divided the background's sharpness: ``exp(-mean(log(S / S_in)))``
over those tiles (1: unblurred; 4: a quarter of the input's sharpness left; see
:func:`d2f.metrics.tile_sharpness`). Per scene and method:

- **aperture order**: Spearman's correlation between the aperture (1 / f-number) and the background
  blur (1: the blur grows as the aperture opens, as a lens's does; 0 for a method that ignores it);
- **blur error**: the mean over apertures of ``|log2(blur / lens blur)|``, in stops (0: the lens's blur
  at every aperture; 1: off by a factor of 2 on average). In stops, not plain ratios, because the
  background blur spans a factor of 1 to 30 across apertures and a plain difference would weigh only
  the widest one.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from d2f.metrics import rank_correlation
from d2f.real_lens.scoring import ScoredPair

#: Characters that separate the parts of a pair's name (a scene's name ends before one).
SEPARATORS = "-_. "


@dataclass
class Sweep:
    """One scene at several apertures, in the CSV's order of its pairs."""

    scene: str
    set: str
    pairs: list[str]
    f_numbers: list[float]
    #: Where the background tiles came from: "focus mask" or "widest aperture".
    background: str
    lens_blur: list[float]
    blur: dict[str, list[float]]
    lens_order: float
    order: dict[str, float]
    blur_error: dict[str, float]


def aperture_sweeps(scored: list[ScoredPair]) -> list[Sweep]:
    """The sweeps among the scored pairs (see the module docstring), in the order of their first pair."""
    scenes: dict[str, list[ScoredPair]] = {}
    for item in scored:
        if item.pair.f_bokeh is not None:
            scenes.setdefault(os.path.normpath(item.pair.original), []).append(item)
    return [
        _sweep(members)
        for members in scenes.values()
        if len({member.pair.f_bokeh for member in members}) >= 2
    ]


def _sweep(members: list[ScoredPair]) -> Sweep:
    first = members[0]
    f_numbers = [float(member.pair.f_bokeh) for member in members]
    background, source = _background(members, f_numbers)
    apertures = [1.0 / number for number in f_numbers]
    lens_blur = [_blur(member.target_change, background) for member in members]
    blur, order, error = {}, {}, {}
    for method in first.scores:
        changes = [member.scores[method].sharpness_change for member in members]
        blur[method] = [_blur(change, background) for change in changes]
        order[method] = rank_correlation(blur[method], apertures)
        error[method] = float(
            np.mean([abs(math.log2(mine / lens)) for mine, lens in zip(blur[method], lens_blur, strict=True)])
        )
    return Sweep(
        scene=_scene_name(members),
        set=first.pair.set,
        pairs=[member.pair.name for member in members],
        f_numbers=f_numbers,
        background=source,
        lens_blur=lens_blur,
        blur=blur,
        lens_order=rank_correlation(lens_blur, apertures),
        order=order,
        blur_error=error,
    )


def _background(members: list[ScoredPair], f_numbers: list[float]) -> tuple[np.ndarray, str]:
    first = members[0]
    if first.mask_background is not None:
        tiles = first.mask_background & first.textured
        if tiles.any():
            return tiles, "focus mask"
    widest = members[int(np.argmin(f_numbers))]
    changes = widest.target_change[first.textured]
    return first.textured & (widest.target_change <= np.median(changes)), "widest aperture"


def _blur(change: np.ndarray | None, background: np.ndarray) -> float:
    if change is None:
        return math.nan
    return float(np.exp(-np.mean(change[background])))


def _scene_name(members: list[ScoredPair]) -> str:
    """The pairs' names' common beginning up to a separator (``vabd0001`` of ``vabd0001-f8`` and
    ``vabd0001-f2.8``), else the photo's file name."""
    names = [member.pair.name for member in members]
    length = 0
    for characters in zip(*names, strict=False):  # up to the shortest name
        if len(set(characters)) > 1:
            break
        length += 1
    prefix = names[0][:length]
    if any(len(name) > length and name[length] not in SEPARATORS for name in names):
        prefix = prefix[: max(prefix.rfind(separator) for separator in SEPARATORS) + 1]
    return prefix.rstrip(SEPARATORS) or members[0].pair.original.name


__all__ = ["Sweep", "aperture_sweeps"]
