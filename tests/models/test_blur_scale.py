"""Relative-defocus models (``D2FConfig.blur_scale``): the map times the scene's blur scale is rendered."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from d2f.errors import ConfigError, InputError
from d2f.models import D2F
from tiny_models import TINY_LITE

DEFAULT_SCALE = 0.4


@pytest.fixture(scope="module")
def image() -> torch.Tensor:
    return torch.rand(2, 3, 45, 77, generator=torch.Generator().manual_seed(3))


@pytest.fixture(scope="module")
def relative() -> D2F:
    torch.manual_seed(0)
    config = dataclasses.replace(TINY_LITE, clamp_defocus=True, blur_scale=DEFAULT_SCALE)
    return D2F(config).eval()


def run(model: D2F, image: torch.Tensor, **options):
    with torch.no_grad():
        return model(image, **options)


def raw_map(model: D2F, image: torch.Tensor) -> torch.Tensor:
    """The network's own (relative) map at stage-1 size."""
    small = torch.nn.functional.interpolate(
        image, size=model.stage1_size(*image.shape[-2:]), mode="bilinear", align_corners=False
    )
    with torch.no_grad():
        return model.predict_defocus(small)


def test_the_map_is_scaled_by_the_default_or_the_given_blur_scale(relative, image):
    raw = raw_map(relative, image)
    torch.testing.assert_close(run(relative, image).defocus, raw * DEFAULT_SCALE)
    torch.testing.assert_close(run(relative, image, blur_scale=0.7).defocus, raw * 0.7)
    per_image = run(relative, image, blur_scale=torch.tensor([0.2, 0.9]))
    torch.testing.assert_close(per_image.defocus, raw * torch.tensor([0.2, 0.9]).view(2, 1, 1, 1))
    for index, scale in enumerate((0.2, 0.9)):
        alone = run(relative, image[index : index + 1], blur_scale=scale)
        torch.testing.assert_close(per_image.bokeh[index : index + 1], alone.bokeh, atol=1e-5, rtol=0)


def test_default_blur_scale_equals_giving_it(relative, image):
    default, given = run(relative, image), run(relative, image, blur_scale=torch.tensor(DEFAULT_SCALE))
    torch.testing.assert_close(default.bokeh, given.bokeh)


def test_zero_blur_scale_renders_nothing_blurred(relative, image):
    output = run(relative, image, blur_scale=0.0)
    assert torch.equal(output.defocus, torch.zeros_like(output.defocus))
    small = run(relative, image).bokeh_small
    # Defocus 0 everywhere: the layered rendering is the resized input itself.
    resized = torch.nn.functional.interpolate(
        image, size=small.shape[-2:], mode="bilinear", align_corners=False
    )
    torch.testing.assert_close(output.bokeh_small, resized, atol=1e-5, rtol=0)


def test_strength_multiplies_on_top_of_the_blur_scale(relative, image):
    own, stronger = run(relative, image, blur_scale=0.3), run(relative, image, blur_scale=0.3, strength=2.0)
    torch.testing.assert_close(stronger.defocus, (own.defocus * 2).clamp(0, 1))


def test_blur_scale_is_differentiable_through_the_rendering(relative, image):
    scale = torch.tensor([0.3, 0.6], requires_grad=True)
    relative(image, blur_scale=scale).bokeh.sum().backward()
    assert scale.grad is not None and bool(scale.grad.abs().gt(0).all())


def test_models_that_predict_defocus_itself_refuse_a_blur_scale(image):
    model = D2F(TINY_LITE).eval()
    with pytest.raises(InputError, match=r"blur_scale: this model predicts D2F defocus itself"):
        run(model, image, blur_scale=0.5)


PER_IMAGE = r"expected a number or one floating-point value per image \(2,\), got "


@pytest.mark.parametrize(
    ("blur_scale", "problem"),
    [
        (-0.1, "expected a finite number >= 0"),
        (float("nan"), "expected a finite number >= 0"),
        (True, "expected a finite number >= 0"),
        ("wide", "expected a finite number >= 0"),
        (torch.tensor([0.1, 0.2, 0.3]), PER_IMAGE + r"torch.float32 of shape \(3,\)"),
        (torch.ones(2, 1), PER_IMAGE + r"torch.float32 of shape \(2, 1\)"),
        (torch.tensor([1, 2]), PER_IMAGE + r"torch.int64"),
        (torch.tensor([0.1, float("inf")]), "expected finite values"),
        (torch.tensor([0.1, -0.2]), "expected non-negative values"),
    ],
)
def test_bad_blur_scales_are_input_errors(relative, image, blur_scale, problem):
    with pytest.raises(InputError, match=f"^blur_scale: {problem}"):
        run(relative, image, blur_scale=blur_scale)


@pytest.mark.parametrize("value", [0, 1.5, -0.2, "half", True])
def test_config_blur_scale_must_be_none_or_in_the_unit_interval(value):
    with pytest.raises(ConfigError, match="blur_scale: expected None or a number in"):
        dataclasses.replace(TINY_LITE, blur_scale=value)


def test_config_blur_scale_is_saved_and_loaded(relative, tmp_path):
    from d2f.models import load_pretrained

    relative.save_pretrained(tmp_path)
    assert load_pretrained(tmp_path).config.blur_scale == DEFAULT_SCALE
