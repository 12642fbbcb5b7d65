"""Reading and writing images and defocus maps, safely.

Images travel through d2f as float32 tensors of shape (3, H, W) with values in [0, 1].

Reading (:func:`read_image`) applies the EXIF orientation and converts every colour mode to RGB:
grayscale and palette images are expanded, the alpha channel of RGBA/LA/PA images is dropped (the colour
values are kept as they are, not composited onto a background), CMYK (e.g. CMYK JPEGs) is converted
to RGB, and 16-bit grayscale PNGs (``I;16``) are scaled by 1/65535 so no precision is lost on the way to
[0, 1]. The image size in the header is checked against ``max_megapixels`` before any pixel is decoded,
and the whole file is decoded at once so that truncated files fail here, not halfway through a render.
Every failure is an :class:`~d2f.errors.ImageReadError` whose one-line message starts with the path.

Writing (:func:`write_image`, :func:`write_defocus`, :func:`write_defocus_color`) is atomic: the file is
written to a temporary name in the destination folder and renamed into place, so a failure never leaves
a partial file, and an existing file is only replaced when ``overwrite=True``. The format follows the
file extension.

A rendering keeps its photo's metadata (:func:`read_image_and_metadata`, then ``write_image(...,
metadata=...)``): the ICC colour profile, so that colours mean what they meant in the input, and the EXIF
tags that describe the photo (camera, lens, exposure, date, place), without the orientation (the pixels
are read upright) or the thumbnail of the sharp photo.

Depth maps from other tools are read by :func:`read_depth` (from :mod:`d2f.depth_maps`) as a normalised
disparity.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import struct
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import BinaryIO, TypeVar

import numpy as np
import torch
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from d2f.depth_maps import read_depth as read_depth  # depth maps are read there (below d2f.data)
from d2f.errors import D2FError, ImageReadError, ImageTooLargeError, InputError

PathLike = str | os.PathLike
_T = TypeVar("_T")

#: Extensions of the image files that a folder of inputs is scanned for.
IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {
        ".jpg",
        ".jpeg",
        ".jpe",
        ".jfif",
        ".png",
        ".apng",
        ".bmp",
        ".tif",
        ".tiff",
        ".webp",
        ".gif",
        ".ppm",
        ".pgm",
        ".pbm",
        ".pnm",
        ".tga",
        ".qoi",
    }
)

_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})

#: EXIF tags of the main image directory that a rendering keeps: description, make, model, resolution,
#: software, date, artist and copyright (the orientation is not among them: d2f's pixels are upright).
_EXIF_DESCRIPTIVE_TAGS = frozenset({270, 271, 272, 282, 283, 296, 305, 306, 315, 33432})
#: Formats that store a colour profile and EXIF (Pillow's names).
_METADATA_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "TIFF", "AVIF"})
#: The most EXIF bytes a JPEG file holds (one APP1 segment).
_JPEG_MAX_EXIF_BYTES = 65533

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Anchors of a perceptually ordered dark-to-bright colour map (close to matplotlib's "magma"), sampled at
# equal steps over [0, 1]; in-focus (defocus 0) is black, the strongest blur pale yellow.
_COLORMAP_ANCHORS = np.array(
    [
        (0, 0, 4),
        (28, 16, 68),
        (79, 18, 123),
        (129, 37, 129),
        (181, 54, 122),
        (229, 80, 100),
        (251, 135, 97),
        (254, 194, 135),
        (252, 253, 191),
    ],
    dtype=np.float64,
)


# --------------------------------------------------------------------------------------------- reading


def read_image(path: PathLike, *, max_megapixels: float | None = 50.0) -> torch.Tensor:
    """Read an image file as a float32 tensor (3, H, W) in [0, 1], upright and in RGB.

    ``max_megapixels`` (None: no limit of d2f's own; Pillow's decompression-bomb guard still applies)
    is checked against the size in the file header before decoding.
    Raises :class:`~d2f.errors.ImageReadError` naming the file for a missing file, a folder, a file that
    is not an image, a truncated or corrupt image, a zero-sized image or one above the size limit.
    """
    return pil_to_tensor(open_image(path, max_megapixels=max_megapixels))


def open_image(path: PathLike, *, max_megapixels: float | None = 50.0) -> Image.Image:
    """Open, check and fully decode an image file; the EXIF orientation is applied, the mode is kept."""
    return _open(path, max_megapixels, ImageOps.exif_transpose)


def read_image_and_metadata(
    path: PathLike, *, max_megapixels: float | None = 50.0
) -> tuple[torch.Tensor, ImageMetadata]:
    """:func:`read_image`, with the :func:`image_metadata` that a rendering of the file should keep."""

    image, metadata = _open(path, max_megapixels, _upright_with_metadata)
    return pil_to_tensor(image), metadata


def decode_image_and_metadata(
    data: bytes, name: str, *, max_megapixels: float | None = 50.0
) -> tuple[torch.Tensor, ImageMetadata]:
    """:func:`read_image_and_metadata` for a file's contents already in memory (an upload).

    Nothing is written to disk; errors are ImageReadErrors whose message starts with ``name``.
    """
    if not isinstance(data, bytes):
        raise InputError(f"data: expected bytes, got {type(data).__name__}")
    if not data:
        raise ImageReadError(f"{name}: file is empty (0 bytes)")
    image, metadata = _open(Path(name), max_megapixels, _upright_with_metadata, data=data)
    return pil_to_tensor(image), metadata


def _upright_with_metadata(image: Image.Image) -> tuple[Image.Image, ImageMetadata]:
    # Taken from the file as opened: a rotated or copied image loses the EXIF of a TIFF.
    return ImageOps.exif_transpose(image), image_metadata(image)


def _open(
    path: PathLike,
    max_megapixels: float | None,
    finish: Callable[[Image.Image], _T],
    *,
    data: bytes | None = None,
) -> _T:
    """Open, check and fully decode an image file (or ``data``, its contents), then ``finish`` it."""
    path = Path(path)
    if max_megapixels is not None and not max_megapixels > 0:
        raise InputError(f"max_megapixels: expected a positive number, got {max_megapixels}")
    if data is None:
        _check_is_file(path)
    try:
        # d2f enforces its own size limit below, so Pillow's warning (not its hard error) is redundant.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path if data is None else BytesIO(data)) as image:
                _check_size(path, image.size, max_megapixels)
                image.load()
                return finish(image)
    except D2FError:
        raise
    except UnidentifiedImageError:
        if _png_header_has_zero_size(path, data):
            raise ImageReadError(f"{path}: image has zero width or height") from None
        raise ImageReadError(f"{path}: not an image file (or not a format Pillow can read)") from None
    except Image.DecompressionBombError as error:
        raise ImageReadError(f"{path}: image is too large to decode safely ({error})") from None
    except OSError as error:
        if error.errno is not None:  # an operating-system failure while reading, not a bad file
            raise ImageReadError(f"{path}: cannot read: {error.strerror or error}") from None
        raise ImageReadError(f"{path}: truncated or corrupt image ({error})") from None
    except Exception as error:
        # Decoders of untrusted files fail with many exception types (SyntaxError, struct.error,
        # zlib.error, ValueError, ...); all of them mean the same thing here: the file is corrupt.
        raise ImageReadError(f"{path}: corrupt image ({type(error).__name__}: {error})") from None


@dataclass(frozen=True)
class ImageMetadata:
    """What a photo carries besides its pixels that a rendering of it keeps.

    Attributes:
        icc_profile: the embedded RGB colour profile (a Display P3 or Adobe RGB photo written without it
            looks washed out), or None.
        exif: the EXIF tags that describe the photo (description, make, model, date, artist, copyright,
            and the whole Exif and GPS directories: exposure, lens, place), or None. Not the orientation
            (d2f reads and renders pixels upright), the thumbnail, or a file's storage tags.
    """

    icc_profile: bytes | None = None
    exif: bytes | None = None


def image_metadata(image: Image.Image) -> ImageMetadata:
    """The metadata of an opened image that a rendering of it should keep (see :class:`ImageMetadata`).

    Only an RGB colour profile is kept: a grayscale or CMYK one would misdescribe d2f's RGB output. EXIF
    that cannot be parsed is left out rather than stopping the rendering.
    """
    if not isinstance(image, Image.Image):
        raise InputError(f"image: expected a PIL.Image.Image, got {type(image).__name__}")
    profile = image.info.get("icc_profile")
    # Bytes 16-19 of an ICC profile's header name its colour space.
    icc_profile = profile if isinstance(profile, bytes) and profile[16:20] == b"RGB " else None
    try:
        exif = _descriptive_exif(image.getexif())
    except Exception:  # EXIF parsers fail in many ways; the pixels are fine without it
        exif = None
    return ImageMetadata(icc_profile, exif)


def _descriptive_exif(source: Image.Exif) -> bytes | None:
    """The tags of ``source`` that describe the photo, as EXIF bytes.

    Not how its file stored it: a TIFF's EXIF holds its strip offsets and compression, which would
    corrupt another file.
    """
    kept = Image.Exif()
    for tag in _EXIF_DESCRIPTIVE_TAGS & source.keys():
        kept[tag] = source[tag]
    for ifd in (ExifTags.IFD.Exif, ExifTags.IFD.GPSInfo):
        # The Interop pointer is an offset into the old file.
        values = {tag: value for tag, value in source.get_ifd(ifd).items() if tag != ExifTags.IFD.Interop}
        if values:
            kept[ifd] = values
    return kept.tobytes() if len(kept) else None


def _check_is_file(path: Path) -> None:
    if not path.exists():
        raise ImageReadError(f"{path}: no such file")
    if path.is_dir():
        raise ImageReadError(f"{path}: is a directory, expected an image file")
    if not path.is_file():
        raise ImageReadError(f"{path}: not a regular file")
    if path.stat().st_size == 0:
        raise ImageReadError(f"{path}: file is empty (0 bytes)")


def _check_size(path: Path, size: tuple[int, int], max_megapixels: float | None) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise ImageReadError(f"{path}: image has zero width or height ({width}x{height})")
    megapixels = width * height / 1e6
    if max_megapixels is not None and megapixels > max_megapixels:
        raise ImageTooLargeError(
            f"{path}: image is {width}x{height} ({megapixels:.1f} megapixels), above the limit of "
            f"{max_megapixels:g} megapixels"
        )


def _png_header_has_zero_size(path: Path, data: bytes | None = None) -> bool:
    """Whether the file (or ``data``) is a PNG whose header declares a zero width or height (Pillow
    rejects those)."""
    try:
        if data is not None:
            header = data[:24]
        else:
            with path.open("rb") as file:
                header = file.read(24)
    except OSError:
        return False
    if len(header) < 24 or not header.startswith(_PNG_SIGNATURE) or header[12:16] != b"IHDR":
        return False
    width, height = struct.unpack(">II", header[16:24])
    return width == 0 or height == 0


# ----------------------------------------------------------------------------------------- conversions


def pil_to_tensor(image: Image.Image) -> torch.Tensor:
    """Any Pillow image as a float32 RGB tensor (3, H, W) in [0, 1] (see the module docstring)."""
    if not isinstance(image, Image.Image):
        raise InputError(f"image: expected a PIL.Image.Image, got {type(image).__name__}")
    if min(image.size) <= 0:
        raise InputError(f"image: expected a non-empty image, got size {image.size}")
    if image.mode in _SIXTEEN_BIT_MODES:
        gray = np.asarray(image).astype(np.float32)
        array = np.repeat(np.clip(gray / 65535.0, 0.0, 1.0)[..., None], 3, axis=2)
    elif image.mode == "F":  # floating-point images are taken to be in [0, 1] already
        gray = np.asarray(image, dtype=np.float32)
        array = np.repeat(np.clip(gray, 0.0, 1.0)[..., None], 3, axis=2)
    else:
        if image.mode in ("P", "PA"):
            # Through RGBA, so that palettes with transparency convert without Pillow's warning.
            image = image.convert("RGBA")
        if image.mode != "RGB":
            try:
                image = image.convert("RGB")
            except ValueError as error:
                raise InputError(f"image: colour mode {image.mode!r} cannot be converted to RGB") from error
        array = np.asarray(image, dtype=np.uint8).astype(np.float32) / 255.0
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))


def tensor_to_pil(image: torch.Tensor) -> Image.Image:
    """A (3, H, W) tensor in [0, 1] (values outside are clipped) as an 8-bit RGB Pillow image."""
    return Image.fromarray(tensor_to_array(image), mode="RGB")


def array_to_tensor(image: np.ndarray) -> torch.Tensor:
    """An (H, W, 3) array, uint8 or floating point in [0, 1], as a float32 tensor (3, H, W) in [0, 1]."""
    expected = "a uint8 array of shape (H, W, 3) or a floating-point one in [0, 1]"
    if not isinstance(image, np.ndarray):
        raise InputError(f"image: expected {expected}, got {type(image).__name__}")
    is_float = np.issubdtype(image.dtype, np.floating)
    if (image.dtype != np.uint8 and not is_float) or image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"image: expected {expected}, got {image.dtype} of shape {image.shape}")
    if min(image.shape[:2]) <= 0:
        raise InputError(f"image: expected a non-empty array, got shape {image.shape}")
    tensor = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
    if not is_float:
        return tensor.float().div_(255.0)
    tensor = tensor.float()
    if not bool(torch.isfinite(tensor).all()):
        raise InputError("image: expected finite values, found NaN or inf")
    low, high = float(tensor.min()), float(tensor.max())
    if low < 0.0 or high > 1.0:
        raise InputError(f"image: expected values in [0, 1], got the range [{low:.4g}, {high:.4g}]")
    return tensor


def tensor_to_array(image: torch.Tensor) -> np.ndarray:
    """A (3, H, W) tensor in [0, 1] (values outside are clipped) as an (H, W, 3) uint8 array."""
    if not isinstance(image, torch.Tensor) or image.dim() != 3 or image.shape[0] != 3:
        raise InputError(f"image: expected a tensor of shape (3, H, W), got {_describe(image)}")
    scaled = image.detach().float().clamp(0.0, 1.0).mul(255.0).round()
    return np.ascontiguousarray(scaled.to(device="cpu", dtype=torch.uint8).permute(1, 2, 0).numpy())


def _describe(value: object) -> str:
    shape = getattr(value, "shape", None)
    return f"shape {tuple(shape)}" if shape is not None else type(value).__name__


# --------------------------------------------------------------------------------------------- writing


def write_image(
    path: PathLike,
    image: Image.Image | torch.Tensor,
    *,
    quality: int = 95,
    overwrite: bool = False,
    metadata: ImageMetadata | None = None,
) -> Path:
    """Write a Pillow image or a (3, H, W) tensor in [0, 1] atomically; the extension picks the format.

    ``quality`` (1-100) applies to JPEG and WebP. ``metadata`` (see :func:`read_image_and_metadata`) is
    embedded in JPEG, PNG, WebP, TIFF and AVIF files (JPEG holds at most 64 KB of EXIF: a larger block,
    which no JPEG camera writes, is left out); other formats have no room for it. Returns the path written.
    """
    image = _image_to_save(image, quality)
    path = Path(path)
    image_format = format_for_path(path)
    options = _save_options(image_format, quality, metadata)
    return _write_atomically(
        path, lambda file: image.save(file, format=image_format, **options), overwrite=overwrite
    )


def _image_to_save(image: Image.Image | torch.Tensor, quality: object) -> Image.Image:
    """Check ``quality`` (1-100) and return ``image`` as a Pillow image (what writing needs)."""
    if not isinstance(quality, int) or isinstance(quality, bool) or not 1 <= quality <= 100:
        raise InputError(f"quality: expected an integer from 1 to 100, got {quality!r}")
    if isinstance(image, torch.Tensor):
        return tensor_to_pil(image)
    if not isinstance(image, Image.Image):
        raise InputError(f"image: expected a PIL.Image.Image or a torch.Tensor, got {type(image).__name__}")
    return image


def encode_image(
    image: Image.Image | torch.Tensor,
    image_format: str,
    *,
    quality: int = 95,
    metadata: ImageMetadata | None = None,
) -> bytes:
    """The file :func:`write_image` would write, as bytes in memory, in a Pillow format ("JPEG", "PNG")."""
    image = _image_to_save(image, quality)
    if image_format not in Image.SAVE:
        raise InputError(f"image_format: {image_format!r} is not a format d2f can write (use PNG, JPEG, ...)")
    buffer = BytesIO()
    image.save(buffer, format=image_format, **_save_options(image_format, quality, metadata))
    return buffer.getvalue()


def _save_options(image_format: str, quality: int, metadata: ImageMetadata | None) -> dict[str, object]:
    """Pillow's save keywords for ``image_format``: the quality and what of ``metadata`` fits in it."""
    if metadata is not None and not isinstance(metadata, ImageMetadata):
        raise InputError(f"metadata: expected a d2f.io.ImageMetadata, got {type(metadata).__name__}")
    options: dict[str, object] = {"quality": quality} if image_format in ("JPEG", "WEBP") else {}
    if metadata is not None and image_format in _METADATA_FORMATS:
        if metadata.icc_profile is not None:
            options["icc_profile"] = metadata.icc_profile
        exif = metadata.exif
        if exif is not None and (image_format != "JPEG" or len(exif) <= _JPEG_MAX_EXIF_BYTES):
            options["exif"] = exif
    return options


def write_defocus(path: PathLike, defocus: torch.Tensor, *, overwrite: bool = False) -> Path:
    """Write a defocus map (H, W) or (1, H, W) as a 16-bit grayscale PNG: value = clip(defocus, 0, 1) * 65535.

    Defocus 0 is in focus; i/14 selects the renderer's blur level i (1 is the strongest blur).
    """
    levels = np.rint(_defocus_array(defocus) * 65535.0).astype(np.uint16)
    image = Image.fromarray(levels)  # uint16 -> mode "I;16", which PNG stores as 16-bit grayscale
    return _write_png(path, image, overwrite=overwrite)


def write_defocus_color(path: PathLike, defocus: torch.Tensor, *, overwrite: bool = False) -> Path:
    """Write a colour visualisation of a defocus map (H, W) or (1, H, W) as an 8-bit RGB PNG.

    The fixed range [0, 1] (in focus: black, strongest blur: pale yellow) keeps images comparable.
    """
    return _write_png(path, Image.fromarray(colorize_defocus(defocus), mode="RGB"), overwrite=overwrite)


def write_disparity(path: PathLike, disparity: torch.Tensor, *, overwrite: bool = False) -> Path:
    """Write a normalised disparity map (H, W) or (1, H, W), 0 far to 1 near, as a 16-bit grayscale PNG:
    value = clip(disparity, 0, 1) * 65535, so near is bright."""
    levels = np.rint(_defocus_array(disparity, "disparity") * 65535.0).astype(np.uint16)
    return _write_png(path, Image.fromarray(levels), overwrite=overwrite)


def write_disparity_color(path: PathLike, disparity: torch.Tensor, *, overwrite: bool = False) -> Path:
    """Write a colour view of a normalised disparity map (H, W) or (1, H, W) as an 8-bit RGB PNG: the
    colour map of :func:`write_defocus_color`, far black to near pale yellow."""
    colors = colorize_defocus(torch.as_tensor(_defocus_array(disparity, "disparity")))
    return _write_png(path, Image.fromarray(colors, mode="RGB"), overwrite=overwrite)


def colorize_defocus(defocus: torch.Tensor) -> np.ndarray:
    """A defocus map (H, W) or (1, H, W) as an (H, W, 3) uint8 image through a magma-like colour map."""
    values = _defocus_array(defocus)
    positions = np.linspace(0.0, 1.0, len(_COLORMAP_ANCHORS))
    channels = [np.interp(values, positions, _COLORMAP_ANCHORS[:, channel]) for channel in range(3)]
    return np.rint(np.stack(channels, axis=-1)).astype(np.uint8)


def format_for_path(path: PathLike) -> str:
    """The Pillow format that writes files with this extension; InputError for an unknown one."""
    path = Path(path)
    extension = path.suffix.lower()
    image_format = Image.registered_extensions().get(extension)
    if image_format is None or image_format not in Image.SAVE:
        shown = f"extension {extension!r}" if extension else "no extension"
        raise InputError(f"{path}: {shown} is not an image format d2f can write (use .png, .jpg, .tif, ...)")
    return image_format


def _defocus_array(defocus: torch.Tensor, name: str = "defocus") -> np.ndarray:
    """A map (H, W) or (1, H, W) as an (H, W) float array clipped to [0, 1]; errors call it ``name``."""
    if (
        not isinstance(defocus, torch.Tensor)
        or defocus.dim() not in (2, 3)
        or (defocus.dim() == 3 and defocus.shape[0] != 1)
    ):
        raise InputError(f"{name}: expected a tensor of shape (H, W) or (1, H, W), got {_describe(defocus)}")
    values = defocus.detach().float().reshape(defocus.shape[-2:]).cpu().numpy()
    if not np.isfinite(values).all():
        raise InputError(f"{name}: expected finite values, found NaN or inf")
    return np.clip(values, 0.0, 1.0)


def _write_png(path: PathLike, image: Image.Image, *, overwrite: bool) -> Path:
    path = Path(path)
    if format_for_path(path) != "PNG":
        raise InputError(f"{path}: maps are written as PNG, expected a .png file name")
    return _write_atomically(path, lambda file: image.save(file, format="PNG"), overwrite=overwrite)


def _write_atomically(path: Path, save: Callable[[BinaryIO], None], *, overwrite: bool) -> Path:
    """Write through ``save`` to a temporary file beside ``path``, then move it into place.

    With ``overwrite=False`` the final step is a hard link, which fails atomically if ``path`` has
    appeared in the meantime (a plain rename would silently replace it).
    """
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected an output file name")
    if not overwrite and path.exists():
        raise InputError(f"{path}: already exists (pass overwrite=True to replace it)")
    if not path.parent.is_dir():
        raise InputError(f"{path}: output folder {path.parent} does not exist")
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    created = False
    try:
        with temporary.open("xb") as file:  # "x": never clobber; the default mode honours the umask
            created = True
            try:
                save(file)
            except OSError as error:
                if error.errno is not None:
                    raise
                raise InputError(f"{path}: cannot be written in this format ({error})") from None
            except (ValueError, KeyError, TypeError) as error:
                raise InputError(f"{path}: cannot be written in this format ({error})") from None
            file.flush()
            os.fsync(file.fileno())
        _move_into_place(temporary, path, overwrite=overwrite)
    except OSError as error:
        raise D2FError(f"{path}: cannot write: {os_error_reason(error)}") from None
    finally:
        if created:  # a failed clean-up must not hide why the write failed
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)
    return path


def os_error_reason(error: OSError) -> str:
    """The operating system's reason for ``error`` as the end of a sentence: ``read-only file system``."""
    reason = error.strerror or str(error) or type(error).__name__
    return reason[:1].lower() + reason[1:]


def _move_into_place(temporary: Path, path: Path, *, overwrite: bool) -> None:
    if overwrite:
        os.replace(temporary, path)
        return
    try:
        os.link(temporary, path)
    except FileExistsError:
        raise InputError(f"{path}: already exists (pass overwrite=True to replace it)") from None
    except OSError as error:
        # Some file systems have no hard links; fall back to a rename after a last check.
        if error.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
            raise
        if path.exists():
            raise InputError(f"{path}: already exists (pass overwrite=True to replace it)") from None
        os.replace(temporary, path)
