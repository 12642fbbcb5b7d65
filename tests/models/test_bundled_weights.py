"""The d2f-lite weights that ship inside the package: they load, fast, and render a sensible image."""

from __future__ import annotations

import time

import torch

from d2f.cli.demo import SAMPLE_PHOTO
from d2f.io import read_image
from d2f.models import CONFIGS, D2F, load, presets
from d2f.models.checkpoint import WEIGHTS_NAME
from d2f.pipeline import default_model, predict


def test_the_shipped_bundle_is_small_float16_d2f_lite() -> None:
    from safetensors.torch import load_file

    weights = presets.bundle_path("d2f-lite") / WEIGHTS_NAME
    assert presets.is_bundled("d2f-lite"), f"{weights} is missing from this checkout"
    assert weights.stat().st_size < 25e6
    tensors = load_file(weights)
    assert {tensor.dtype for tensor in tensors.values() if tensor.is_floating_point()} == {torch.float16}


def test_the_shipped_bundle_loads_fast_and_renders_a_small_image() -> None:
    start = time.perf_counter()
    model = default_model()
    load_seconds = time.perf_counter() - start
    assert isinstance(model, D2F) and model.config == CONFIGS["d2f-lite"] and not model.training
    assert load_seconds < 5.0  # generous: the benchmark measures it; this only catches a pathology

    torch.manual_seed(0)
    rows = torch.linspace(0, 1, 96).view(1, 1, 96, 1)
    image = (0.6 * rows + 0.4 * torch.rand(1, 3, 96, 128)).clamp(0, 1)
    with torch.inference_mode():
        output = predict(model, image, device="cpu")
    assert output.bokeh.shape == image.shape and torch.isfinite(output.bokeh).all()
    assert output.bokeh.min() >= 0 and output.bokeh.max() <= 1
    # a trained model blurs somewhere (a textured photo is not all in focus) but does not invent colours
    assert output.defocus.max() > 0.05
    assert 0 < (output.bokeh - image).abs().mean() < 0.2


def test_the_depth_bundle_takes_focus_and_aperture() -> None:
    """d2f-lite-2 on the sample photo: a wider aperture blurs more, focus moves the sharp zone, and its
    depth says the cup in the foreground is nearer than the wall behind it."""
    model = load("d2f-lite-2")
    assert model.config == CONFIGS["d2f-lite-2"] and model.config.predicts_depth
    photo = read_image(SAMPLE_PHOTO).unsqueeze(0)  # 400x600, the cup's body around (300, 200)
    with torch.inference_mode():
        wide, narrow = (predict(model, photo, focus=(300, 200), f_number=n) for n in (1.4, 8.0))
        far = predict(model, photo, focus=(300, 20), f_number=1.4)
    assert float(wide.defocus.mean()) > float(narrow.defocus.mean()) > 0
    cup = wide.disparity[..., 200:, 150:450].mean()
    wall = wide.disparity[..., :60, :].mean()
    assert float(cup) > float(wall)
    height, width = wide.defocus.shape[-2:]

    def at(output, y, x):
        return float(output.defocus[0, 0, round(y * height / 400), round(x * width / 600)])
    assert at(wide, 200, 300) < at(far, 200, 300) and at(far, 20, 300) < at(wide, 20, 300)
