"""The EBB! dataset ("Everything is Better with Bokeh", AIM 2020) of all-in-focus / bokeh photo pairs.

As distributed, ``Training/original/<n>.jpg`` and ``Training/bokeh/<n>.jpg`` hold 4694 pairs (about
1536x1024). The community test split "Val294" is pairs 4400-4693; the rest is for training. Any folder
with ``original/`` and ``bokeh/`` sub-folders works (files are paired by name, any image format), e.g.
the output of ``d2f synth``. An optional ``subject_mask/<n>.png`` (white on the subject) comes along for
evaluation.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from d2f.data.transforms import (
    as_size,
    dataset_item,
    half_resolution_size,
    paired_random_crop,
    paired_random_flip,
    resize,
)
from d2f.errors import DataError, InputError
from d2f.io import IMAGE_EXTENSIONS, read_image

#: Names of the splits: None (every pair), "train" (all but Val294) and "val294" (pairs 4400-4693).
SPLITS = (None, "train", "val294")

#: Pair numbers of the Val294 test split.
VAL294_IDS = range(4400, 4694)

#: Resize policies besides an explicit (height, width): "half" is stage 1's size of the original,
#: "match" resizes the bokeh (and mask) to the original's size.
RESIZE_POLICIES = ("half", "match")


def _images_by_stem(folder: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith("."):
            if path.stem in files:
                other = files[path.stem].name
                raise DataError(f"{path}: two images named {path.stem!r} in {folder} (also {other})")
            files[path.stem] = path
    return files


def _sort_key(name: str) -> tuple[int, int, str]:
    return (0, int(name), name) if name.isdigit() else (1, 0, name)


def resolve_root(root: str | os.PathLike) -> Path:
    """The folder holding ``original/`` and ``bokeh/``: ``root`` itself or its ``Training/`` folder."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: dataset folder does not exist")
    for candidate in (root, root / "Training"):
        if (candidate / "original").is_dir() and (candidate / "bokeh").is_dir():
            return candidate
    raise DataError(f"{root}: expected original/ and bokeh/ folders (or EBB!'s Training/ folder with them)")


class EBBDataset(Dataset):
    """Pairs of all-in-focus and bokeh photos from an EBB!-style folder.

    Items are dicts ``{"image": (3, H, W), "bokeh": (3, H, W), "name": str}`` (float32 in [0, 1]), plus
    ``"subject_mask": (1, H, W)`` in [0, 1] when ``root/subject_mask/<name>.png`` exists.

    Args:
        root: a folder with ``original/`` and ``bokeh/`` (or EBB!'s top folder with ``Training/``).
        split: None (every pair), ``"train"`` (all but 4400-4693) or ``"val294"`` (4400-4693).
        crop_size: int or (height, width): the same random crop of both images (after resizing).
        random_flip: mirror both images left-right with probability 1/2.
        resize: None, (height, width), ``"half"`` (stage 1's half resolution of the original) or
            ``"match"`` (the bokeh resized to the original's size). Pairs of different sizes are an
            error unless a policy is given.
        skip_bad: skip unpaired, missing or corrupt files with a warning instead of raising.
        seed: random crops and flips are a function of (seed, epoch, index); see :meth:`set_epoch`.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str | None = None,
        *,
        crop_size: int | tuple[int, int] | None = None,
        random_flip: bool = False,
        resize: tuple[int, int] | str | None = None,
        skip_bad: bool = False,
        seed: int = 0,
    ):
        if split not in SPLITS:
            raise InputError(f"split: expected one of {SPLITS}, got {split!r}")
        self.crop_size = None if crop_size is None else as_size(crop_size, "crop_size")
        if resize is not None and resize not in RESIZE_POLICIES:
            resize = as_size(resize, "resize")
        self.resize = resize
        self.random_flip = bool(random_flip)
        self.skip_bad = bool(skip_bad)
        self.seed = int(seed)
        self.epoch = 0
        self.root = resolve_root(root)
        self.split = split
        self.pairs = self._find_pairs()
        if not self.pairs:
            raise DataError(f"{self.root}: no image pairs" + (f" in split {split!r}" if split else ""))

    def _find_pairs(self) -> list[tuple[str, Path, Path, Path | None]]:
        originals = _images_by_stem(self.root / "original")
        bokehs = _images_by_stem(self.root / "bokeh")
        mask_folder = self.root / "subject_mask"
        problems = [f"{path}: no matching image in {self.root / 'bokeh'}"
                    for stem, path in originals.items() if stem not in bokehs]
        problems += [f"{path}: no matching image in {self.root / 'original'}"
                     for stem, path in bokehs.items() if stem not in originals]
        if problems:
            if not self.skip_bad:
                more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
                raise DataError(problems[0] + more)
            warnings.warn(f"skipping {len(problems)} unpaired files, e.g. {problems[0]}", stacklevel=3)
        pairs = []
        for stem in sorted(set(originals) & set(bokehs), key=_sort_key):
            if self.split is not None:
                in_val294 = stem.isdigit() and int(stem) in VAL294_IDS
                if in_val294 != (self.split == "val294"):
                    continue
            mask = mask_folder / f"{stem}.png"
            pairs.append((stem, originals[stem], bokehs[stem], mask if mask.is_file() else None))
        return pairs

    def set_epoch(self, epoch: int) -> None:
        """Draw new crops and flips: items depend on (seed, epoch, index)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict:
        return dataset_item(
            self._load,
            index,
            len(self),
            skip_bad=self.skip_bad,
            name_of=lambda i: self.pairs[i][0],
            root=self.root,
        )

    def _load(self, index: int) -> dict:
        name, original_path, bokeh_path, mask_path = self.pairs[index]
        image, bokeh = read_image(original_path), read_image(bokeh_path)
        tensors = {"image": image, "bokeh": bokeh}
        if mask_path is not None:
            tensors["subject_mask"] = _read_mask(mask_path)
        tensors = self._resized(tensors, original_path, bokeh_path, mask_path)
        rng = np.random.default_rng([self.seed, self.epoch, index])
        keys, values = list(tensors), list(tensors.values())
        if self.crop_size is not None:
            try:
                values = paired_random_crop(values, self.crop_size, rng)
            except InputError as error:
                raise DataError(f"{original_path}: {error}") from None
        if self.random_flip:
            values = paired_random_flip(values, rng)
        item = {key: value.contiguous() for key, value in zip(keys, values, strict=True)}
        item["name"] = name
        return item

    def _resized(self, tensors: dict, original_path: Path, bokeh_path: Path, mask_path: Path | None) -> dict:
        size = tuple(tensors["image"].shape[-2:])
        if self.resize is None:
            for key, path in (("bokeh", bokeh_path), ("subject_mask", mask_path)):
                if key in tensors and tuple(tensors[key].shape[-2:]) != size:
                    other = tuple(tensors[key].shape[-2:])
                    raise DataError(
                        f"{path}: size {other[1]}x{other[0]} differs from {original_path.name}'s "
                        f"{size[1]}x{size[0]} (pass a resize policy, e.g. resize='match')"
                    )
            return tensors
        if self.resize == "match":
            target = size
        elif self.resize == "half":
            target = half_resolution_size(*size)
        else:
            target = self.resize
        return {key: resize(value, target) for key, value in tensors.items()}


def _read_mask(path: Path) -> torch.Tensor:
    """A grey mask image as (1, H, W) float32 in [0, 1]."""
    try:
        with Image.open(path) as image:
            mask = np.asarray(image.convert("L"), dtype=np.float32) / 255
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: cannot read subject mask ({type(error).__name__}: {error})") from None
    return torch.from_numpy(mask)[None]


__all__ = ["RESIZE_POLICIES", "SPLITS", "VAL294_IDS", "EBBDataset", "resolve_root"]
