"""``d2f.render_image``: every kind of input in, the same kind out, at exactly the input size."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import d2f
from d2f.errors import ImageReadError, InputError
from d2f.io import array_to_tensor, tensor_to_array
from d2f.models import D2F, D2FConfig, presets
from d2f.pipeline import default_model, predict, render_image, resolve_device

DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]


@pytest.fixture(scope="module")
def model() -> D2F:
    torch.manual_seed(0)
    return D2F(D2FConfig()).eval()


@pytest.fixture(scope="module")
def pixels() -> np.ndarray:
    """A 37 x 53 photo-like image: smooth gradients plus noise, with a saturated highlight."""
    rows, columns = np.mgrid[0:37, 0:53]
    base = np.stack([rows * 6, columns * 4, (rows + columns) * 2], axis=-1)
    noise = np.random.default_rng(0).integers(0, 40, (37, 53, 3))
    image = np.clip(base + noise, 0, 255).astype(np.uint8)
    image[10:14, 20:24] = 255
    return image


def test_public_name_is_the_pipeline_function() -> None:
    assert d2f.render_image is render_image


def test_numpy_in_numpy_out(model: D2F, pixels: np.ndarray) -> None:
    result = render_image(pixels, model, "cpu")
    assert isinstance(result, np.ndarray)
    assert result.shape == pixels.shape and result.dtype == np.uint8
    assert not np.array_equal(result, pixels)  # something was rendered


def test_every_input_kind_gives_the_same_pixels(model: D2F, pixels: np.ndarray, tmp_path: Path) -> None:
    from_array = render_image(pixels, model, "cpu")

    from_pil = render_image(Image.fromarray(pixels), model, "cpu")
    assert isinstance(from_pil, Image.Image) and from_pil.mode == "RGB" and from_pil.size == (53, 37)
    assert np.array_equal(np.asarray(from_pil), from_array)

    Image.fromarray(pixels).save(tmp_path / "photo.png")
    from_path = render_image(tmp_path / "photo.png", model, "cpu")
    from_str = render_image(str(tmp_path / "photo.png"), model, "cpu")
    assert isinstance(from_path, Image.Image) and isinstance(from_str, Image.Image)
    assert np.array_equal(np.asarray(from_path), from_array)
    assert np.array_equal(np.asarray(from_str), from_array)

    from_tensor = render_image(array_to_tensor(pixels), model, "cpu")
    assert np.array_equal(tensor_to_array(from_tensor), from_array)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_tensor_keeps_shape_dtype_and_device(model: D2F, device: str, dtype: torch.dtype) -> None:
    image = torch.rand(3, 45, 71, dtype=dtype, device=device)
    result = render_image(image, model, device)
    assert result.shape == image.shape and result.dtype == dtype and result.device == image.device
    assert float(result.min()) >= 0 and float(result.max()) <= 1


def test_batched_tensor_renders_each_image(model: D2F) -> None:
    batch = torch.rand(2, 3, 40, 50)
    result = render_image(batch, model, "cpu")
    assert result.shape == batch.shape
    torch.testing.assert_close(result[1], render_image(batch[1], model, "cpu"), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("size", [(37, 53), (100, 130), (65, 127), (1, 1)])
def test_output_keeps_the_input_size(model: D2F, size: tuple[int, int]) -> None:
    image = np.random.default_rng(1).integers(0, 256, (*size, 3), dtype=np.uint8)
    assert render_image(image, model, "cpu").shape == (*size, 3)


def test_pil_image_of_any_mode_is_converted(model: D2F, pixels: np.ndarray) -> None:
    gray = Image.fromarray(pixels[..., 0], mode="L")
    result = render_image(gray, model, "cpu")
    assert result.mode == "RGB" and result.size == gray.size


def test_path_applies_exif_orientation_and_size_limit(model: D2F, tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (60, 30), (120, 80, 40)).save(tmp_path / "turned.jpg", exif=exif)
    assert render_image(tmp_path / "turned.jpg", model, "cpu").size == (30, 60)
    with pytest.raises(ImageReadError, match="above the limit"):
        render_image(tmp_path / "turned.jpg", model, "cpu", max_megapixels=0.001)


def test_bad_path_is_an_image_read_error(model: D2F, tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match="no such file"):
        render_image(tmp_path / "missing.png", model, "cpu")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_array_in_float_array_out(model: D2F, pixels: np.ndarray, dtype: type) -> None:
    as_float = (pixels / 255.0).astype(dtype)
    result = render_image(as_float, model, "cpu")
    assert isinstance(result, np.ndarray) and result.dtype == dtype and result.shape == pixels.shape
    assert result.min() >= 0.0 and result.max() <= 1.0
    from_uint8 = render_image(pixels, model, "cpu")
    assert np.abs(np.rint(result * 255.0) - from_uint8).max() <= 1


def test_channels_last_and_uint8_tensors_keep_their_layout(model: D2F, pixels: np.ndarray) -> None:
    reference = render_image(pixels, model, "cpu")
    hwc = torch.from_numpy(pixels).float() / 255.0
    result = render_image(hwc, model, "cpu")
    assert result.shape == hwc.shape and result.dtype == torch.float32
    assert (result * 255.0 - torch.from_numpy(reference).float()).abs().max() <= 1.0
    as_uint8 = render_image(torch.from_numpy(pixels), model, "cpu")
    assert as_uint8.dtype == torch.uint8 and as_uint8.shape == pixels.shape
    assert (as_uint8.int() - torch.from_numpy(reference).int()).abs().max() <= 1
    chw = render_image(torch.from_numpy(pixels).permute(2, 0, 1).contiguous(), model, "cpu")
    assert torch.equal(chw.permute(1, 2, 0), as_uint8)


def test_model_by_name_or_path_and_render_options(model: D2F, pixels: np.ndarray, tmp_path: Path) -> None:
    folder = model.save_pretrained(tmp_path / "saved")
    expected = render_image(pixels, model, "cpu", strength=0.5)
    assert np.array_equal(render_image(pixels, folder, "cpu", strength=0.5), expected)
    by_file = render_image(pixels, str(folder / "model.safetensors"), "cpu", strength=0.5)
    assert np.array_equal(by_file, expected)
    assert not np.array_equal(render_image(pixels, model, "cpu"), expected)
    with pytest.raises(InputError, match="strenght: not a render option"):
        render_image(pixels, model, "cpu", strenght=0.5)


def test_training_mode_is_restored_and_ignored(model: D2F, pixels: np.ndarray) -> None:
    expected = render_image(pixels, model, "cpu")
    model.train()
    try:
        assert np.array_equal(render_image(pixels, model, "cpu"), expected)  # batch norm ran in eval mode
        assert model.training
    finally:
        model.eval()


def test_bf16_precision_is_close_to_fp32(model: D2F) -> None:
    image = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(3))
    full = render_image(image, model, "cpu")
    fast = render_image(image, model, "cpu", precision="bf16")
    assert fast.shape == full.shape and fast.dtype == torch.float32
    assert float((fast - full).abs().mean()) < 0.01


def test_predict_returns_all_maps(model: D2F) -> None:
    output = predict(model, torch.rand(1, 3, 37, 53), device="cpu")
    assert output.bokeh.shape == (1, 3, 37, 53)
    assert output.defocus.shape == (1, 1, 64, 64)
    assert output.fusion_mask.shape == (1, 1, 37, 53)


def test_without_a_model_the_error_says_what_to_pass(
    pixels: np.ndarray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(presets, "BUNDLE_ROOT", tmp_path / "no-weights")  # installed without a bundle
    with pytest.raises(InputError) as error:
        render_image(pixels)
    message = str(error.value)
    assert "no model available" in message and "load_official" in message and "load_pretrained" in message
    assert "\n" not in message and error.value.exit_code == 2
    with pytest.raises(InputError, match="no model available"):
        default_model()


@pytest.mark.parametrize(
    ("image", "problem"),
    [
        ([[0.5]], "expected a path"),
        (np.full((8, 8, 3), 1.5, dtype=np.float32), r"values in \[0, 1\]"),
        (np.zeros((8, 8), dtype=np.uint8), "uint8 array"),
        (np.zeros((8, 8, 3), dtype=np.int32), "uint8 array"),
        (torch.zeros(8, 8), r"\(3, H, W\), \(N, 3, H, W\) or \(H, W, 3\)"),
        (torch.zeros(1, 4, 8, 8), r"\(3, H, W\), \(N, 3, H, W\) or \(H, W, 3\)"),
        (torch.zeros(3, 8, 8, dtype=torch.int32), "floating-point tensor in \\[0, 1\\] or a uint8"),
        (torch.full((8, 8, 3), -0.5), r"values in \[0, 1\]"),
        (torch.full((3, 8, 8), 2.0), r"values in \[0, 1\]"),
        (torch.full((3, 8, 8), float("nan")), "NaN"),
        (torch.zeros(3, 0, 8), "non-empty"),
    ],
)
def test_bad_inputs_are_input_errors(model: D2F, image: object, problem: str) -> None:
    with pytest.raises(InputError, match=problem):
        render_image(image, model, "cpu")


def test_bad_model_and_precision_are_input_errors(pixels: np.ndarray, model: D2F) -> None:
    with pytest.raises(InputError, match=r"weights\.pth: neither a bundled model nor an existing"):
        render_image(pixels, "weights.pth", "cpu")
    with pytest.raises(InputError, match=r"model: expected a d2f\.models\.D2F"):
        render_image(pixels, 42, "cpu")
    with pytest.raises(InputError, match="precision"):
        render_image(pixels, model, "cpu", precision="fp8")


def test_device_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device(None) == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(InputError, match="CUDA is not available"):
        resolve_device("cuda")
    with pytest.raises(InputError, match="device"):
        resolve_device("gpu-please")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")


def test_background_blur_scale_converts_photo_pixels_to_the_stage1_blur_scale() -> None:
    from d2f.pipeline import background_blur_scale
    from d2f.render import diameter_to_defocus

    model = D2F(dataclasses.replace(D2FConfig(encoder="resnet18", decoder_features=16), blur_scale=0.4))
    # A 128x192 photo runs stage 1 at 64x128: 30 px of the photo are 20 px there.
    assert model.stage1_size(128, 192) == (64, 128)
    assert background_blur_scale(model, (128, 192), 30.0) == pytest.approx(float(diameter_to_defocus(20.0)))
    assert background_blur_scale(model, (128, 192), 0) == 0.0
    assert background_blur_scale(model, (128, 192), 1e6) == 1.0  # beyond the largest kernel
    for bad in (-1.0, float("nan"), float("inf"), True, "wide"):
        with pytest.raises(InputError, match="diameter: expected a finite number of pixels >= 0"):
            background_blur_scale(model, (128, 192), bad)


def test_predict_passes_the_blur_scale_to_relative_models(pixels: np.ndarray) -> None:
    torch.manual_seed(0)
    relative = D2F(dataclasses.replace(D2FConfig(encoder="resnet18", decoder_features=16), blur_scale=0.4))
    images = array_to_tensor(pixels).unsqueeze(0)
    wide, narrow = (predict(relative, images, blur_scale=scale).defocus for scale in (0.8, 0.2))
    torch.testing.assert_close(wide, narrow * 4)
