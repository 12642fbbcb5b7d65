"""The d2f-lite weights that ship inside the package: they load, fast, and render a sensible image."""

from __future__ import annotations

import time

import torch

from d2f.models import CONFIGS, D2F, presets
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
