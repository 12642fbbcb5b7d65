"""Depth maps from other tools, as the normalised disparity d2f renders from (0 far, 1 near).

A phone's portrait depth, a stereo matcher's disparity or a depth estimator's output comes as an 8- or
16-bit PNG, a TIFF (often 32-bit float), a NumPy ``.npy`` array or a ``.pfm`` file (Middlebury's float
format), at any size. :func:`read_depth` reads any of them, :func:`normalised_disparity` turns the
values into disparity (``1 / depth`` for depth maps), marks unknown pixels (0, NaN, inf, negative, or a
stated invalid value), fills them from their nearest known neighbour (:func:`fill_unknown`) and scales
the known range to [0, 1]; for a metric map :func:`disparity_span` gives what that 1 stands for in 1/m
(:func:`metric_disparity`: both at once).

This module sits below :mod:`d2f.io` and :mod:`d2f.data` (both use it) and imports neither.
"""

from __future__ import annotations

import math
import numbers
import os
import re
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from d2f.errors import DataError, InputError

#: What :func:`normalised_disparity` accepts as the meaning of the values.
DEPTH_KINDS = ("disparity", "depth")

#: A map needs at least this share of known pixels (and two of them) to be filled and used.
MIN_KNOWN_FRACTION = 0.01


def known_disparity(disparity: torch.Tensor) -> torch.Tensor:
    """Mask of measured pixels: finite and > 0 (inf, NaN and 0 mark unknown pixels)."""
    return torch.isfinite(disparity) & (disparity > 0)


def _as_map(disparity: object) -> torch.Tensor:
    """(H, W), (1, H, W) array or tensor as a float32 (1, H, W) tensor on the CPU."""
    if isinstance(disparity, np.ndarray):
        disparity = torch.from_numpy(np.asarray(disparity, dtype=np.float32))
    if not isinstance(disparity, torch.Tensor):
        raise InputError(f"disparity: expected an array or a tensor, got {type(disparity).__name__}")
    if disparity.dim() == 2:
        disparity = disparity[None]
    if disparity.dim() != 3 or disparity.shape[0] != 1 or min(disparity.shape) < 1:
        raise InputError(f"disparity: expected shape (H, W) or (1, H, W), got {tuple(disparity.shape)}")
    return disparity.detach().to(device="cpu", dtype=torch.float32)


def fill_unknown(disparity: object, known: torch.Tensor | None = None) -> torch.Tensor:
    """Disparity (1, H, W) with every unknown pixel set to its nearest known neighbour's value.

    Args:
        disparity: (H, W) or (1, H, W) array or tensor.
        known: bool mask of measured pixels, same shape; default :func:`known_disparity`.
    """
    disparity = _as_map(disparity)
    known = known_disparity(disparity) if known is None else _as_map(known).bool()
    if known.shape != disparity.shape:
        raise InputError(f"known: expected shape {tuple(disparity.shape)}, got {tuple(known.shape)}")
    if not bool(known.any()):
        raise DataError("disparity: no known pixel (all are inf, NaN or <= 0)")
    if bool(known.all()):
        return disparity.clone()
    from scipy import ndimage  # imported here to keep `import d2f` quick

    # For each pixel, the indices of the nearest known pixel (Euclidean distance).
    _, (rows, columns) = ndimage.distance_transform_edt(~known[0].numpy(), return_indices=True)
    return disparity[0][torch.from_numpy(rows), torch.from_numpy(columns)][None]


def normalised_disparity(
    values: object, kind: str = "disparity", invalid: float | None = None, *, name: str = "depth"
) -> torch.Tensor:
    """A depth or disparity map as a float32 (1, H, W) normalised disparity: 0 the farthest, 1 the nearest.

    Args:
        values: (H, W), (1, H, W) or (H, W, 1) array or tensor of any real dtype; a map stored as
            identical colour channels (grey saved as RGB) is taken as one channel.
        kind: ``"disparity"`` (larger is nearer: inverse depth, stereo disparity, most estimators'
            "relative depth") or ``"depth"`` (larger is farther: metres, millimetres, ...).
        invalid: a value that marks unknown pixels, besides 0, NaN, inf and negative values.
        name: what to call the map in errors (a path, for files).

    Raises:
        InputError: several distinct channels, or fewer known pixels than :data:`MIN_KNOWN_FRACTION`.
    """
    disparity, known = _disparity_and_known(values, kind, invalid, name)
    return _normalise(disparity, known, *_known_range(disparity, known))


def disparity_span(
    values: object,
    kind: str = "disparity",
    invalid: float | None = None,
    *,
    depth_scale: float,
    name: str = "depth",
) -> float:
    """The span, in 1/m, of the disparity of a depth map whose values times ``depth_scale`` are metres
    (``kind="depth"``) or 1/m (``"disparity"``): what :func:`normalised_disparity`'s 1 stands for.

    The same known pixels as :func:`normalised_disparity`; ``values``, ``kind`` and ``invalid`` as
    there. A map of millimetres takes ``depth_scale=0.001``.
    """
    _check_depth_scale(depth_scale)
    disparity, known = _disparity_and_known(values, kind, invalid, name)
    low, high = _known_range(disparity, known)
    return _in_inverse_metres(high - low, kind, depth_scale)


def metric_disparity(
    values: object,
    kind: str = "disparity",
    invalid: float | None = None,
    *,
    depth_scale: float,
    name: str = "depth",
) -> tuple[torch.Tensor, float]:
    """:func:`normalised_disparity` and :func:`disparity_span` of a metric map, reading and checking it
    once: ``(disparity (1, H, W), span in 1/m)``; arguments as there."""
    _check_depth_scale(depth_scale)
    disparity, known = _disparity_and_known(values, kind, invalid, name)
    low, high = _known_range(disparity, known)
    return _normalise(disparity, known, low, high), _in_inverse_metres(high - low, kind, depth_scale)


def _check_depth_scale(depth_scale: object) -> None:
    if not isinstance(depth_scale, numbers.Real) or isinstance(depth_scale, bool) or not (
        0 < float(depth_scale) < math.inf
    ):
        raise InputError(f"depth_scale: expected a finite number > 0, got {depth_scale!r}")


def _known_range(disparity: np.ndarray, known: np.ndarray) -> tuple[float, float]:
    values = disparity[known]
    return float(values.min()), float(values.max())


def _normalise(disparity: np.ndarray, known: np.ndarray, low: float, high: float) -> torch.Tensor:
    """``disparity`` (H, W) with its known range [low, high] scaled to [0, 1], unknown pixels filled:
    (1, H, W)."""
    scaled = (disparity - low) / (high - low) if high > low else np.zeros_like(disparity)
    filled = fill_unknown(torch.from_numpy(scaled.astype(np.float32)), torch.from_numpy(known))
    return filled.clamp(0, 1)


def _in_inverse_metres(span: float, kind: str, depth_scale: float) -> float:
    """A span of the map's disparity (``1 / value`` for depth) in 1/m, the values times ``depth_scale``
    being metres (depth) or 1/m (disparity)."""
    return span * float(depth_scale) if kind == "disparity" else span / float(depth_scale)


def _disparity_and_known(
    values: object, kind: str, invalid: float | None, name: str
) -> tuple[np.ndarray, np.ndarray]:
    """The map as float64 (H, W) disparity (``1 / depth`` for depth; 1 where unknown) and its mask of
    known pixels, with the checks of :func:`normalised_disparity`."""
    if kind not in DEPTH_KINDS:
        raise InputError(f"depth_kind: expected one of {', '.join(DEPTH_KINDS)}, got {kind!r}")
    if invalid is not None and (isinstance(invalid, bool) or not isinstance(invalid, (int, float))):
        raise InputError(f"depth_invalid: expected a number, got {invalid!r}")
    array = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    if array.dtype == bool or not (np.issubdtype(array.dtype, np.number)):
        raise InputError(f"{name}: expected a numeric map, got values of type {array.dtype}")
    array = _one_channel(array, name).astype(np.float64)
    known = np.isfinite(array) & (array > 0)
    if invalid is not None:
        known &= array != invalid
    count, total = int(known.sum()), array.size
    if count < max(2, math.ceil(MIN_KNOWN_FRACTION * total)):
        raise InputError(
            f"{name}: only {count} of {total} pixels have a valid {kind} (need at least "
            f"{MIN_KNOWN_FRACTION:.0%}); 0, NaN, inf, negative values and the invalid value count as unknown"
        )
    disparity = np.where(known, array, 1.0)
    return (1.0 / disparity if kind == "depth" else disparity), known


def _one_channel(array: np.ndarray, name: str) -> np.ndarray:
    """(H, W) from (H, W), (1, H, W), (H, W, 1) or (H, W, C) with identical channels."""
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim == 3:
        channels = array.shape[-1]
        grey = channels in (3, 4) and all(np.array_equal(array[..., 0], array[..., c]) for c in (1, 2))
        if channels == 1 or grey:
            array = array[..., 0]
        else:
            raise InputError(
                f"{name}: expected one channel of depth (H, W) or (H, W, 1), got shape "
                f"{tuple(array.shape)}: {channels} different channels (a colour image, or a channels-first "
                "array, rather than a depth map?)"
            )
    if array.ndim != 2 or min(array.shape) < 1:
        raise InputError(f"{name}: expected a map of shape (H, W), got shape {tuple(array.shape)}")
    return array


def read_depth(
    path: str | os.PathLike, kind: str = "disparity", invalid: float | None = None
) -> torch.Tensor:
    """Read a depth or disparity map file as a normalised disparity (1, H, W) float32 in [0, 1].

    8- or 16-bit PNG, TIFF (integer or float), other single-channel images Pillow reads, ``.npy``
    and ``.pfm``; see :func:`normalised_disparity` for ``kind`` and ``invalid``.

    Raises:
        InputError: a missing or unreadable file, a map with several distinct channels, or too few
            known pixels; the one-line message starts with the path.
    """
    return normalised_disparity(load_depth_values(path), kind, invalid, name=str(path))


def load_depth_values(path: str | os.PathLike) -> np.ndarray:
    """A depth map file's values as they are stored (any dtype and shape; see :func:`read_depth`).

    Raises:
        InputError: a missing or unreadable file; the one-line message starts with the path.
    """
    path = Path(path)
    if not path.is_file():
        problem = "is a folder, not a depth map" if path.is_dir() else "no such file"
        raise InputError(f"{path}: {problem}")
    return _load(path)


def _load(path: Path) -> np.ndarray:
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            return np.load(path, allow_pickle=False)
        if suffix == ".pfm":
            return _read_pfm(path)
        with Image.open(path) as image:
            image.load()
            return np.asarray(image)
    except InputError:
        raise
    except UnidentifiedImageError:
        raise InputError(f"{path}: cannot read the depth map (not an image, .npy or .pfm file)") from None
    except Exception as error:  # corrupt files fail with many exception types; all mean the same here
        raise InputError(f"{path}: cannot read the depth map ({type(error).__name__}: {error})") from None


def _read_pfm(path: Path) -> np.ndarray:
    """A Portable Float Map: ``Pf`` (grey) or ``PF`` (colour), rows stored from the bottom up."""
    with open(path, "rb") as file:
        kind = file.readline().strip()
        if kind not in (b"Pf", b"PF"):
            raise InputError(f"{path}: cannot read the depth map (not a PFM file: no Pf/PF header)")
        size = re.fullmatch(rb"\s*(\d+)\s+(\d+)\s*", file.readline())
        if size is None:
            raise InputError(f"{path}: cannot read the depth map (bad PFM size line)")
        width, height = int(size[1]), int(size[2])
        scale = float(file.readline().strip())
        channels = 3 if kind == b"PF" else 1
        dtype = "<f4" if scale < 0 else ">f4"
        data = np.frombuffer(file.read(), dtype=dtype)
    if data.size < width * height * channels:
        raise InputError(f"{path}: cannot read the depth map (PFM data truncated)")
    data = data[: width * height * channels].reshape(height, width, channels)
    return np.ascontiguousarray(data[::-1])


__all__ = [
    "DEPTH_KINDS",
    "disparity_span",
    "fill_unknown",
    "known_disparity",
    "load_depth_values",
    "metric_disparity",
    "normalised_disparity",
    "read_depth",
]
