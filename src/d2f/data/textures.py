"""Textures for synthetic scenes: procedural patterns, and photos or RGBA cut-outs from a bank.

Procedural textures need nothing: fractal noise, stripes, checks, dots, cells and foliage, each
coloured from a random palette and shaded. A :class:`TextureBank` adds real photos (random crops) and
cut-outs (images with an alpha channel): by default the photos that ship inside scikit-image, or every
image in a folder the user gives (``scripts/get_textures.sh`` collects such a folder on Debian).

Every function takes a ``numpy.random.Generator``, so a texture is a pure function of the generator's
state. Textures are float32 tensors (3, H, W) in sRGB [0, 1] on the CPU.
"""

from __future__ import annotations

import colorsys
import math
import os
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from d2f.errors import DataError
from d2f.io import IMAGE_EXTENSIONS

#: Kinds of procedural texture, drawn uniformly by :func:`procedural_texture`.
PROCEDURAL_KINDS = ("noise", "stripes", "checks", "dots", "cells", "foliage")

#: Photos bundled with scikit-image (no download) used by :meth:`TextureBank.builtin`; the grey ones
#: are tinted when used.
BUILTIN_PHOTOS = (
    "astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "brick", "grass", "gravel",
)

# Decoded bank images are kept up to this many pixels on their longer side.
_MAX_SIDE = 2048

# Photos smaller than this on their shorter side are too small to texture anything.
_MIN_SIDE = 64

Size = tuple[int, int]


# ------------------------------------------------------------------------------------------ procedural


def random_palette(rng: np.random.Generator, count: int) -> np.ndarray:
    """``count`` colours (count, 3) in [0, 1] around a random hue: analogous, with one accent."""
    base = rng.random()
    colours = []
    for index in range(count):
        accent = index == count - 1 and count > 2 and rng.random() < 0.5
        hue = (base + (0.5 if accent else rng.normal(0, 0.08))) % 1.0
        saturation = float(np.clip(rng.normal(0.5, 0.25), 0.05, 1.0))
        value = float(np.clip(rng.uniform(0.15, 1.0), 0.0, 1.0))
        colours.append(colorsys.hsv_to_rgb(hue, saturation, value))
    return np.asarray(colours, dtype=np.float32)


def _gradient_map(values: torch.Tensor, palette: np.ndarray) -> torch.Tensor:
    """Map (H, W) values in [0, 1] through a palette (n >= 2, 3), piecewise linearly: (3, H, W)."""
    colours = torch.from_numpy(palette)
    position = values.clamp(0, 1) * (len(palette) - 1)
    lower = position.floor().long().clamp(max=len(palette) - 2)
    fraction = (position - lower)[None]
    return colours[lower].permute(2, 0, 1) * (1 - fraction) + colours[lower + 1].permute(2, 0, 1) * fraction


def fractal_noise(rng: np.random.Generator, size: Size, exponent: float = 2.0) -> torch.Tensor:
    """Noise with a 1/f^exponent power spectrum, (H, W) normalised to mean 0.5, spread about 0.17.

    exponent 1 is fine grain, 2 is cloud-like, 3 is smooth.
    """
    height, width = size
    white = torch.from_numpy(rng.standard_normal((height, width), dtype=np.float32))
    spectrum = torch.fft.rfft2(white)
    fy = torch.fft.fftfreq(height)[:, None]
    fx = torch.fft.rfftfreq(width)[None, :]
    frequency = torch.sqrt(fy**2 + fx**2)
    frequency[0, 0] = 1.0
    filtered = spectrum / frequency ** (exponent / 2)
    filtered[0, 0] = 0
    noise = torch.fft.irfft2(filtered, s=(height, width))
    noise = (noise - noise.mean()) / (noise.std() + 1e-8)
    return 0.5 + noise / 6


def _smooth_noise(rng: np.random.Generator, size: Size, scale: int = 8) -> torch.Tensor:
    """Cheap low-frequency noise (H, W): fractal noise at 1/scale resolution, upsampled."""
    height, width = size
    small = fractal_noise(rng, (max(2, math.ceil(height / scale)), max(2, math.ceil(width / scale))), 2.5)
    return F.interpolate(small[None, None], size=size, mode="bilinear", align_corners=False)[0, 0]


def _coordinates(size: Size) -> tuple[torch.Tensor, torch.Tensor]:
    height, width = size
    return (
        torch.arange(height, dtype=torch.float32)[:, None].expand(height, width),
        torch.arange(width, dtype=torch.float32)[None, :].expand(height, width),
    )


def _warped_phase(rng: np.random.Generator, size: Size) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel coordinates rotated by a random angle and displaced by smooth noise."""
    y, x = _coordinates(size)
    angle = rng.uniform(0, math.pi)
    warp = rng.uniform(0, 0.08) * max(size)
    u = x * math.cos(angle) + y * math.sin(angle) + warp * (_smooth_noise(rng, size) - 0.5)
    v = -x * math.sin(angle) + y * math.cos(angle) + warp * (_smooth_noise(rng, size) - 0.5)
    return u, v


def _stripes(rng: np.random.Generator, size: Size) -> torch.Tensor:
    u, _ = _warped_phase(rng, size)
    period = rng.uniform(4, 40)
    wave = 0.5 + 0.5 * torch.sin(u * (2 * math.pi / period))
    sharpness = rng.uniform(1, 8)
    values = torch.sigmoid((wave - 0.5) * sharpness * 2)
    return _gradient_map(values, random_palette(rng, int(rng.integers(2, 4))))


def _checks(rng: np.random.Generator, size: Size) -> torch.Tensor:
    u, v = _warped_phase(rng, size)
    period = rng.uniform(6, 60)
    product = torch.sin(u * (math.pi / period)) * torch.sin(v * (math.pi / period))
    values = torch.sigmoid(product * rng.uniform(4, 20))
    return _gradient_map(values, random_palette(rng, 2))


def _jittered_cells(rng: np.random.Generator, size: Size, cell: float):
    """Per pixel: the distance to the nearest of jittered grid points, and that point's id."""
    height, width = size
    rows, columns = math.ceil(height / cell) + 2, math.ceil(width / cell) + 2
    jitter = torch.from_numpy(rng.uniform(0.1, 0.9, (2, rows, columns)).astype(np.float32))
    y, x = _coordinates(size)
    cell_y, cell_x = (y / cell).floor().long() + 1, (x / cell).floor().long() + 1
    best_distance = torch.full(size, float("inf"))
    best_id = torch.zeros(size, dtype=torch.long)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            ny, nx = (cell_y + dy).clamp(0, rows - 1), (cell_x + dx).clamp(0, columns - 1)
            point_y = (ny - 1 + jitter[0, ny, nx]) * cell
            point_x = (nx - 1 + jitter[1, ny, nx]) * cell
            distance = torch.sqrt((y - point_y) ** 2 + (x - point_x) ** 2)
            closer = distance < best_distance
            best_distance = torch.where(closer, distance, best_distance)
            best_id = torch.where(closer, ny * columns + nx, best_id)
    return best_distance, best_id, rows * columns


def _dots(rng: np.random.Generator, size: Size) -> torch.Tensor:
    cell = rng.uniform(8, 48)
    distance, _, _ = _jittered_cells(rng, size, cell)
    radius = cell * rng.uniform(0.15, 0.4)
    values = (radius + 0.5 - distance).clamp(0, 1)
    palette = random_palette(rng, 2)
    return _gradient_map(values, palette)


def _cells(rng: np.random.Generator, size: Size) -> torch.Tensor:
    cell = rng.uniform(10, 80)
    distance, identity, count = _jittered_cells(rng, size, cell)
    palette = torch.from_numpy(random_palette(rng, 4))
    choice = torch.from_numpy(rng.integers(0, len(palette), count))
    brightness = torch.from_numpy(rng.uniform(0.7, 1.1, count).astype(np.float32))
    colours = palette[choice[identity]].permute(2, 0, 1) * brightness[identity]
    # Dark grout between the cells makes mosaics, stones, tiles.
    grout = (distance / cell).clamp(0, 1)
    return colours * (1 - 0.6 * grout**4)


def _foliage(rng: np.random.Generator, size: Size) -> torch.Tensor:
    detail = fractal_noise(rng, size, rng.uniform(1.2, 1.8))
    coarse = fractal_noise(rng, size, 2.5)
    leaves = torch.sigmoid((detail - 0.5 + 0.3 * (coarse - 0.5)) * rng.uniform(10, 30))
    hue = rng.uniform(0.15, 0.4) if rng.random() < 0.8 else rng.uniform(0, 1)
    bright = colorsys.hsv_to_rgb(hue, rng.uniform(0.4, 0.9), rng.uniform(0.5, 0.95))
    dark = colorsys.hsv_to_rgb((hue + rng.normal(0, 0.05)) % 1, rng.uniform(0.3, 0.9), rng.uniform(0.05, 0.3))
    palette = np.asarray([dark, bright], dtype=np.float32)
    return _gradient_map(leaves * (0.6 + 0.4 * coarse), palette)


def _noise(rng: np.random.Generator, size: Size) -> torch.Tensor:
    values = fractal_noise(rng, size, rng.uniform(1.2, 3.0))
    values = (values - 0.5) * rng.uniform(1.0, 2.0) + 0.5
    return _gradient_map(values, random_palette(rng, int(rng.integers(2, 5))))


_PROCEDURAL: dict[str, Callable[[np.random.Generator, Size], torch.Tensor]] = {
    "noise": _noise,
    "stripes": _stripes,
    "checks": _checks,
    "dots": _dots,
    "cells": _cells,
    "foliage": _foliage,
}


def shade(rng: np.random.Generator, texture: torch.Tensor, strength: float = 0.35) -> torch.Tensor:
    """Texture times smooth random lighting, plus a little grain; stays in [0, 1]."""
    size = tuple(texture.shape[-2:])
    light = 1 + strength * 2 * (_smooth_noise(rng, size) - 0.5)
    grain = torch.from_numpy(rng.standard_normal(size, dtype=np.float32)) * rng.uniform(0.0, 0.02)
    return (texture * light + grain).clamp(0, 1)


def procedural_texture(rng: np.random.Generator, size: Size, kind: str | None = None) -> torch.Tensor:
    """A random procedural texture (3, H, W) in [0, 1]; ``kind`` from :data:`PROCEDURAL_KINDS` or random."""
    if kind is None:
        kind = PROCEDURAL_KINDS[int(rng.integers(len(PROCEDURAL_KINDS)))]
    if kind not in _PROCEDURAL:
        raise DataError(f"kind: expected one of {PROCEDURAL_KINDS}, got {kind!r}")
    return shade(rng, _PROCEDURAL[kind](rng, size).float())


# ------------------------------------------------------------------------------------------ the bank


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)


class TextureBank:
    """Photos and RGBA cut-outs to draw textures and foreground objects from.

    Sources are image files or ``"skimage:<name>"`` for a photo bundled with scikit-image. Decoded
    images (each at most 2048 px on its longer side) are cached, up to ``cache_bytes`` per process:
    decoding is a third of a scene's time, and the default holds a few dozen photos and their
    cut-outs.
    Build one with :meth:`builtin`, :meth:`from_folder` or :meth:`procedural_only`.
    """

    def __init__(self, photos: Sequence[str | Path] = (), cutouts: Sequence[str | Path] = (), *,
                 cache_bytes: int = 512 * 2**20):
        self.photos = [str(source) for source in photos]
        self.cutouts = [str(source) for source in cutouts]
        self.cache_bytes = cache_bytes
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()

    def __repr__(self) -> str:
        return f"TextureBank({len(self.photos)} photos, {len(self.cutouts)} cut-outs)"

    def __getstate__(self) -> dict:
        # Worker processes get the sources, not the decoded images.
        return {**self.__dict__, "_cache": OrderedDict()}

    @classmethod
    def builtin(cls) -> TextureBank:
        """The photos bundled with scikit-image (no download, no cut-outs)."""
        return cls(photos=[f"skimage:{name}" for name in BUILTIN_PHOTOS])

    @classmethod
    def procedural_only(cls) -> TextureBank:
        """No photos: every texture is procedural."""
        return cls()

    @classmethod
    def from_folder(cls, folder: str | os.PathLike) -> TextureBank:
        """Every image under ``folder`` (recursively): images with an alpha channel are cut-outs.

        Raises :class:`~d2f.errors.DataError` when the folder is missing, empty or holds no readable
        image; unreadable files among readable ones are skipped with a warning.
        """
        folder = Path(folder)
        if not folder.exists():
            raise DataError(f"{folder}: texture folder does not exist")
        if not folder.is_dir():
            raise DataError(f"{folder}: expected a folder of texture images, got a file")
        files = sorted(path for path in folder.rglob("*") if path.is_file())
        if not files:
            raise DataError(f"{folder}: texture folder is empty")
        candidates = [path for path in files if path.suffix.lower() in IMAGE_EXTENSIONS]
        if not candidates:
            raise DataError(
                f"{folder}: texture folder holds no images ({len(files)} files, none with an image extension)"
            )
        photos, cutouts, unreadable = [], [], []
        for path in candidates:
            try:
                with Image.open(path) as image:
                    if min(image.size) < _MIN_SIDE:
                        unreadable.append(f"{path.name} (smaller than {_MIN_SIDE} px)")
                        continue
                    (cutouts if _has_alpha(image) else photos).append(path)
            except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as error:
                unreadable.append(f"{path.name} ({type(error).__name__})")
        if not photos and not cutouts:
            raise DataError(f"{folder}: texture folder holds no readable images of at least {_MIN_SIDE} px "
                            f"({len(unreadable)} unusable, e.g. {unreadable[0]})")
        if unreadable:
            warnings.warn(f"{folder}: skipped {len(unreadable)} unusable texture files, e.g. {unreadable[0]}",
                          stacklevel=2)
        return cls(photos=photos, cutouts=cutouts)

    def _load(self, source: str) -> np.ndarray:
        """The decoded image (H, W, 3 or 4) uint8, from the cache when possible."""
        if source in self._cache:
            self._cache.move_to_end(source)
            return self._cache[source]
        array = _load_skimage(source.removeprefix("skimage:")) if source.startswith("skimage:") \
            else _load_file(Path(source))
        self._cache[source] = array
        # The newest image always stays, whatever its size.
        while len(self._cache) > 1 and sum(image.nbytes for image in self._cache.values()) > self.cache_bytes:
            self._cache.popitem(last=False)
        return array

    def photo_texture(self, rng: np.random.Generator, size: Size) -> torch.Tensor | None:
        """A random crop of a random photo resized to ``size``: (3, H, W) in [0, 1]; None without photos."""
        if not self.photos:
            return None
        array = self._load(self.photos[int(rng.integers(len(self.photos)))])[..., :3]
        if array.shape[2] == 1 or _is_grey(array):
            array = _tint(rng, array)
        return _random_crop_resized(rng, array, size)

    def cutout(self, rng: np.random.Generator, size: Size) -> tuple[torch.Tensor, torch.Tensor] | None:
        """A random cut-out fitted into ``size`` (aspect kept, centred): ``(color, alpha)``, (3|1, H, W).

        None when the bank has no cut-outs (or the drawn one is fully transparent).
        """
        if not self.cutouts:
            return None
        array = self._load(self.cutouts[int(rng.integers(len(self.cutouts)))])
        alpha = array[..., 3]
        rows, columns = np.nonzero(alpha.max(axis=1))[0], np.nonzero(alpha.max(axis=0))[0]
        if rows.size == 0:
            return None
        array = array[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1]
        if rng.random() < 0.5:
            array = array[:, ::-1]
        height, width = size
        scale = min(height / array.shape[0], width / array.shape[1])
        fitted = (max(1, round(array.shape[1] * scale)), max(1, round(array.shape[0] * scale)))
        # Resample premultiplied colours, so that transparent pixels' colours do not bleed in.
        premultiplied = array.astype(np.float32) / 255
        premultiplied[..., :3] *= premultiplied[..., 3:]
        channels = [Image.fromarray(np.ascontiguousarray(premultiplied[..., c])) for c in range(4)]
        resized = np.stack([np.asarray(channel.resize(fitted, Image.BILINEAR)) for channel in channels])
        canvas = np.zeros((4, height, width), dtype=np.float32)
        top, left = (height - fitted[1]) // 2, (width - fitted[0]) // 2
        canvas[:, top : top + fitted[1], left : left + fitted[0]] = resized
        alpha_out = np.clip(canvas[3:], 0, 1)
        color = np.clip(canvas[:3] / np.maximum(alpha_out, 1e-6), 0, 1)
        return torch.from_numpy(color), torch.from_numpy(alpha_out)


def _is_grey(array: np.ndarray) -> bool:
    sample = array[::8, ::8].astype(np.int16)
    return bool(np.abs(sample - sample[..., :1]).max() <= 2)


def _tint(rng: np.random.Generator, array: np.ndarray) -> np.ndarray:
    colour = np.asarray(colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.1, 0.6), 1.0), dtype=np.float32)
    grey = array[..., :1].astype(np.float32)
    return np.clip(grey * colour, 0, 255).astype(np.uint8)


def _random_crop_resized(rng: np.random.Generator, array: np.ndarray, size: Size) -> torch.Tensor:
    """A crop of ``array`` with the aspect ratio of ``size``, of random scale and place, resized to it."""
    height, width = size
    source_height, source_width = array.shape[:2]
    largest = min(source_height / height, source_width / width)
    scale = largest * rng.uniform(0.35, 1.0)
    crop_height, crop_width = min(source_height, height * scale), min(source_width, width * scale)
    top = rng.uniform(0, source_height - crop_height)
    left = rng.uniform(0, source_width - crop_width)
    image = Image.fromarray(np.ascontiguousarray(array))
    box = (left, top, left + crop_width, top + crop_height)
    resized = np.asarray(image.resize((width, height), Image.BILINEAR, box=box), dtype=np.float32) / 255
    texture = torch.from_numpy(resized.transpose(2, 0, 1).copy())
    return texture.flip(-1) if rng.random() < 0.5 else texture


def _load_skimage(name: str) -> np.ndarray:
    import skimage.data

    if name not in BUILTIN_PHOTOS:
        raise DataError(f"skimage:{name}: not one of the bundled photos {BUILTIN_PHOTOS}")
    array = np.asarray(getattr(skimage.data, name)())
    return np.repeat(array[..., None], 3, axis=2) if array.ndim == 2 else array[..., :3]


def _load_file(path: Path) -> np.ndarray:
    """RGB (H, W, 3) or, for images with transparency, RGBA (H, W, 4) uint8, at most 2048 px long."""
    try:
        with Image.open(path) as image:
            image.draft("RGB", (_MAX_SIDE, _MAX_SIDE))  # JPEG: decode at a reduced scale, much faster
            alpha = _has_alpha(image)
            image = image.convert("RGBA" if alpha else "RGB")
            image.thumbnail((_MAX_SIDE, _MAX_SIDE), Image.BILINEAR)
            return np.asarray(image)
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as error:
        raise DataError(f"{path}: cannot read texture image ({type(error).__name__}: {error})") from None


# ------------------------------------------------------------------------------- collecting a folder

# A photo is usable when this share of its 16 px tiles (at 256 px) has detail, i.e. a mean absolute
# Laplacian above 5 grey levels: sharp photos pass, photos with their own bokeh and smooth abstract art
# do not. Flat vector art is caught by its few colours. A cut-out is photographic when few of its
# opaque pixels are perfectly flat (cartoons are mostly flat fills).
_PHOTO_DETAIL = 0.6
_PHOTO_COLOURS = 200
_CUTOUT_FLAT = 0.08
_COLLECT_MIN_SIDE = {"photo": 800, "cutout": 128}


def _thumbnail(path: Path, side: int = 256) -> tuple[np.ndarray, tuple[int, int]]:
    """(h, w, 3 or 4) float32 thumbnail at most ``side`` px long, and the image's full size."""
    with Image.open(path) as image:
        size = image.size
        image.draft("RGB", (2 * side, 2 * side))
        image = image.convert("RGBA" if _has_alpha(image) else "RGB")
        image.thumbnail((side, side), Image.BOX)
        return np.asarray(image, dtype=np.float32), size


def _laplacian(grey: np.ndarray) -> np.ndarray:
    return np.abs(4 * grey[1:-1, 1:-1] - grey[:-2, 1:-1] - grey[2:, 1:-1] - grey[1:-1, :-2] - grey[1:-1, 2:])


def _colour_count(pixels: np.ndarray) -> int:
    levels = (pixels[..., :3] // 8).astype(np.int32)
    return len(np.unique(levels[..., 0] * 1024 + levels[..., 1] * 32 + levels[..., 2]))


def texture_kind(path: str | os.PathLike) -> str | None:
    """``"photo"``, ``"cutout"`` or None (not usable) for an image file, by the heuristics above.

    Photos: no alpha, at least 800 px on the shorter side, detailed almost everywhere and colourful.
    Cut-outs: an alpha channel leaving 10-90 % transparent, at least 128 px, photographic (not flat).
    """
    try:
        thumbnail, size = _thumbnail(Path(path))
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
        return None
    grey = thumbnail[..., :3].mean(axis=-1)
    if thumbnail.shape[-1] == 4:
        opaque = thumbnail[..., 3] > 250
        transparent = float((thumbnail[..., 3] <= 128).mean())
        if min(size) < _COLLECT_MIN_SIDE["cutout"] or not 0.1 < transparent < 0.9:
            return None
        # Away from the outline (two pixels in), where the alpha edge makes everything look detailed.
        inner = opaque.copy()
        for _ in range(2):
            inner[1:-1, 1:-1] = inner[1:-1, 1:-1] & inner[:-2, 1:-1] & inner[2:, 1:-1] & inner[1:-1, :-2] \
                & inner[1:-1, 2:]
            inner[[0, -1], :], inner[:, [0, -1]] = False, False
        if inner.sum() < 500:
            return None
        flat = float((_laplacian(grey)[inner[1:-1, 1:-1]] < 0.5).mean())
        return "cutout" if flat < _CUTOUT_FLAT else None
    if min(size) < _COLLECT_MIN_SIDE["photo"] or _colour_count(thumbnail) < _PHOTO_COLOURS:
        return None
    laplacian = _laplacian(grey)
    rows, columns = (side // 16 * 16 for side in laplacian.shape)
    tiles = laplacian[:rows, :columns].reshape(rows // 16, 16, columns // 16, 16).mean(axis=(1, 3))
    return "photo" if float((tiles > 5).mean()) >= _PHOTO_DETAIL else None


def collect_textures(sources: Sequence[str | os.PathLike], out: str | os.PathLike) -> dict[str, int]:
    """Copy the usable photos and cut-outs found under ``sources`` into ``out/photos`` and ``out/cutouts``.

    Images are judged by :func:`texture_kind`; copies of one picture at several resolutions (as
    wallpaper packages ship them) are kept once, at the largest size. Files are copied unchanged,
    named after their path. Returns the counts ``{"photo": n, "cutout": m, "skipped": k}``.
    """
    import shutil

    chosen: dict[str, list[tuple[Path, np.ndarray, int]]] = {"photo": [], "cutout": []}
    skipped = 0
    for source in map(Path, sources):
        if not source.is_dir():
            raise DataError(f"{source}: texture source folder does not exist")
        for path in sorted(source.rglob("*")):
            if not path.is_file() or path.suffix.lower() not in IMAGE_EXTENSIONS or "screenshot" in path.stem:
                continue
            kind = texture_kind(path)
            if kind is None:
                skipped += 1
                continue
            thumbnail, size = _thumbnail(path, 16)
            grey = Image.fromarray(thumbnail[..., :3].mean(-1).astype(np.uint8))
            signature = np.asarray(grey.resize((16, 16)), dtype=np.float32)
            entries = chosen[kind]
            duplicate = next((index for index, (_, other, _) in enumerate(entries)
                              if np.abs(other - signature).mean() < 4), None)
            if duplicate is None:
                entries.append((path, signature, size[0] * size[1]))
            elif size[0] * size[1] > entries[duplicate][2]:
                entries[duplicate] = (path, signature, size[0] * size[1])
    out = Path(out)
    for kind, entries in chosen.items():
        folder = out / f"{kind}s"
        folder.mkdir(parents=True, exist_ok=True)
        for path, _, _ in entries:
            name = "_".join(part for part in path.parts[1:] if part not in ("usr", "share", "contents"))
            shutil.copyfile(path, folder / name)
    return {"photo": len(chosen["photo"]), "cutout": len(chosen["cutout"]), "skipped": skipped}


def resolve_textures(textures: TextureBank | str | os.PathLike | None) -> TextureBank:
    """None: :meth:`TextureBank.builtin`; a path: :meth:`TextureBank.from_folder`; a bank: itself."""
    if textures is None:
        return TextureBank.builtin()
    if isinstance(textures, TextureBank):
        return textures
    if isinstance(textures, str | os.PathLike):
        return TextureBank.from_folder(textures)
    raise DataError(f"textures: expected None, a folder or a TextureBank, got {type(textures).__name__}")


__all__ = [
    "BUILTIN_PHOTOS",
    "PROCEDURAL_KINDS",
    "TextureBank",
    "collect_textures",
    "fractal_noise",
    "procedural_texture",
    "random_palette",
    "resolve_textures",
    "shade",
    "texture_kind",
]
