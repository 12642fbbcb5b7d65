"""Real photos with measured depth (``../shared/rgbd``) as training items with rendered bokeh.

:class:`RGBDBokehDataset` reads the public RGB-D sources listed in :data:`SOURCES` (the folder's
README describes them), converts every depth or disparity format to disparity, fills unknown pixels,
and renders each item's bokeh with the physically based scene renderer
(:func:`d2f.data.depth_layers.render_depth_bokeh`: layers cut by CoC, the background hidden behind
near objects filled by a smooth pull-push extrapolation of what is visible around it).

Per item (tensors (C, h, w) float32, the same keys as :class:`~d2f.data.SyntheticBokehDataset`):

- ``image``: the photo's crop, sRGB in [0, 1]; ``bokeh``: its rendered bokeh.
- ``coc``: signed CoC diameter in pixels of the item (> 0 in front of the focus plane);
  ``defocus``: ``diameter_to_defocus(|coc| / 2)``; ``focus_mask``: 1 where |CoC| <= 1 px.
- ``disparity``: the filled disparity in the source's unit: 1/m for depth sensors, the stereo
  disparity's own scale for Middlebury, KITTI 2015 and the normalised 8-bit maps (compare across
  sources only through the normalised one).
- ``norm_disparity``: disparity normalised over the item to [0, 1], near = 1
  (:func:`d2f.data.depth.normalise_disparity`); ``norm_focus_disparity``: the focus plane's value on
  the same scale (a 0-d tensor); ``coc_scale``: CoC pixels per unit of it (0-d), so that
  ``coc == coc_scale * (norm_disparity - norm_focus_disparity)``.
- ``name``: ``"<source>/<id>"``, e.g. ``"rgbdd/20200509114740"``.

Random choices (zoom, crop, flip, focus, blur, highlight gain) are a function of
``(seed, epoch, index)``; see :meth:`RGBDBokehDataset.set_epoch`.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from d2f.data.depth import fill_unknown
from d2f.data.depth_files import read_map_image, read_npy_map, read_pfm
from d2f.data.depth_layers import DEFAULT_MAX_LAYERS, highlight_gain, render_depth_bokeh
from d2f.data.synthetic import MAX_BACKGROUND_BLUR, normalised_maps
from d2f.data.transforms import check_size, dataset_item
from d2f.errors import DataError, ImageReadError, InputError
from d2f.io import open_image
from d2f.render.kernels import diameter_to_defocus
from d2f.render.scene import NO_BLUR_DIAMETER

#: How a source stores its map: ``depth`` (any unit; disparity = 1 / depth), ``disparity`` (any
#: scale), ``nyu_kinect`` (NYU's raw Kinect PGM: little-endian values v, depth 351.3 / (1092.5 - v) m)
#: and ``sun_rotated`` (SUN RGB-D's PNG: millimetres rotated left by 3 bits).
FORMATS = ("depth", "disparity", "nyu_kinect", "sun_rotated")


@dataclass(frozen=True)
class RGBDSource:
    """One source of RGB-D pairs under the root folder.

    Attributes:
        name: the source's name (item names start with it).
        folder: its folder under the root.
        rgb: regular expression for the photos' paths relative to ``folder`` (POSIX), whose group
            ``id`` names the pair.
        depth: candidate paths of the map relative to ``folder``, with ``{id}``; the first that exists.
        format: one of :data:`FORMATS`.
        metres: metres per unit of a depth format (None: disparity of unknown scale).
        sparse: measured on scattered points (LiDAR, stereo on a car): unknown pixels above the
            highest measured pixel of each column are sky or far away and take the farthest value.
    """

    name: str
    folder: str
    rgb: str
    depth: tuple[str, ...]
    format: str = "depth"
    metres: float | None = None
    sparse: bool = False


_IMAGE = r"\.(?:png|jpg|jpeg|ppm)"

#: Every source of ``../shared/rgbd`` (see its README), in a fixed order.
SOURCES = (
    RGBDSource("rgbdd", "rgbdd", rf"rgb/(?P<id>[^/]+){_IMAGE}", ("depth_mm/{id}.png",), metres=1e-3),
    RGBDSource("dct_middlebury", "dct_middlebury", rf"rgb/(?P<id>[^/]+){_IMAGE}", ("disp8/{id}.png",),
               "disparity"),
    RGBDSource("midd2006", "midd2006", rf"rgb/(?P<id>[^/]+){_IMAGE}", ("disp/{id}.png",), "disparity"),
    RGBDSource("midd2005", "midd2005", rf"rgb/(?P<id>[^/]+){_IMAGE}", ("disp/{id}.png",), "disparity"),
    RGBDSource("midd2003", "midd2003", rf"rgb/(?P<id>[^/]+){_IMAGE}", ("disp/{id}.png",), "disparity"),
    RGBDSource("midd2001", "midd2001", rf"rgb/(?P<id>[^/]+){_IMAGE}", ("disp/{id}.pgm",), "disparity"),
    RGBDSource("midd2014", "midd2014", r"(?P<id>[^/]+)/im0\.png",
               ("{id}/disp0GT.pfm", "{id}/disp0.pfm", "{id}/disp0.png"), "disparity"),
    RGBDSource("lu", "lu", rf"rgb/(?P<id>[^/]+){_IMAGE}", ("disp8/{id}.png",), "disparity"),
    RGBDSource("nyu_dct", "nyu_dct", rf"rgb/(?P<id>[^/]+){_IMAGE}", ("depth_m/{id}.npy",), metres=1.0),
    RGBDSource("metric3d_nyu", "metric3d", rf"nyu_demo/rgb/rgb_(?P<id>[^/]+){_IMAGE}",
               ("nyu_demo/depth/sync_depth_{id}.png",), metres=1e-3),
    RGBDSource("metric3d_kitti", "metric3d", rf"kitti_demo/rgb/(?P<id>[^/]+){_IMAGE}",
               ("kitti_demo/depth/{id}.png",), metres=1 / 256, sparse=True),
    RGBDSource("kitti2015", "kitti2015", rf"image_2/(?P<id>[^/]+){_IMAGE}", ("disp_occ_0/{id}.png",),
               "disparity", sparse=True),
    RGBDSource("peach", "peach", rf"rgb/(?P<id>[^/]+){_IMAGE}", ("depth_mm/{id}.png",), metres=1e-3),
    RGBDSource("slambook_ch5", "slambook_ch5", rf"rgb/(?P<id>[^/]+){_IMAGE}", ("depth/{id}.pgm",),
               metres=1e-3),
    RGBDSource("open3d_nyu", "open3d_other", r"(?P<id>NYU)_color\.ppm", ("{id}_depth.pgm",), "nyu_kinect",
               metres=1.0),
    RGBDSource("open3d_sun", "open3d_other", r"(?P<id>SUN)_color\.jpg", ("{id}_depth.png",), "sun_rotated",
               metres=1e-3),
    RGBDSource("open3d_tum", "open3d_other", r"(?P<id>TUM)_color\.png", ("{id}_depth.png",), metres=2e-4),
    RGBDSource("unidepth_demo", "unidepth_demo", r"(?P<id>rgb)\.png", ("depth.png",), metres=1e-3),
)

#: Splits: None (every pair), ``"train"`` (all but the held-out pairs) and ``"holdout"``.
SPLITS = (None, "train", "holdout")

#: The held-out part, fixed for reporting depth accuracy: every tenth RGB-D-D pair (in the sorted
#: order of their names, starting with the first) and two Middlebury 2014 scenes, which no other
#: source repeats (the 2003-2006 scenes recur in ``dct_middlebury``).
HOLDOUT_EVERY = {"rgbdd": 10}
HOLDOUT_NAMES = frozenset({"midd2014/Motorcycle", "midd2014/Adirondack"})

#: Share of items focused on the subject (the nearest of three points drawn around the centre); the
#: others focus on a random point of the frame.
SUBJECT_FOCUS_PROBABILITY = 0.7

#: Share of items whose clipped highlights are lights (gain 2-8) in the bokeh.
HIGHLIGHT_PROBABILITY = 0.5

#: Crops span from the largest that fits the photo to a zoom of this factor into it.
ZOOM_RANGE = 1.6

# Measured disparities outside these quantiles are clipped (flying pixels, sensor noise).
_CLIP_QUANTILES = (0.001, 0.999)

# Fewer known pixels than this share make a map unusable.
_MIN_KNOWN_SHARE = 0.01


def is_holdout(source: str, name: str, position: int) -> bool:
    """Whether pair ``name`` (``"<source>/<id>"``), the ``position``-th of its source by name, is held out."""
    every = HOLDOUT_EVERY.get(source)
    return name in HOLDOUT_NAMES or (every is not None and position % every == 0)


@dataclass(frozen=True)
class _Pair:
    name: str
    source: RGBDSource
    rgb: Path
    depth: Path


class RGBDBokehDataset(Dataset):
    """Real RGB-D photos with bokeh rendered from their depth (see the module docstring for items).

    Args:
        root: the RGB-D folder (``../shared/rgbd``), holding the folders of :data:`SOURCES`.
        split: None (every pair), ``"train"`` or ``"holdout"`` (see :data:`HOLDOUT_EVERY`,
            :data:`HOLDOUT_NAMES`).
        size: (height, width) of the items (random zoom and crop), or None for whole photos at their
            own size (which differ between sources: batch them one by one).
        sources: names of the sources to read (default: all of :data:`SOURCES`).
        kernel_scale: multiplies the blur range (1: the largest |CoC| of an item is drawn uniformly
            in [0, 140] px, D2F's largest kernel at half resolution, as for synthetic scenes).
        random_flip: mirror items left-right with probability 1/2.
        skip_bad: missing or empty source folders, photos without a map, maps of another size and
            unreadable files are skipped with a warning naming them instead of raising a DataError.
        seed: random choices are a function of (seed, epoch, index).
        max_layers: most layers a photo is cut into (fewer: faster, coarser depth steps).
        cache_bytes: decoded photos and filled disparity maps kept per process (per loader worker).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str | None = None,
        *,
        size: tuple[int, int] | None = (384, 512),
        sources: Sequence[str] | None = None,
        kernel_scale: float = 1.0,
        random_flip: bool = True,
        skip_bad: bool = False,
        seed: int = 0,
        max_layers: int = DEFAULT_MAX_LAYERS,
        cache_bytes: int = 1 << 30,
    ):
        if split not in SPLITS:
            raise InputError(f"split: expected one of {SPLITS}, got {split!r}")
        self.size = None if size is None else check_size(size)
        if not (isinstance(kernel_scale, int | float) and math.isfinite(kernel_scale) and kernel_scale >= 0):
            raise InputError(f"kernel_scale: expected a finite number >= 0, got {kernel_scale!r}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise InputError(f"seed: expected a non-negative integer, got {seed!r}")
        known = {source.name: source for source in SOURCES}
        names = list(known) if sources is None else list(sources)
        unknown = [name for name in names if name not in known]
        if unknown or not names:
            raise InputError(f"sources: expected names among {', '.join(known)}, got {names!r}")
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(f"{self.root}: RGB-D folder does not exist")
        self.split = split
        self.sources = [known[name] for name in names]
        self.kernel_scale = float(kernel_scale)
        self.random_flip = bool(random_flip)
        self.skip_bad = bool(skip_bad)
        self.seed = seed
        self.epoch = 0
        self.max_layers = max_layers
        self.cache_bytes = int(cache_bytes)
        self._cache: OrderedDict[str, tuple[torch.Tensor, torch.Tensor, float]] = OrderedDict()
        self.pairs = self._find_pairs()
        if not self.pairs:
            raise DataError(f"{self.root}: no RGB-D pairs" + (f" in split {split!r}" if split else ""))

    def __getstate__(self) -> dict:
        # Loader workers get the list of pairs, not the decoded images.
        return {**self.__dict__, "_cache": OrderedDict()}

    def _find_pairs(self) -> list[_Pair]:
        problems, pairs = [], []
        for source in self.sources:
            folder = self.root / source.folder
            if not folder.is_dir():
                problems.append(f"{folder}: source folder {source.name!r} does not exist")
                continue
            pattern = re.compile(source.rgb)
            matches = sorted(
                (match["id"], path) for path in folder.rglob("*")
                if (match := pattern.fullmatch(path.relative_to(folder).as_posix())) and path.is_file()
            )
            if not matches:
                problems.append(f"{folder}: no photos of source {source.name!r} (expected {source.rgb})")
                continue
            for position, (identifier, rgb) in enumerate(matches):
                name = f"{source.name}/{identifier}"
                held_out = is_holdout(source.name, name, position)
                if self.split is not None and held_out != (self.split == "holdout"):
                    continue
                candidates = [folder / template.format(id=identifier) for template in source.depth]
                depth = next((path for path in candidates if path.is_file()), None)
                if depth is None:
                    problems.append(f"{rgb}: no depth map ({candidates[0]} does not exist)")
                    continue
                pairs.append(_Pair(name, source, rgb, depth))
        if problems:
            if not self.skip_bad:
                more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
                raise DataError(problems[0] + more)
            for problem in problems:
                warnings.warn(f"skipping: {problem}", stacklevel=3)
        return pairs

    def set_epoch(self, epoch: int) -> None:
        """Draw new crops, focus and blur: items depend on (seed, epoch, index)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict:
        return dataset_item(
            self._item,
            index,
            len(self),
            skip_bad=self.skip_bad,
            name_of=lambda i: self.pairs[i].name,
            root=self.root,
        )

    # ------------------------------------------------------------------------------- decoding

    def _scale_range(self, height: int, width: int) -> tuple[float, float]:
        """Smallest and largest scale of the photo from which an item is cropped."""
        if self.size is None:
            return 1.0, 1.0
        smallest = max(self.size[0] / height, self.size[1] / width)
        return smallest, max(smallest, min(1.0, ZOOM_RANGE * smallest))

    def _entry(self, pair: _Pair) -> tuple[torch.Tensor, torch.Tensor, float]:
        """The pair's photo (3, H, W) uint8, filled disparity (1, H, W) and their scale, cached."""
        if pair.name in self._cache:
            self._cache.move_to_end(pair.name)
            return self._cache[pair.name]
        photo, disparity = load_rgbd(pair.source, pair.rgb, pair.depth)
        scale = min(1.0, self._scale_range(*photo.shape[-2:])[1])
        if scale < 1:  # shrunk once to the largest size an item needs
            size = (round(photo.shape[1] * scale), round(photo.shape[2] * scale))
            photo = _resize(photo.float(), size).round().clamp(0, 255).to(torch.uint8)
            disparity = _resize(disparity, size)
        entry = (photo, disparity, scale)
        self._cache[pair.name] = entry
        while len(self._cache) > 1 and sum(
            value[0].nbytes + value[1].nbytes for value in self._cache.values()
        ) > self.cache_bytes:
            self._cache.popitem(last=False)
        return entry

    # ------------------------------------------------------------------------------------ items

    def _item(self, index: int) -> dict:
        pair = self.pairs[index]
        photo, disparity, stored_scale = self._entry(pair)
        rng = np.random.default_rng([self.seed, self.epoch, index])
        original = (photo.shape[1] / stored_scale, photo.shape[2] / stored_scale)
        smallest, largest = self._scale_range(*original)
        scale = rng.uniform(smallest, largest)
        if self.size is None:
            height, width = photo.shape[-2:]
            image, disparity = photo.float() / 255, disparity
        else:
            height, width = self.size
            factor = scale / stored_scale
            target = (max(height, round(photo.shape[1] * factor)), max(width, round(photo.shape[2] * factor)))
            image, disparity = _resize(photo.float() / 255, target).clamp(0, 1), _resize(disparity, target)
        top = int(rng.integers(0, image.shape[1] - height + 1))
        left = int(rng.integers(0, image.shape[2] - width + 1))
        frame = disparity[:, top : top + height, left : left + width]

        focus = _focus_disparity(rng, frame)
        blur = 2 * MAX_BACKGROUND_BLUR * self.kernel_scale * rng.uniform(0.0, 1.0)  # largest |CoC|, px
        low, high = (float(value) for value in torch.aminmax(frame))
        farthest_offset = max(high - focus, focus - low)
        strength = blur / farthest_offset if farthest_offset > 0 else 0.0
        gain_strength = rng.uniform(2.0, 8.0) if rng.random() < HIGHLIGHT_PROBABILITY else 1.0
        flip = self.random_flip and rng.random() < 0.5

        # The frame with a margin of the photo around it (mirrored past its edges) blurs into the frame.
        margin = math.ceil(blur / 2) + 2
        canvas_image = _window(image, top - margin, left - margin, height + 2 * margin, width + 2 * margin)
        canvas_disparity = _window(disparity, top - margin, left - margin, height + 2 * margin,
                                   width + 2 * margin)
        coc_low, coc_high = strength * (low - focus), strength * (high - focus)
        canvas_coc = (strength * (canvas_disparity - focus)).clamp(coc_low, coc_high)
        if flip:
            canvas_image, canvas_coc, frame = canvas_image.flip(-1), canvas_coc.flip(-1), frame.flip(-1)
        gain = highlight_gain(canvas_image, gain_strength)
        bokeh = render_depth_bokeh(
            canvas_image, canvas_coc, margin=margin, gain=gain, max_layers=self.max_layers
        )
        crop = (slice(None), slice(margin, margin + height), slice(margin, margin + width))
        coc = canvas_coc[crop]
        item = {
            "image": canvas_image[crop],
            "bokeh": bokeh,
            "defocus": diameter_to_defocus(coc.abs() / 2),
            "coc": coc,
            "disparity": frame,
            "focus_mask": (coc.abs() <= NO_BLUR_DIAMETER).float(),
            **normalised_maps(frame, focus, strength),
        }
        item = {key: value.float().contiguous() for key, value in item.items()}
        item["name"] = pair.name
        return item


# ------------------------------------------------------------------------------------------ helpers


def load_rgbd(source: RGBDSource, rgb_path: Path, depth_path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """A pair's photo (3, H, W) uint8 and its disparity (1, H, W) float32, unknown pixels filled.

    Raises a one-line DataError naming the file for an unreadable file, a map of another size than
    the photo or one with (almost) no known pixel.
    """
    try:
        with open_image(rgb_path) as image:
            photo = np.asarray(image.convert("RGB"))
    except ImageReadError as error:
        raise DataError(str(error)) from None
    suffix = depth_path.suffix.lower()
    if suffix == ".pfm":
        values = read_pfm(depth_path)
    elif suffix == ".npy":
        values = read_npy_map(depth_path)
    else:
        values = read_map_image(depth_path, swap_bytes=source.format == "nyu_kinect")
    if values.shape != photo.shape[:2]:
        raise DataError(
            f"{depth_path}: size {values.shape[1]}x{values.shape[0]} differs from {rgb_path.name}'s "
            f"{photo.shape[1]}x{photo.shape[0]}"
        )
    disparity = to_disparity(values, source)
    known = np.isfinite(disparity) & (disparity > 0)
    if known.mean() < _MIN_KNOWN_SHARE:
        raise DataError(f"{depth_path}: only {100 * known.mean():.2g} % of the pixels have a depth")
    if source.sparse:
        known = _far_above_measurements(disparity, known)
    low, high = np.quantile(disparity[known], _CLIP_QUANTILES)
    disparity = np.where(known, np.clip(disparity, low, high), 0.0)
    filled = fill_unknown(torch.from_numpy(disparity.astype(np.float32)), torch.from_numpy(known))
    return torch.from_numpy(np.ascontiguousarray(photo.transpose(2, 0, 1))), filled


def to_disparity(values: np.ndarray, source: RGBDSource) -> np.ndarray:
    """A decoded map as disparity (1/m where the source is metric); unknown pixels <= 0 or not finite."""
    values = np.asarray(values, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        if source.format == "disparity":
            disparity = values
        elif source.format == "nyu_kinect":
            disparity = (1092.5 - values) / 351.3
        else:
            if source.format == "sun_rotated":
                bits = values.astype(np.uint16)
                values = ((bits >> 3) | (bits << 13)).astype(np.float64)
            depth = values * (source.metres or 1.0)
            disparity = np.where(depth > 0, 1.0 / depth, 0.0)
    return np.where(np.isfinite(disparity), disparity, 0.0)


def _far_above_measurements(disparity: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Mark pixels above each column's highest measurement as known at the farthest measured value."""
    first = np.argmax(known, axis=0)
    above = (np.arange(known.shape[0])[:, None] < first[None, :]) & known.any(axis=0)[None, :]
    disparity[above] = disparity[known].min()
    return known | above


def _focus_disparity(rng: np.random.Generator, disparity: torch.Tensor) -> float:
    """The focus: the nearest of three points around the centre (a subject), or a random point."""
    _, height, width = disparity.shape
    if rng.random() < SUBJECT_FOCUS_PROBABILITY:
        rows = np.clip(rng.normal(0.5, 0.15, 3) * height, 0, height - 1).astype(int)
        columns = np.clip(rng.normal(0.5, 0.15, 3) * width, 0, width - 1).astype(int)
        return float(disparity[0, rows, columns].max())
    return float(disparity[0, int(rng.integers(height)), int(rng.integers(width))])


def _resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(C, H, W) float resized to ``size`` (antialiased when shrinking)."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    return F.interpolate(image[None], size=size, mode="bilinear", align_corners=False, antialias=True)[0]


def _window(image: torch.Tensor, top: int, left: int, height: int, width: int) -> torch.Tensor:
    """The (C, height, width) window at (top, left) of (C, H, W), mirrored where it passes the edges."""
    full_height, full_width = image.shape[-2:]
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + height, full_height), min(left + width, full_width)
    inside = image[:, y0:y1, x0:x1]
    pad = (x0 - left, left + width - x1, y0 - top, top + height - y1)
    if not any(pad):
        return inside
    # Mirroring needs each pad to be shorter than the side; repeat the edge past that.
    mode = "reflect" if max(pad[:2]) < inside.shape[2] and max(pad[2:]) < inside.shape[1] else "replicate"
    return F.pad(inside[None], pad, mode=mode)[0]


__all__ = [
    "FORMATS",
    "HOLDOUT_EVERY",
    "HOLDOUT_NAMES",
    "SOURCES",
    "SPLITS",
    "RGBDBokehDataset",
    "RGBDSource",
    "is_holdout",
    "load_rgbd",
    "to_disparity",
]
