"""Rendering from the networks' outputs computed once: D2F.network_outputs and forward(network=...)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from d2f.errors import InputError
from d2f.io import read_image
from d2f.models import D2F
from d2f.models.d2f import scale_kernels
from d2f.pipeline import default_model
from tiny_models import TINY_LITE

SAMPLE = Path(__file__).resolve().parents[2] / "src" / "d2f" / "samples" / "coffee.jpg"

DEPTH = dataclasses.replace(TINY_LITE, predicts="depth", working_long_side=128)


def _model(config) -> D2F:
    torch.manual_seed(0)
    return D2F(config).eval()


def _forbid_networks(model: D2F, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("a stage-1 network ran although its outputs were given")

    monkeypatch.setattr(model.defocus_net, "forward", refuse)
    monkeypatch.setattr(model.radiance_net, "forward", refuse)


@pytest.mark.parametrize(
    ("config", "options"),
    [
        (TINY_LITE, {}),
        (TINY_LITE, {"strength": 2.0, "aperture_blades": 6, "highlight_gain": 8.0}),
        (TINY_LITE, {"strength": 0.0}),
        (DEPTH, {"focus": (10.0, 40.0), "f_number": 1.4}),
    ],
)
def test_rendering_from_network_outputs_equals_a_full_pass(config, options, monkeypatch) -> None:
    model = _model(config)
    image = torch.rand(1, 3, 70, 100, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        expected = model(image, **options)
        network = model.network_outputs(image)
        _forbid_networks(model, monkeypatch)
        cached = model(image, network=network, **options)
    torch.testing.assert_close(cached.bokeh, expected.bokeh, rtol=0, atol=0)
    torch.testing.assert_close(cached.defocus, expected.defocus, rtol=0, atol=0)


def test_network_outputs_of_another_size_are_refused() -> None:
    model = _model(TINY_LITE)
    with torch.inference_mode():
        network = model.network_outputs(torch.rand(1, 3, 64, 64))
        with pytest.raises(InputError, match=r"^network: computed for a batch of shape"):
            model(torch.rand(1, 3, 256, 256), network=network)
        with pytest.raises(InputError, match=r"^network: expected D2F.network_outputs"):
            model(torch.rand(1, 3, 64, 64), network=(network.radiance, network.prediction))


def test_kernel_scale_draws_smaller_discs_from_the_same_defocus() -> None:
    assert scale_kernels((3, 5, 7, 11, 69), 0.25) == (1, 1, 1, 3, 17)
    assert scale_kernels((3, 69), 1.0) == (3, 69)
    model = default_model()  # a trained defocus network: blur where a tiny random one has next to none
    image = read_image(SAMPLE)[None, :, ::3, ::3]
    with torch.inference_mode():
        full = model(image, strength=3.0)
        half = model(image, strength=3.0, kernel_scale=0.5)
        none = model(image, strength=3.0, kernel_scale=0.0)  # every kernel one pixel: no blur at all
    torch.testing.assert_close(half.defocus, full.defocus, rtol=0, atol=0)
    small = F.interpolate(image, size=none.bokeh_small.shape[-2:], mode="bilinear", align_corners=False)
    blur = [float((output.bokeh_small - small).abs().mean()) for output in (full, half)]
    assert blur[1] < blur[0]
    torch.testing.assert_close(none.bokeh_small, small, rtol=1e-4, atol=1e-4)
