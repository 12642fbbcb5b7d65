"""Tiny RGB-D files in every format of ``../shared/rgbd``, written by the tests themselves.

Each scene is a far wall (4 m) with a near square (1 m) in the middle and a few unknown pixels.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

HEIGHT, WIDTH = 36, 48
NEAR, FAR = 1.0, 4.0
# The near square, and pixels left unknown (away from the square's edge).
SQUARE = (slice(10, 26), slice(14, 34))
HOLES = ((2, 3), (30, 40), (33, 5))


def scene() -> tuple[np.ndarray, np.ndarray]:
    """(photo (H, W, 3) uint8, depth (H, W) in metres)."""
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 200, (HEIGHT, WIDTH, 3)).astype(np.uint8)
    photo[SQUARE] = (220, 40, 40)
    depth = np.full((HEIGHT, WIDTH), FAR)
    depth[SQUARE] = NEAR
    return photo, depth


def with_holes(values: np.ndarray, unknown: float) -> np.ndarray:
    values = values.copy()
    for row, column in HOLES:
        values[row, column] = unknown
    return values


def png16_rgb(path: Path, values: np.ndarray) -> None:
    """A 16-bit RGB PNG (grey in all channels) whose rows use the five filter types in turn."""
    height, width = values.shape
    pixels = np.repeat(values.astype(">u2")[..., None], 3, axis=2).view(np.uint8).reshape(height, width * 6)
    previous = np.zeros(width * 6, dtype=np.int64)
    rows = []
    for index, row in enumerate(pixels.astype(np.int64)):
        kind = index % 5
        left = np.concatenate([np.zeros(6, np.int64), row[:-6]])
        upper_left = np.concatenate([np.zeros(6, np.int64), previous[:-6]])
        if kind == 0:
            predictor = np.zeros_like(row)
        elif kind == 1:
            predictor = left
        elif kind == 2:
            predictor = previous
        elif kind == 3:
            predictor = (left + previous) // 2
        else:
            estimate = left + previous - upper_left
            candidates = np.stack([left, previous, upper_left])
            predictor = np.choose(np.argmin(np.abs(estimate[None] - candidates), axis=0), candidates)
        rows.append(bytes([kind]) + ((row - predictor) % 256).astype(np.uint8).tobytes())
        previous = row

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"".join(rows))) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)


def pgm16(path: Path, values: np.ndarray, *, little_endian: bool = False) -> None:
    height, width = values.shape
    data = values.astype("<u2" if little_endian else ">u2").tobytes()
    path.write_bytes(f"P5 {width} {height} 65535\n".encode() + data)


def pfm(path: Path, values: np.ndarray) -> None:
    height, width = values.shape
    path.write_bytes(f"Pf\n{width} {height}\n-1.0\n".encode() + values[::-1].astype("<f4").tobytes())


def _save(path: Path, array: np.ndarray, **options) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **options)


def write_sources(root: Path) -> dict[str, str]:
    """One pair per source format under ``root``; returns item name -> the format it tests."""
    photo, depth = scene()
    disparity = 1 / depth  # 1 on the square, 0.25 on the wall
    formats = {}

    def folder(*parts: str) -> Path:
        path = root.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        return path

    _save(folder("rgbdd", "rgb") / "a.jpg", photo, quality=95)
    _save(folder("rgbdd", "depth_mm") / "a.png", with_holes(depth * 1000, 0).astype(np.uint16))
    formats["rgbdd/a"] = "uint16 millimetres"

    _save(folder("nyu_dct", "rgb") / "b.jpg", photo, quality=95)
    np.save(folder("nyu_dct", "depth_m") / "b.npy", with_holes(depth, np.nan).astype(np.float32))
    formats["nyu_dct/b"] = "float metres .npy (NaN unknown)"

    _save(folder("midd2003", "rgb") / "c.png", photo)
    _save(folder("midd2003", "disp") / "c.png", with_holes(disparity * 4 * 40, 0).astype(np.uint8))
    formats["midd2003/c"] = "8-bit disparity x4"

    _save(folder("kitti2015", "image_2") / "d.png", photo)
    sparse = np.zeros_like(disparity)
    sparse[8:, ::3] = disparity[8:, ::3] * 256 * 50  # measured from row 8 down, every third column
    _save(folder("kitti2015", "disp_occ_0") / "d.png", sparse.astype(np.uint16))
    formats["kitti2015/d"] = "16-bit disparity x256, sparse"

    _save(folder("dct_middlebury", "rgb") / "e.png", photo)
    normalised = (disparity - disparity.min()) / (disparity.max() - disparity.min())
    _save(folder("dct_middlebury", "disp8") / "e.png", (1 + normalised * 254).astype(np.uint8))
    formats["dct_middlebury/e"] = "per-image normalised 8-bit"

    _save(folder("midd2014", "Piano") / "im0.png", photo)
    pfm(root / "midd2014" / "Piano" / "disp0GT.pfm", with_holes(disparity * 60, np.inf))
    formats["midd2014/Piano"] = "PFM (inf unknown)"

    _save(folder("midd2014", "Jadeplant") / "im0.png", photo)
    png16_rgb(root / "midd2014" / "Jadeplant" / "disp0.png", disparity * 300)
    formats["midd2014/Jadeplant"] = "16-bit RGB PNG disparity"

    _save(folder("midd2001", "rgb") / "f.ppm", photo)
    _save(folder("midd2001", "disp") / "f.pgm", with_holes(disparity * 16 * 8, 0).astype(np.uint8))
    formats["midd2001/f"] = "8-bit PGM disparity"

    _save(folder("slambook_ch5", "rgb") / "g.png", photo)
    pgm16(folder("slambook_ch5", "depth") / "g.pgm", with_holes(depth * 1000, 0))
    formats["slambook_ch5/g"] = "16-bit PGM millimetres"

    _save(folder("open3d_other") / "NYU_color.ppm", photo)
    kinect = 1092.5 - 351.3 / depth  # NYU's raw Kinect values
    pgm16(root / "open3d_other" / "NYU_depth.pgm", with_holes(np.round(kinect), 2047), little_endian=True)
    formats["open3d_nyu/NYU"] = "raw Kinect PGM, little-endian"

    _save(root / "open3d_other" / "SUN_color.jpg", photo, quality=95)
    millimetres = (depth * 1000).astype(np.uint16)
    rotated = ((millimetres << 3) | (millimetres >> 13)).astype(np.uint16)
    _save(root / "open3d_other" / "SUN_depth.png", rotated)
    formats["open3d_sun/SUN"] = "SUN RGB-D rotated millimetres"
    return formats


__all__ = ["FAR", "HEIGHT", "HOLES", "NEAR", "SQUARE", "WIDTH", "pfm", "pgm16", "png16_rgb", "scene",
           "write_sources"]
