"""Paired image transforms: the same resize, crop and flip on an image and its bokeh (and masks).

Images are (C, H, W) float tensors. Random choices come from a ``numpy.random.Generator`` so that a
dataset can make them reproducible per item.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from d2f.errors import D2FError, DataError, InputError

#: Stage 1 of D2F runs at half resolution with sides that are multiples of this.
HALF_RESOLUTION_MULTIPLE = 64


def half_resolution_size(height: int, width: int) -> tuple[int, int]:
    """The size stage 1 runs at: each side halved and rounded to a multiple of 64 (at least 64).

    ``round(side / 2 / 64) * 64`` with NumPy's rounding (halves go to the even multiple), as the
    reference implementation does; e.g. 1024x1536 -> 512x768.
    """
    sides = []
    for name, side in (("height", height), ("width", width)):
        if isinstance(side, bool) or not isinstance(side, int | np.integer) or side < 1:
            raise InputError(f"{name}: expected a positive integer, got {side!r}")
        multiples = int(np.round(side / 2 / HALF_RESOLUTION_MULTIPLE))
        sides.append(max(1, multiples) * HALF_RESOLUTION_MULTIPLE)
    return sides[0], sides[1]


def as_size(size: object, name: str = "size") -> tuple[int, int]:
    """An int or (height, width) of positive ints as ``(height, width)``; InputError otherwise."""
    if isinstance(size, int | np.integer) and not isinstance(size, bool):
        size = (int(size), int(size))
    if not is_size_pair(size, minimum=1):
        raise InputError(f"{name}: expected a positive integer or (height, width), got {size!r}")
    return int(size[0]), int(size[1])


def check_size(size: object) -> tuple[int, int]:
    """A scene size: ``(height, width)`` as two ints >= 16, or an InputError."""
    if not is_size_pair(size, minimum=16):
        raise InputError(f"size: expected (height, width) of integers >= 16, got {size!r}")
    return int(size[0]), int(size[1])


def is_size_pair(size: object, *, minimum: int) -> bool:
    """Whether ``size`` is a (height, width) pair of integers (not bools), both at least ``minimum``."""
    return (
        isinstance(size, Sequence)
        and len(size) == 2
        and all(isinstance(side, int | np.integer) and not isinstance(side, bool) for side in size)
        and min(size) >= minimum
    )


def resize(image: torch.Tensor, size: tuple[int, int], *, mode: str = "bilinear") -> torch.Tensor:
    """Resize (C, H, W) to ``size`` (antialiased when shrinking); ``mode="nearest"`` for label masks."""
    size = as_size(size)
    if tuple(image.shape[-2:]) == size:
        return image
    if mode == "nearest":
        return F.interpolate(image[None], size=size, mode="nearest")[0]
    # Bilinear weights are non-negative, so the result stays within the input's range.
    return F.interpolate(image[None], size=size, mode=mode, align_corners=False, antialias=True)[0]


def paired_random_crop(
    images: Sequence[torch.Tensor], size: int | tuple[int, int], rng: np.random.Generator
) -> list[torch.Tensor]:
    """The same random ``size`` crop of every image (all of one size); InputError when they are smaller."""
    height, width = as_size(size, "crop_size")
    image_height, image_width = images[0].shape[-2:]
    if height > image_height or width > image_width:
        raise InputError(
            f"crop_size: {height}x{width} is larger than the image ({image_height}x{image_width})"
        )
    top = int(rng.integers(0, image_height - height + 1))
    left = int(rng.integers(0, image_width - width + 1))
    return [image[..., top : top + height, left : left + width] for image in images]


def paired_random_flip(images: Sequence[torch.Tensor], rng: np.random.Generator) -> list[torch.Tensor]:
    """Mirror all images left-right together, with probability 1/2."""
    if rng.random() < 0.5:
        return [image.flip(-1) for image in images]
    return list(images)


def dataset_item(
    load: Callable[[int], dict],
    index: int,
    count: int,
    *,
    skip_bad: bool,
    name_of: Callable[[int], str],
    root: object,
) -> dict:
    """Item ``index`` of a dataset of ``count`` pairs, ``load`` reading one by its position.

    Negative indices count from the end, as for a list; others raise IndexError. With ``skip_bad``,
    a pair that fails to load is skipped with a warning naming it and the next one that loads is
    returned (DataError naming ``root`` when none does): the ``skip_bad`` rule of d2f's datasets.
    """
    if not -count <= index < count:
        raise IndexError(f"index {index} is out of range for {count} pairs")
    index %= count
    if not skip_bad:
        return load(index)
    for attempt in range(count):
        candidate = (index + attempt) % count
        try:
            return load(candidate)
        except D2FError as error:
            warnings.warn(f"skipping pair {name_of(candidate)!r}: {error}", stacklevel=3)
    raise DataError(f"{root}: no readable pair left (every pair failed to load)")


__all__ = [
    "HALF_RESOLUTION_MULTIPLE",
    "as_size",
    "check_size",
    "dataset_item",
    "half_resolution_size",
    "paired_random_crop",
    "paired_random_flip",
    "resize",
]

