"""Reading every kind of image safely, and writing images and defocus maps atomically."""

from __future__ import annotations

import errno
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms

from d2f.errors import D2FError, ImageReadError, InputError
from d2f.io import (
    ImageMetadata,
    array_to_tensor,
    colorize_defocus,
    image_metadata,
    pil_to_tensor,
    read_image,
    read_image_and_metadata,
    tensor_to_array,
    tensor_to_pil,
    write_defocus,
    write_defocus_color,
    write_image,
)


def random_rgb(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares a size in its header but carries no pixel data."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IEND", b"")


def assert_one_line_naming(error: pytest.ExceptionInfo, path: Path, problem: str) -> None:
    message = str(error.value)
    assert "\n" not in message
    assert str(path) in message
    assert problem in message


# ------------------------------------------------------------------------------------------- reading


def test_rgb_png_round_trips_exactly(tmp_path: Path) -> None:
    pixels = random_rgb(13, 21)
    Image.fromarray(pixels).save(tmp_path / "a.png")
    image = read_image(tmp_path / "a.png")
    assert image.shape == (3, 13, 21) and image.dtype == torch.float32
    assert np.array_equal(tensor_to_array(image), pixels)


def test_grayscale_is_expanded_to_three_equal_channels(tmp_path: Path) -> None:
    gray = random_rgb(9, 11)[..., 0]
    Image.fromarray(gray, mode="L").save(tmp_path / "gray.png")
    image = read_image(tmp_path / "gray.png")
    assert image.shape == (3, 9, 11)
    for channel in range(3):
        assert torch.equal(image[channel], torch.from_numpy(gray).float() / 255)


def test_bilevel_image_becomes_black_and_white(tmp_path: Path) -> None:
    bits = Image.new("1", (8, 4), 0)
    bits.putpixel((3, 2), 1)
    bits.save(tmp_path / "bits.png")
    image = read_image(tmp_path / "bits.png")
    assert image.shape == (3, 4, 8)
    assert image[:, 2, 3].tolist() == [1.0, 1.0, 1.0] and float(image.sum()) == 3.0


@pytest.mark.parametrize("transparency", [False, True])
def test_palette_image_uses_its_palette_colours(tmp_path: Path, transparency: bool) -> None:
    palette_image = Image.new("P", (6, 5), 1)
    palette_image.putpalette([0, 0, 0, 200, 30, 10, 5, 250, 40] + [0] * (256 * 3 - 9))
    palette_image.putpixel((0, 0), 2)
    options = {"transparency": 1} if transparency else {}
    palette_image.save(tmp_path / "palette.png", **options)
    image = tensor_to_array(read_image(tmp_path / "palette.png"))
    assert image[1, 1].tolist() == [200, 30, 10]  # transparent or not: the colour is kept, alpha dropped
    assert image[0, 0].tolist() == [5, 250, 40]


def test_rgba_drops_alpha_and_keeps_colour_values(tmp_path: Path) -> None:
    rgba = random_rgb(7, 10)
    alpha = np.zeros((7, 10, 1), dtype=np.uint8)  # fully transparent: a compositing reader would change RGB
    Image.fromarray(np.concatenate([rgba, alpha], axis=2), mode="RGBA").save(tmp_path / "rgba.png")
    assert np.array_equal(tensor_to_array(read_image(tmp_path / "rgba.png")), rgba)


def test_la_drops_alpha(tmp_path: Path) -> None:
    gray = random_rgb(5, 6)[..., 0]
    la = np.stack([gray, np.full_like(gray, 7)], axis=2)
    Image.fromarray(la, mode="LA").save(tmp_path / "la.png")
    image = tensor_to_array(read_image(tmp_path / "la.png"))
    assert np.array_equal(image, np.repeat(gray[..., None], 3, axis=2))


def test_sixteen_bit_png_is_scaled_by_65535(tmp_path: Path) -> None:
    levels = np.array([[0, 1, 256, 32768, 65534, 65535]], dtype=np.uint16)
    Image.fromarray(levels).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode == "I;16"
    image = read_image(tmp_path / "deep.png")
    expected = torch.from_numpy(levels.astype(np.float32) / 65535)
    assert image.shape == (3, 1, 6)
    torch.testing.assert_close(image[1], expected, rtol=0, atol=1e-7)
    assert float(image[0, 0, 1]) > 0  # precision below 1/255 survives


def test_cmyk_jpeg_is_converted_to_rgb(tmp_path: Path) -> None:
    Image.new("CMYK", (16, 8), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg", quality=100)
    assert Image.open(tmp_path / "cmyk.jpg").mode == "CMYK"
    image = tensor_to_array(read_image(tmp_path / "cmyk.jpg"))
    assert image.shape == (8, 16, 3)
    red, green, blue = image[4, 8].astype(int)
    assert red > 240 and green < 15 and blue < 15  # no cyan, full magenta and yellow: red


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    pixels = np.zeros((20, 40, 3), dtype=np.uint8)
    pixels[:, :20] = (255, 0, 0)  # left half red
    pixels[:, 20:] = (0, 0, 255)  # right half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: the camera was turned 90 degrees; viewers rotate clockwise
    Image.fromarray(pixels).save(tmp_path / "rotated.jpg", exif=exif, quality=100)
    image = tensor_to_array(read_image(tmp_path / "rotated.jpg"))
    assert image.shape == (40, 20, 3)  # height and width are swapped
    assert image[5, 10, 0] > 200 and image[5, 10, 2] < 50  # the left (red) half is now on top
    assert image[35, 10, 2] > 200 and image[35, 10, 0] < 50


# ------------------------------------------------------------------------------------------- metadata

ORIENTATION, MODEL, EXIF_IFD, EXPOSURE_TIME = 0x0112, 0x0110, 0x8769, 0x829A


def srgb_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def camera_exif(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    exif[MODEL] = "Test Camera"
    exif[EXIF_IFD] = {EXPOSURE_TIME: 0.004}
    return exif


def exif_of(metadata: ImageMetadata) -> Image.Exif:
    exif = Image.Exif()
    exif.load(metadata.exif)
    return exif


@pytest.mark.parametrize("name", ["turned.jpg", "turned.tif"])
def test_metadata_keeps_the_colour_profile_and_exif_but_not_the_orientation(
    tmp_path: Path, name: str
) -> None:
    source = tmp_path / name
    options = {"exif": camera_exif(6).tobytes(), "icc_profile": srgb_profile()}
    Image.fromarray(random_rgb(20, 40)).save(source, **options)
    image, metadata = read_image_and_metadata(source)
    assert image.shape == (3, 40, 20)  # upright
    assert metadata.icc_profile == srgb_profile()
    exif = exif_of(metadata)
    assert ORIENTATION not in exif  # the pixels are upright: a viewer must not turn them again
    assert exif[MODEL] == "Test Camera" and exif.get_ifd(EXIF_IFD)[EXPOSURE_TIME] == 0.004


def test_the_storage_tags_of_a_tiff_are_not_carried_over(tmp_path: Path) -> None:
    pixels = random_rgb(24, 32)
    exif = Image.Exif()
    exif[MODEL] = "Test Camera"
    Image.fromarray(pixels).save(tmp_path / "in.tif", compression="tiff_lzw", exif=exif.tobytes())
    metadata = read_image_and_metadata(tmp_path / "in.tif")[1]
    exif = exif_of(metadata)
    assert exif[MODEL] == "Test Camera"
    assert not {256, 257, 259, 273, 279} & set(exif)  # size, compression, strips: the old file's
    write_image(tmp_path / "out.tif", array_to_tensor(pixels), metadata=metadata)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out.tif")), pixels)


def test_metadata_of_a_plain_image_is_empty(tmp_path: Path) -> None:
    Image.fromarray(random_rgb(8, 8)).save(tmp_path / "plain.png")
    assert read_image_and_metadata(tmp_path / "plain.png")[1] == ImageMetadata(None, None)


@pytest.mark.parametrize("space", [b"GRAY", b"CMYK"])
def test_only_an_rgb_colour_profile_is_kept(space: bytes) -> None:
    profile = srgb_profile()
    image = Image.new("RGB", (4, 4))
    image.info["icc_profile"] = profile[:16] + space + profile[20:]
    assert image_metadata(image).icc_profile is None


def test_unparsable_exif_is_left_out() -> None:
    image = Image.new("RGB", (4, 4))
    image.info["exif"] = b"Exif\x00\x00not a TIFF header at all"
    assert image_metadata(image).exif is None


CAN_WRITE_AVIF = Image.registered_extensions().get(".avif") in Image.SAVE  # not in Pillow 11.0 and older


@pytest.mark.parametrize(
    "name",
    [
        "out.jpg",
        "out.png",
        "out.webp",
        "out.tif",
        pytest.param("out.avif", marks=pytest.mark.skipif(not CAN_WRITE_AVIF, reason="Pillow without AVIF")),
    ],
)
def test_written_metadata_round_trips(tmp_path: Path, name: str) -> None:
    metadata = ImageMetadata(srgb_profile(), camera_exif().tobytes())
    write_image(tmp_path / name, Image.fromarray(random_rgb(16, 16)), metadata=metadata)
    written = read_image_and_metadata(tmp_path / name)[1]
    assert written.icc_profile == metadata.icc_profile
    assert exif_of(written)[MODEL] == "Test Camera"


def test_formats_without_room_for_metadata_are_written_without_it(tmp_path: Path) -> None:
    metadata = ImageMetadata(srgb_profile(), camera_exif().tobytes())
    pixels = random_rgb(8, 8)
    write_image(tmp_path / "out.bmp", array_to_tensor(pixels), metadata=metadata)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out.bmp")), pixels)


def test_exif_too_large_for_a_jpeg_is_left_out_of_it_only(tmp_path: Path) -> None:
    exif = camera_exif()
    exif[0x010E] = "x" * 70_000  # ImageDescription: more than one JPEG segment holds
    metadata = ImageMetadata(srgb_profile(), exif.tobytes())
    image = Image.fromarray(random_rgb(8, 8))
    write_image(tmp_path / "out.jpg", image, metadata=metadata)
    write_image(tmp_path / "out.png", image, metadata=metadata)
    assert read_image_and_metadata(tmp_path / "out.jpg")[1] == ImageMetadata(metadata.icc_profile, None)
    assert exif_of(read_image_and_metadata(tmp_path / "out.png")[1])[MODEL] == "Test Camera"


def test_metadata_of_the_wrong_type_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"metadata: expected a d2f\.io\.ImageMetadata, got dict"):
        write_image(tmp_path / "out.jpg", Image.new("RGB", (4, 4)), metadata={"exif": b""})
    with pytest.raises(InputError, match=r"image: expected a PIL\.Image\.Image, got str"):
        image_metadata("photo.jpg")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------ bad input


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.jpg"
    with pytest.raises(ImageReadError) as error:
        read_image(path)
    assert_one_line_naming(error, path, "no such file")


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError) as error:
        read_image(tmp_path)
    assert_one_line_naming(error, tmp_path, "is a directory")


def test_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("this is not a picture\n")
    with pytest.raises(ImageReadError) as error:
        read_image(path)
    assert_one_line_naming(error, path, "not an image")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.touch()
    with pytest.raises(ImageReadError) as error:
        read_image(path)
    assert_one_line_naming(error, path, "empty")


@pytest.mark.parametrize("size", [(0, 10), (10, 0)])
def test_zero_sized_png(tmp_path: Path, size: tuple[int, int]) -> None:
    path = tmp_path / "zero.png"
    path.write_bytes(png_header_only(*size))
    with pytest.raises(ImageReadError) as error:
        read_image(path)
    assert_one_line_naming(error, path, "zero width or height")


def test_truncated_jpeg(tmp_path: Path) -> None:
    path = tmp_path / "cut.jpg"
    Image.fromarray(random_rgb(64, 64)).save(path, quality=90)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ImageReadError) as error:
        read_image(path)
    assert_one_line_naming(error, path, "truncated")


def test_corrupt_png_data(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.png"
    Image.fromarray(random_rgb(32, 32)).save(path)
    data = bytearray(path.read_bytes())
    start = data.index(b"IDAT") + 8
    data[start : start + 40] = bytes(40)  # garbage inside the compressed stream
    path.write_bytes(bytes(data))
    with pytest.raises(ImageReadError) as error:
        read_image(path)
    assert_one_line_naming(error, path, "corrupt")


def test_size_limit_is_checked_before_decoding(tmp_path: Path) -> None:
    # The header claims 100 megapixels but there is no pixel data: decoding would fail differently.
    path = tmp_path / "huge.png"
    path.write_bytes(png_header_only(10_000, 10_000))
    with pytest.raises(ImageReadError) as error:
        read_image(path)
    assert_one_line_naming(error, path, "10000x10000 (100.0 megapixels), above the limit of 50 megapixels")


def test_size_limit_is_configurable(tmp_path: Path) -> None:
    path = tmp_path / "medium.png"
    Image.new("RGB", (1000, 600)).save(path)
    with pytest.raises(ImageReadError, match=r"above the limit of 0\.5 megapixels"):
        read_image(path, max_megapixels=0.5)
    assert read_image(path, max_megapixels=0.6).shape == (3, 600, 1000)


def test_decompression_bomb_is_refused_even_without_a_limit(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_only(20_000, 20_000))  # above Pillow's own hard limit
    with pytest.raises(ImageReadError) as error:
        read_image(path, max_megapixels=None)
    assert_one_line_naming(error, path, "too large")


def test_read_errors_are_value_errors_with_input_exit_code(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as error:
        read_image(tmp_path / "missing.png")
    assert isinstance(error.value, D2FError) and error.value.exit_code == 2


# --------------------------------------------------------------------------------------- conversions


def test_array_and_pil_conversions_round_trip() -> None:
    pixels = random_rgb(5, 7)
    tensor = array_to_tensor(pixels)
    assert tensor.shape == (3, 5, 7) and tensor.dtype == torch.float32
    assert np.array_equal(tensor_to_array(tensor), pixels)
    assert np.array_equal(np.asarray(tensor_to_pil(tensor)), pixels)
    assert torch.equal(pil_to_tensor(Image.fromarray(pixels)), tensor)


@pytest.mark.parametrize(
    "array",
    [
        np.zeros((4, 4, 3), dtype=np.int16),
        np.zeros((4, 4), dtype=np.uint8),
        np.zeros((4, 4, 4), dtype=np.uint8),
    ],
)
def test_array_to_tensor_rejects_other_arrays(array: np.ndarray) -> None:
    with pytest.raises(InputError, match=r"uint8 array of shape \(H, W, 3\)"):
        array_to_tensor(array)


def test_float_arrays_in_zero_one_convert_and_others_are_refused() -> None:
    array = np.linspace(0.0, 1.0, 12).reshape(2, 2, 3)
    assert torch.allclose(array_to_tensor(array), torch.from_numpy(array).permute(2, 0, 1).float())
    with pytest.raises(InputError, match=r"values in \[0, 1\]"):
        array_to_tensor(array * 2.0)
    with pytest.raises(InputError, match="NaN"):
        array_to_tensor(np.full((2, 2, 3), np.nan, dtype=np.float32))


def test_tensor_to_array_clips_out_of_range_values() -> None:
    tensor = torch.tensor([-0.5, 0.5, 1.5]).reshape(3, 1, 1)
    assert tensor_to_array(tensor).reshape(-1).tolist() == [0, 128, 255]


# -------------------------------------------------------------------------------------------- writing


@pytest.mark.parametrize("name", ["out.png", "out.PNG", "out.tif", "out.bmp"])
def test_lossless_formats_round_trip(tmp_path: Path, name: str) -> None:
    pixels = random_rgb(11, 17)
    written = write_image(tmp_path / name, array_to_tensor(pixels))
    assert written == tmp_path / name
    assert np.array_equal(np.asarray(Image.open(written).convert("RGB")), pixels)
    assert sorted(path.name for path in tmp_path.iterdir()) == [name]  # no temporary file left behind


def test_format_follows_the_extension_and_quality_applies_to_jpeg(tmp_path: Path) -> None:
    image = Image.fromarray(random_rgb(64, 64))
    write_image(tmp_path / "low.jpg", image, quality=10)
    write_image(tmp_path / "high.jpeg", image, quality=95)
    assert Image.open(tmp_path / "low.jpg").format == "JPEG"
    assert Image.open(tmp_path / "high.jpeg").format == "JPEG"
    assert (tmp_path / "low.jpg").stat().st_size < (tmp_path / "high.jpeg").stat().st_size / 2


@pytest.mark.parametrize("name", ["out.xyz", "out"])
def test_unknown_extension_is_refused_and_writes_nothing(tmp_path: Path, name: str) -> None:
    with pytest.raises(InputError) as error:
        write_image(tmp_path / name, Image.new("RGB", (4, 4)))
    assert_one_line_naming(error, tmp_path / name, "not an image format")
    assert list(tmp_path.iterdir()) == []


def test_bad_quality_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="quality"):
        write_image(tmp_path / "out.jpg", Image.new("RGB", (4, 4)), quality=0)


def test_existing_output_is_kept_without_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "out.png"
    path.write_bytes(b"precious")
    with pytest.raises(InputError) as error:
        write_image(path, Image.new("RGB", (4, 4)))
    assert_one_line_naming(error, path, "already exists")
    assert path.read_bytes() == b"precious"
    assert list(tmp_path.iterdir()) == [path]
    write_image(path, Image.new("RGB", (4, 4), (9, 8, 7)), overwrite=True)
    assert Image.open(path).getpixel((0, 0)) == (9, 8, 7)


def test_missing_output_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        write_image(tmp_path / "nowhere" / "out.png", Image.new("RGB", (4, 4)))


def test_format_that_cannot_hold_rgb_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot be written"):
        write_image(tmp_path / "out.xbm", Image.new("RGB", (4, 4)))  # XBM is 1-bit only
    assert list(tmp_path.iterdir()) == []


def test_failure_while_writing_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "out.png"
    path.write_bytes(b"old")

    def save_half_then_fail(self: Image.Image, file: object, *args: object, **kwargs: object) -> None:
        file.write(b"\x89PNG partial")  # type: ignore[attr-defined]
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", save_half_then_fail)
    with pytest.raises(D2FError) as error:
        write_image(path, Image.new("RGB", (4, 4)), overwrite=True)
    assert error.value.exit_code == 1
    assert_one_line_naming(error, path, "cannot write: no space left on device")
    assert path.read_bytes() == b"old"  # the old file is untouched
    assert list(tmp_path.iterdir()) == [path]  # and the temporary file is gone


def test_written_file_has_normal_permissions(tmp_path: Path) -> None:
    umask = os.umask(0)
    os.umask(umask)
    path = write_image(tmp_path / "out.png", Image.new("RGB", (4, 4)))
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


# --------------------------------------------------------------------------------------- defocus maps


def test_defocus_png_is_sixteen_bit_and_exact(tmp_path: Path) -> None:
    defocus = torch.tensor([[0.0, 0.25, 1.0], [-0.5, 0.5, 2.0]]).unsqueeze(0)
    path = write_defocus(tmp_path / "d_defocus.png", defocus)
    with Image.open(path) as image:
        assert image.mode == "I;16" and image.size == (3, 2)
        levels = np.asarray(image)
    assert levels.tolist() == [[0, 16384, 65535], [0, 32768, 65535]]  # clipped to [0, 1]


def test_defocus_color_map_is_dark_to_bright(tmp_path: Path) -> None:
    ramp = torch.linspace(0, 1, 64).reshape(1, 1, 64)
    colours = colorize_defocus(ramp)
    assert colours.shape == (1, 64, 3) and colours.dtype == np.uint8
    brightness = colours[0].astype(float) @ np.array([0.299, 0.587, 0.114])
    assert np.all(np.diff(brightness) > 0)
    assert colours[0, 0].tolist() == [0, 0, 4] and colours[0, -1].tolist() == [252, 253, 191]
    path = write_defocus_color(tmp_path / "d_defocus_color.png", ramp)
    assert np.array_equal(np.asarray(Image.open(path)), colours)


def test_defocus_writers_refuse_bad_maps_and_non_png(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="defocus"):
        write_defocus(tmp_path / "d.png", torch.zeros(2, 4, 4))
    with pytest.raises(InputError, match="NaN"):
        write_defocus(tmp_path / "d.png", torch.full((4, 4), float("nan")))
    with pytest.raises(InputError, match="PNG"):
        write_defocus(tmp_path / "d.jpg", torch.zeros(4, 4))
    assert list(tmp_path.iterdir()) == []
