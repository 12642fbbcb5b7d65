"""A compact copy of RGB-D photos for training where ``../shared/rgbd`` is not at hand (a GPU machine).

``scripts/cache_rgbd.py`` writes it with :func:`write_cache_entry` and :func:`write_cache_index`; a
folder holds, per photo, ``<n>.jpg`` (sRGB, JPEG quality 90) and ``<n>.png`` (its disparity divided
by the photo's largest, in :data:`DISPARITY_LEVELS` steps stored as 16-bit grey ``level * 64``: the
nearest pixel is 1023 * 64, infinitely far 0; ten bits, because ToF noise in the lower bits would
triple the files), and ``index.json`` listing ``{"name", "split", "image", "disparity"}`` per photo.

:class:`RGBDCacheDataset` reads it as training items: random zoom, crop and flip (training) or the
central crop (validation), a focus drawn as :class:`d2f.data.RGBDBokehDataset` draws it (the nearest
of three points around the centre, or a random point), and its in-focus mask. No bokeh is rendered:
the depth stage needs only ``image``, ``disparity`` and ``focus_mask``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import Dataset

from d2f.errors import DataError, InputError

INDEX_NAME = "index.json"
FORMAT = "d2f-rgbd-cache-1"

#: Share of items focused on the subject (the nearest of three points around the centre); the others
#: focus on a random point of the frame.
SUBJECT_FOCUS_PROBABILITY = 0.7

#: Pixels whose normalised disparity (0 far, 1 near, over the item) is this close to the focus's are
#: in focus.
FOCUS_TOLERANCE = 0.04

#: Steps of the stored disparity (0 to 1023), and the factor that puts them in a 16-bit PNG.
DISPARITY_LEVELS = 1023
LEVEL_STEP = 64

#: Training crops span from the largest that fits the photo to a zoom of this factor into it.
ZOOM_RANGE = 1.6


def write_cache_entry(
    root: str | os.PathLike, number: int, image: np.ndarray, disparity: np.ndarray, long_side: int
) -> dict[str, str]:
    """Write photo ``number`` into the cache folder ``root``, shrunk to at most ``long_side``.

    Args:
        image: (H, W, 3) uint8 sRGB.
        disparity: (H, W) float disparity, > 0 (near = large), any unit.
        long_side: the longer side of the stored copy (photos are never enlarged).

    Returns the entry's file names (``image``, ``disparity``) for the index.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InputError(f"image: expected (H, W, 3) uint8, got {image.shape} {image.dtype}")
    if disparity.shape != image.shape[:2]:
        raise InputError(f"disparity: expected the photo's size {image.shape[:2]}, got {disparity.shape}")
    height, width = image.shape[:2]
    scale = min(1.0, long_side / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    photo = Image.fromarray(image)
    depth = torch.from_numpy(np.asarray(disparity, dtype=np.float32))[None, None]
    if scale < 1:
        photo = photo.resize(size, Image.Resampling.LANCZOS)
        depth = F.interpolate(depth, size=size[::-1], mode="area")
    depth = depth[0, 0].numpy().clip(0, None)
    levels = np.round(depth / max(float(depth.max()), 1e-12) * DISPARITY_LEVELS).astype(np.uint16)
    levels *= LEVEL_STEP
    root = Path(root)
    names = {"image": f"{number:05d}.jpg", "disparity": f"{number:05d}.png"}
    photo.save(root / names["image"], quality=90)
    Image.fromarray(levels).save(root / names["disparity"], optimize=True)
    return names


def write_cache_index(root: str | os.PathLike, entries: list[dict[str, str]]) -> Path:
    """Write ``index.json`` (entries: ``name``, ``split``, ``image``, ``disparity``) last."""
    path = Path(root) / INDEX_NAME
    path.write_text(json.dumps({"format": FORMAT, "items": entries}, indent=1))
    return path


def read_cache_index(root: str | os.PathLike, split: str | None = None) -> list[dict[str, str]]:
    """The cache's entries (of ``split`` only when given); one-line DataErrors for a bad folder."""
    path = Path(root) / INDEX_NAME
    if not path.is_file():
        raise DataError(f"{path}: no RGB-D cache index (write one with scripts/cache_rgbd.py)")
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: unreadable RGB-D cache index ({error})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise DataError(f"{path}: not an RGB-D cache index of format {FORMAT}")
    entries = [entry for entry in document["items"] if split is None or entry["split"] == split]
    if not entries:
        raise DataError(f"{path}: no photos" + (f" in split {split!r}" if split else ""))
    return entries


class RGBDCacheDataset(Dataset):
    """Items of an RGB-D cache: ``image`` (3, h, w) in [0, 1], ``disparity`` (1, h, w) in [0, 1]
    (divided by the photo's largest; near = large), ``focus_mask`` (1, h, w) in {0, 1} and ``name``.

    Args:
        root: a folder written by ``scripts/cache_rgbd.py``.
        split: the index's split to read (``"train"``, ``"holdout"``), or None for all.
        size: (h, w) of the items, or None for whole photos (which may differ in size).
        random: training items: random zoom (up to :data:`ZOOM_RANGE`), crop, flip and focus, drawn
            from torch's global generator (seeded per item by the training loop). Otherwise the
            central crop of the whole photo, focused at its centre.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str | None = "train",
        *,
        size: tuple[int, int] | None = (384, 512),
        random: bool = True,
    ):
        self.root = Path(root)
        self.entries = read_cache_index(self.root, split)
        self.size = size
        self.random = random

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int) -> dict:
        entry = self.entries[index]
        image, disparity = self._read(entry)
        if self.size is not None:
            image, disparity = self._crop(image, disparity)
        if self.random and torch.rand(()) < 0.5:
            image, disparity = image.flip(-1), disparity.flip(-1)
        normalised = _min_max(disparity)
        focus = self._focus(normalised)
        focus_mask = ((normalised - focus).abs() <= FOCUS_TOLERANCE).float()
        return {"image": image, "disparity": disparity, "focus_mask": focus_mask, "name": entry["name"]}

    def _read(self, entry: dict[str, str]) -> tuple[torch.Tensor, torch.Tensor]:
        paths = [self.root / entry[key] for key in ("image", "disparity")]
        try:
            with Image.open(paths[0]) as file:
                image = np.asarray(file.convert("RGB"))
            with Image.open(paths[1]) as file:
                levels = np.asarray(file).astype(np.float32)
        except OSError as error:
            raise DataError(f"{entry['name']}: unreadable cache file ({error})") from None
        if levels.shape != image.shape[:2]:
            raise DataError(f"{paths[1]}: size {levels.shape} differs from its photo's {image.shape[:2]}")
        image = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float() / 255
        return image, torch.from_numpy(levels)[None] / (DISPARITY_LEVELS * LEVEL_STEP)

    def _crop(self, image: torch.Tensor, disparity: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        height, width = self.size
        smallest = max(height / image.shape[1], width / image.shape[2])
        scale = smallest
        if self.random:
            scale *= 1 + (ZOOM_RANGE - 1) * float(torch.rand(()))
        target = (max(height, round(image.shape[1] * scale)), max(width, round(image.shape[2] * scale)))
        image = _resize(image, target).clamp(0, 1)
        disparity = _resize(disparity, target).clamp(0, 1)
        if self.random:
            top = int(torch.randint(0, target[0] - height + 1, ()))
            left = int(torch.randint(0, target[1] - width + 1, ()))
        else:
            top, left = (target[0] - height) // 2, (target[1] - width) // 2
        window = (slice(None), slice(top, top + height), slice(left, left + width))
        return image[window].contiguous(), disparity[window].contiguous()

    def _focus(self, normalised: torch.Tensor) -> float:
        _, height, width = normalised.shape
        if not self.random:
            return float(normalised[0, height // 2, width // 2])
        if torch.rand(()) < SUBJECT_FOCUS_PROBABILITY:
            rows = (torch.randn(3) * 0.15 + 0.5).clamp(0, 1) * (height - 1)
            columns = (torch.randn(3) * 0.15 + 0.5).clamp(0, 1) * (width - 1)
            return float(normalised[0, rows.long(), columns.long()].max())
        return float(normalised[0, int(torch.randint(height, ())), int(torch.randint(width, ()))])


def _min_max(disparity: torch.Tensor) -> torch.Tensor:
    low, high = disparity.min(), disparity.max()
    return (disparity - low) / (high - low).clamp_min(1e-6)


def _resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(C, H, W) resized to ``size``, antialiased when shrinking."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    return F.interpolate(image[None], size=size, mode="bilinear", align_corners=False, antialias=True)[0]


__all__ = [
    "DISPARITY_LEVELS",
    "FOCUS_TOLERANCE",
    "RGBDCacheDataset",
    "read_cache_index",
    "write_cache_entry",
    "write_cache_index",
]
