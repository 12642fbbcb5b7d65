"""Reading depth and disparity maps in the formats public RGB-D data sets use.

- :func:`read_pfm`: Portable Float Map (Middlebury 2014's ``disp0GT.pfm``), ``inf`` marking unknown.
- :func:`read_map_image`: one channel of an 8- or 16-bit PNG or PGM as integers, including the 16-bit
  RGB PNGs that Pillow reduces to 8 bits (Middlebury 2014's ``disp0.png``), decoded here.
- :func:`read_npy_map`: a float ``.npy`` array (NYU depth in metres).

Every reader returns a float64 (H, W) NumPy array and raises a one-line :class:`~d2f.errors.DataError`
naming the file when it cannot.
"""

from __future__ import annotations

import os
import re
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from d2f.errors import DataError

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# PNG colour types and their channels: grey, RGB, palette, grey + alpha, RGBA.
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error.strerror or error})") from None


def read_pfm(path: str | os.PathLike) -> np.ndarray:
    """A grey PFM file as (H, W) float64, top row first (PFM stores the bottom row first)."""
    path = Path(path)
    data = _read_bytes(path)
    match = re.match(rb"(P[fF])\s+(\d+)\s+(\d+)\s+(\S+)\s", data)
    if match is None:
        raise DataError(f"{path}: not a PFM file (expected a 'Pf' header with width, height and scale)")
    kind, width, height = match[1], int(match[2]), int(match[3])
    if kind != b"Pf":
        raise DataError(f"{path}: expected a one-channel PFM ('Pf'), got a colour one ('PF')")
    try:
        scale = float(match[4])
    except ValueError:
        raise DataError(f"{path}: PFM scale {match[4].decode(errors='replace')!r} is not a number") from None
    # A negative scale marks little-endian floats.
    dtype = np.dtype("<f4" if scale < 0 else ">f4")
    body = data[match.end():]
    if width < 1 or height < 1 or len(body) < width * height * 4:
        raise DataError(f"{path}: PFM file truncated ({len(body)} bytes for {width}x{height} floats)")
    values = np.frombuffer(body, dtype=dtype, count=width * height).reshape(height, width)
    return values[::-1].astype(np.float64)


def read_npy_map(path: str | os.PathLike) -> np.ndarray:
    """A 2-D ``.npy`` array (or (1, H, W) / (H, W, 1)) as (H, W) float64."""
    path = Path(path)
    try:
        values = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: cannot read as a NumPy array ({type(error).__name__}: {error})") from None
    values = np.squeeze(values)
    if values.ndim != 2 or not np.issubdtype(values.dtype, np.number):
        raise DataError(f"{path}: expected a 2-D numeric array, got shape {values.shape} of {values.dtype}")
    return values.astype(np.float64)


def read_map_image(path: str | os.PathLike, *, swap_bytes: bool = False) -> np.ndarray:
    """The first channel of a PNG/PGM/PPM depth or disparity image as (H, W) float64 integer values.

    8- and 16-bit grey images keep their values; an RGB image stores the map in its channels, so the
    first one is taken (16-bit RGB PNGs are decoded here, since Pillow keeps only their high bytes).
    ``swap_bytes`` reads 16-bit values written in the wrong byte order (e.g. NYU's raw Kinect PGMs,
    little-endian where the format says big-endian).
    """
    path = Path(path)
    header = _read_bytes(path)[:32] if path.suffix.lower() == ".png" else b""
    if header.startswith(_PNG_SIGNATURE) and len(header) >= 26 and header[24] == 16 and header[25] in (2, 6):
        values = _read_png16_colour(path)
    else:
        try:
            with Image.open(path) as image:
                image.load()
                if image.mode in ("RGB", "RGBA", "P", "LA"):
                    image = image.convert("RGB").getchannel(0)
                values = np.asarray(image)
        except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as error:
            raise DataError(f"{path}: cannot read as an image ({type(error).__name__}: {error})") from None
    if values.ndim != 2:
        raise DataError(f"{path}: expected a one-channel map, got shape {values.shape}")
    if swap_bytes:
        values = values.astype(np.uint16).byteswap()
    return values.astype(np.float64)


def _read_png16_colour(path: Path) -> np.ndarray:
    """The first channel of a non-interlaced 16-bit RGB or RGBA PNG, as (H, W) uint16."""
    data = _read_bytes(path)
    position, chunks = len(_PNG_SIGNATURE), []
    header = None
    try:
        while position + 8 <= len(data):
            length, kind = struct.unpack(">I4s", data[position : position + 8])
            body = data[position + 8 : position + 8 + length]
            position += 12 + length
            if kind == b"IHDR":
                header = struct.unpack(">IIBBBBB", body)
            elif kind == b"IDAT":
                chunks.append(body)
            elif kind == b"IEND":
                break
        if header is None:
            raise ValueError("no IHDR chunk")
        width, height, _, colour_type, _, _, interlace = header
        if interlace:
            raise ValueError("interlaced 16-bit colour PNGs are not supported")
        pixel_bytes = 2 * _PNG_CHANNELS[colour_type]
        raw = np.frombuffer(zlib.decompress(b"".join(chunks)), dtype=np.uint8)
        stride = width * pixel_bytes
        if raw.size < height * (stride + 1):
            raise ValueError(f"{raw.size} bytes of pixel data for {width}x{height}")
    except (struct.error, zlib.error, ValueError, KeyError) as error:
        raise DataError(f"{path}: cannot read as a 16-bit PNG ({type(error).__name__}: {error})") from None
    rows = raw[: height * (stride + 1)].reshape(height, stride + 1)
    pixels = _unfilter(rows[:, 1:], rows[:, 0], pixel_bytes, path)
    big_endian = pixels.reshape(height, width, pixel_bytes // 2, 2).astype(np.uint16)
    return (big_endian[..., 0, 0] << 8) | big_endian[..., 0, 1]


def _unfilter(filtered: np.ndarray, filters: np.ndarray, pixel_bytes: int, path: Path) -> np.ndarray:
    """Undo PNG's per-row filters (None, Sub, Up, Average, Paeth): (H, stride) uint8."""
    height, stride = filtered.shape
    out = np.zeros((height, stride), dtype=np.uint8)
    previous = np.zeros(stride, dtype=np.int64)
    for row in range(height):
        line = filtered[row].astype(np.int64)
        kind = int(filters[row])
        if kind == 0:
            current = line
        elif kind == 1:
            # Each byte adds the one pixel_bytes to its left: a running sum per byte position.
            current = np.cumsum(line.reshape(-1, pixel_bytes), axis=0).reshape(-1) % 256
        elif kind == 2:
            current = (line + previous) % 256
        elif kind in (3, 4):
            current = _unfilter_sequential(line, previous, pixel_bytes, kind)
        else:
            raise DataError(f"{path}: PNG row {row} has an unknown filter type {kind}")
        out[row] = current
        previous = current
    return out


def _unfilter_sequential(line: np.ndarray, previous: np.ndarray, pixel_bytes: int, kind: int) -> np.ndarray:
    """Average (3) and Paeth (4) filters, which depend on the already decoded pixel to the left."""
    current = line.copy()
    left = np.zeros(pixel_bytes, dtype=np.int64)
    upper_left = np.zeros(pixel_bytes, dtype=np.int64)
    for start in range(0, line.size, pixel_bytes):
        window = slice(start, start + pixel_bytes)
        up = previous[window]
        if kind == 3:
            predictor = (left + up) // 2
        else:
            estimate = left + up - upper_left
            distances = np.abs(estimate[None] - np.stack([left, up, upper_left]))
            predictor = np.choose(np.argmin(distances, axis=0), [left, up, upper_left])
        current[window] = (line[window] + predictor) % 256
        left, upper_left = current[window], up
    return current


__all__ = ["read_map_image", "read_npy_map", "read_pfm"]
