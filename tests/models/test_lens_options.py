"""The lens options reach the renderer of any model: aperture shape, cat's eye, highlights."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from d2f.models import D2F
from tiny_models import TINY_LITE


@pytest.fixture(scope="module")
def model() -> D2F:
    torch.manual_seed(0)
    return D2F(dataclasses.replace(TINY_LITE, working_long_side=192)).eval()


def photo(seed: int = 0, scale: float = 1.0) -> torch.Tensor:
    return torch.rand(1, 3, 128, 192, generator=torch.Generator().manual_seed(seed)) * scale


def bokeh(model: D2F, image: torch.Tensor, **options) -> torch.Tensor:
    """Stage 1's render, with the blur of a receding ground seen at f/1.4 (the tiny model's own defocus is
    nearly none)."""
    ground = torch.linspace(0, 1, 128).reshape(1, 1, 128, 1).expand(1, 1, 128, 192)
    with torch.no_grad():
        return model(image, disparity=ground, focus=(96.0, 127.0), f_number=1.4, **options).bokeh_small


def test_default_options_are_the_models_own_highlights(model: D2F) -> None:
    image = photo().clamp_max(0.995)
    own = bokeh(model, image)
    explicit = bokeh(
        model,
        image,
        highlight_threshold=TINY_LITE.saturation_threshold,
        highlight_gain=TINY_LITE.saturation_gain,
    )
    assert torch.equal(own, explicit)
    assert not torch.equal(own, bokeh(model, image, highlight_gain=20.0))


def test_gain_changes_nothing_without_highlights(model: D2F) -> None:
    image = photo(1, scale=0.9)
    assert torch.equal(bokeh(model, image, highlight_gain=0.5), bokeh(model, image, highlight_gain=50.0))


def test_aperture_and_cats_eye_shape_the_render(model: D2F) -> None:
    image = photo(2)
    round_render = bokeh(model, image)
    assert torch.equal(round_render, bokeh(model, image, aperture_blades=6, aperture_curvature=1.0))
    hexagon = bokeh(model, image, aperture_blades=6)
    assert not torch.allclose(round_render, hexagon, atol=1e-4)
    turned = bokeh(model, image, aperture_blades=6, aperture_rotation=30.0)
    assert not torch.allclose(hexagon, turned, atol=1e-4)
    assert not torch.allclose(round_render, bokeh(model, image, cats_eye=1.0), atol=1e-4)
