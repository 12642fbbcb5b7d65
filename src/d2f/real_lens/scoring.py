"""Render each pair's photo with each method and score it against the real lens's photo.

A method is a :class:`Renderer`: a name and a function from an (H, W, 3) uint8 photo and render options
(the pair's hints, empty for methods that take none) to a :class:`Rendering`. Per pair and method:
PSNR, SSIM and blur-map agreement (see :mod:`d2f.metrics`), and, where a focus mask is given, subject
sharpness and background blur match.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from d2f.errors import D2FError, InputError
from d2f.evaluation import BASELINES
from d2f.metrics import (
    TILE_SIZE,
    laplacian_map,
    psnr,
    sharpness_change,
    sharpness_of_laplacian,
    ssim,
    structural_measures_of_maps,
    subject_regions,
    textured_tiles,
    tile_agreement,
)
from d2f.real_lens.hints import pair_hints
from d2f.real_lens.pairs import LensPair, LoadedPair, RowError, load_pair, row_error


@dataclass(frozen=True)
class Rendering:
    """A method's result: the (H, W, 3) uint8 image and, for models, the (h, w) defocus map in [0, 1]."""

    image: np.ndarray
    defocus: np.ndarray | None = None


@dataclass(frozen=True)
class Renderer:
    """A method under evaluation; ``render(image, options)`` gets the pair's hints as render options
    (keywords of :class:`d2f.options.RenderOptions`) when ``takes_hints`` is set, else ``{}``."""

    name: str
    render: Callable[[np.ndarray, dict[str, Any]], Rendering]
    takes_hints: bool = False


def baseline_renderer(name: str) -> Renderer:
    """The ``identity`` or ``gaussian`` baseline of :mod:`d2f.evaluation` as a :class:`Renderer`."""
    if name not in BASELINES:
        raise InputError(f"baseline: expected one of {', '.join(BASELINES)}, got {name!r}")
    baseline = BASELINES[name]
    return Renderer(name, lambda image, options: Rendering(baseline(image)))


@dataclass
class MethodScore:
    """One method's measures on one pair (None: not taken, NaN: undefined) and the hints it was given."""

    psnr: float
    ssim: float
    blur_agreement: float
    subject_sharpness: float | None = None
    background_blur_match: float | None = None
    hints: dict[str, Any] = field(default_factory=dict)
    #: log(S_output / S_input) per tile (see :func:`d2f.metrics.sharpness_change`), for the sweeps.
    sharpness_change: np.ndarray | None = field(default=None, repr=False)


@dataclass
class ScoredPair:
    """A scored pair: its measures per method and the tile maps the aperture sweeps need."""

    pair: LensPair
    scores: dict[str, MethodScore]
    notes: list[str]
    focus_source: str | None
    textured: np.ndarray = field(repr=False)
    target_change: np.ndarray = field(repr=False)
    #: Tiles wholly inside the focus mask's background (see :func:`d2f.metrics.subject_regions`).
    mask_background: np.ndarray | None = field(default=None, repr=False)


#: Called with each scored pair, its images and each method's rendering (e.g. for contact sheets).
Visitor = Callable[[ScoredPair, LoadedPair, dict[str, Rendering]], None]


def score_pairs(
    pairs: Iterable[LensPair],
    renderers: list[Renderer],
    *,
    focus_hint: bool = False,
    aperture_hint: bool = False,
    visit: Visitor | None = None,
) -> Iterator[ScoredPair | RowError]:
    """Score every pair with every method, one pair at a time; a pair that fails is a :class:`RowError`.

    Consecutive pairs with the same photo and the same hints reuse its renderings.
    """
    cache = _Cache()
    for pair in pairs:
        try:
            yield _score_pair(pair, renderers, focus_hint, aperture_hint, cache, visit)
        except D2FError as error:
            yield row_error(pair, error)
        except (RuntimeError, OSError, MemoryError) as error:
            yield row_error(pair, f"rendering failed: {error}", exit_code=1)


class _Cache:
    """The last photo's Laplacian and sharpness, the last mask's regions, each method's last rendering."""

    def __init__(self) -> None:
        self.photo: Path | None = None
        self.laplacian = self.sharpness = np.zeros(0)
        self.mask: tuple[Path | None, tuple[int, ...]] | None = None
        self.regions: tuple[np.ndarray, np.ndarray] | None = None
        self.renderings: dict[str, tuple[tuple, Rendering, np.ndarray]] = {}

    def photo_maps(self, loaded: LoadedPair) -> tuple[np.ndarray, np.ndarray]:
        """The photo's :func:`laplacian_map` and :func:`tile_sharpness`."""
        if self.photo != loaded.pair.original:
            self.photo, self.laplacian = loaded.pair.original, laplacian_map(loaded.image)
            self.sharpness = sharpness_of_laplacian(self.laplacian)
            self.renderings.clear()
        return self.laplacian, self.sharpness

    def subject_regions(self, loaded: LoadedPair) -> tuple[np.ndarray, np.ndarray] | None:
        """The focus mask's (subject, background) regions, as :func:`subject_regions` erodes them."""
        if loaded.mask is None:
            return None
        key = (loaded.pair.focus_mask, loaded.mask.shape)
        if self.mask != key or self.regions is None:
            self.mask, self.regions = key, subject_regions(loaded.mask)
        return self.regions


def _score_pair(
    pair: LensPair,
    renderers: list[Renderer],
    focus_hint: bool,
    aperture_hint: bool,
    cache: _Cache,
    visit: Visitor | None,
) -> ScoredPair:
    loaded = load_pair(pair)
    input_laplacian, input_sharpness = cache.photo_maps(loaded)
    target_laplacian = laplacian_map(loaded.target)
    target_sharpness = sharpness_of_laplacian(target_laplacian)
    hints, focus_source = pair_hints(
        loaded, input_sharpness, target_sharpness, focus=focus_hint, aperture=aperture_hint
    )
    regions = cache.subject_regions(loaded)
    scored = ScoredPair(
        pair,
        {},
        loaded.notes,
        focus_source if any(renderer.takes_hints for renderer in renderers) else None,
        textured_tiles(input_sharpness),
        sharpness_change(target_sharpness, input_sharpness),
        None if regions is None else _whole_tiles(regions[1], input_sharpness.shape),
    )
    renderings = {}
    for renderer in renderers:
        given = hints if renderer.takes_hints else {}
        key = (pair.original, tuple(sorted(given.items())))
        cached = cache.renderings.get(renderer.name)
        if cached is not None and cached[0] == key:
            rendering, output_laplacian = cached[1], cached[2]
        else:
            rendering = renderer.render(loaded.image, given)
            _check_rendering(rendering, loaded.image, renderer.name)
            output_laplacian = laplacian_map(rendering.image)
            cache.renderings[renderer.name] = (key, rendering, output_laplacian)
        renderings[renderer.name] = rendering
        output_sharpness = sharpness_of_laplacian(output_laplacian)
        score = MethodScore(
            psnr(rendering.image, loaded.target),
            ssim(rendering.image, loaded.target),
            tile_agreement(output_sharpness, input_sharpness, target_sharpness),
            hints=given,
            sharpness_change=sharpness_change(output_sharpness, input_sharpness),
        )
        if regions is not None:
            measures = structural_measures_of_maps(
                output_laplacian, input_laplacian, target_laplacian, *regions
            )
            score.subject_sharpness = measures.subject_sharpness
            score.background_blur_match = measures.background_blur_match
        scored.scores[renderer.name] = score
    if visit is not None:
        visit(scored, loaded, renderings)
    return scored


def _whole_tiles(region: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Tiles (as :func:`d2f.metrics.tile_sharpness` cuts them) that lie wholly inside ``region``."""
    rows, columns = shape
    cropped = region[: rows * TILE_SIZE, : columns * TILE_SIZE]
    return cropped.reshape(rows, TILE_SIZE, columns, TILE_SIZE).all(axis=(1, 3))


def _check_rendering(rendering: object, image: np.ndarray, name: str) -> None:
    output = getattr(rendering, "image", None)
    if not isinstance(output, np.ndarray) or output.dtype != np.uint8 or output.shape != image.shape:
        raise InputError(
            f"{name}: expected an {image.shape} uint8 rendering, got "
            f"{getattr(output, 'dtype', type(output).__name__)} {getattr(output, 'shape', '')}"
        )


__all__ = [
    "MethodScore",
    "Renderer",
    "Rendering",
    "ScoredPair",
    "Visitor",
    "baseline_renderer",
    "score_pairs",
]
