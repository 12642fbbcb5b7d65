"""Rendering from the networks' outputs computed once: D2F.network_outputs and forward(network=...)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from d2f.errors import InputError
from d2f.models import D2F
from tiny_models import TINY_LITE

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
