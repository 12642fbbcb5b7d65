"""A D2F model that predicts depth, and any model given a depth map: defocus from the thin lens."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from d2f.errors import ConfigError, InputError
from d2f.models import D2F
from d2f.render import defocus_to_diameter
from d2f.render.lens import LENS_BLUR
from tiny_models import TINY_LITE

DEPTH = dataclasses.replace(TINY_LITE, predicts="depth", working_long_side=256)
#: Renders from a given depth map; a working size large enough for blur of several pixels.
DEFOCUS = dataclasses.replace(TINY_LITE, working_long_side=256)


@pytest.fixture(scope="module")
def depth_model() -> D2F:
    torch.manual_seed(0)
    return D2F(DEPTH).eval()


@pytest.fixture(scope="module")
def defocus_model() -> D2F:
    torch.manual_seed(0)
    return D2F(DEFOCUS).eval()


def ramp(height: int = 96, width: int = 128) -> torch.Tensor:
    """A disparity map that grows from 0 at the top to 1 at the bottom (a receding ground)."""
    return torch.linspace(0, 1, height).reshape(1, 1, height, 1).expand(1, 1, height, width).contiguous()


def run(model: D2F, image: torch.Tensor, **options):
    with torch.no_grad():
        return model(image, **options)


def test_depth_model_works_at_a_fixed_working_size(depth_model: D2F) -> None:
    assert depth_model.stage1_size(3000, 4000) == depth_model.stage1_size(750, 1000) == (192, 256)
    output = run(depth_model, torch.rand(1, 3, 75, 100))
    assert output.disparity.shape == (1, 1, 192, 256) and output.focus_disparity.shape == (1,)
    assert float(output.disparity.min()) >= 0 and float(output.disparity.max()) <= 1


def test_focus_point_puts_that_surface_in_focus(defocus_model: D2F) -> None:
    image = torch.rand(1, 3, 96, 128, generator=torch.Generator().manual_seed(1))
    output = run(defocus_model, image, disparity=ramp(), focus=(64.0, 24.0), f_number=1.4)
    defocus = output.defocus[0, 0]
    row = round(24 * defocus.shape[0] / 96)
    assert float(defocus[row].mean()) == 0.0  # the clicked row is sharp
    assert float(defocus[-1].mean()) > float(defocus[row + 40].mean()) > 0  # blur grows with the offset


def test_wider_aperture_blurs_more_and_input_aperture_subtracts(defocus_model: D2F) -> None:
    image = torch.rand(1, 3, 96, 128, generator=torch.Generator().manual_seed(2))
    diameters = [
        # strength 8 keeps each blur several pixels wide at this small working size, whatever LENS_BLUR is
        float(defocus_to_diameter(run(defocus_model, image, disparity=ramp(), focus=(0, 0), strength=8, **kw)
                                  .defocus, TINY_LITE.kernel_sizes).mean())
        for kw in ({"f_number": 1.4}, {"f_number": 4.0}, {"f_number": 4.0, "input_f_number": 8.0})
    ]
    assert diameters[0] > diameters[1] > diameters[2] > 1


def test_fusion_keeps_no_sharp_pixels_where_the_lens_blurs(defocus_model: D2F) -> None:
    output = run(defocus_model, torch.rand(1, 3, 96, 128), disparity=ramp(), focus=(64, 0), f_number=1.4)
    blurred = torch.nn.functional.interpolate(output.defocus, size=(96, 128), mode="bilinear") >= 1 / 3
    assert bool(blurred.any()) and float(output.fusion_mask[blurred].max()) == 0.0


def test_depth_options_need_depth(defocus_model: D2F) -> None:
    with pytest.raises(InputError, match=r"^focus: this model predicts defocus, not depth"):
        run(defocus_model, torch.rand(1, 3, 32, 32), focus=(1, 1))
    with pytest.raises(InputError, match=r"^f_number: "):
        run(defocus_model, torch.rand(1, 3, 32, 32), f_number=2.0)


def test_a_focus_point_outside_the_photo_is_refused(depth_model: D2F) -> None:
    image = torch.rand(1, 3, 75, 100)
    with pytest.raises(InputError, match=r"^focus: \(101, 10\) is outside the photo \(100x75 pixels"):
        run(depth_model, image, focus=(101, 10))
    with pytest.raises(InputError, match=r"^focus: \(5, 75\.5\) is outside the photo"):
        run(depth_model, image, focus=(5, 75.5))
    corner = run(depth_model, image, focus=(100, 75))  # the far edge itself is on the photo
    assert corner.focus_disparity.shape == (1,)


def test_bad_disparity_is_refused(defocus_model: D2F) -> None:
    with pytest.raises(InputError, match="disparity"):
        run(defocus_model, torch.rand(1, 3, 32, 32), disparity=torch.rand(2, 1, 32, 32))
    with pytest.raises(InputError, match="disparity"):
        run(defocus_model, torch.rand(1, 3, 32, 32), disparity=torch.full((1, 1, 8, 8), float("nan")))


@pytest.mark.parametrize(("sharpness", "expected_focus"), [(1.0, 0.0), (8.0, 1.0)])
def test_focus_sharpness_gathers_the_focus_on_the_peak_of_the_focus_map(sharpness, expected_focus) -> None:
    """A small near subject under the focus map's peak, a wide far background with weaker weight: a
    plain softmax's median lands on the background, a sharpened one on the subject."""
    torch.manual_seed(0)
    model = D2F(dataclasses.replace(DEPTH, focus_sharpness=sharpness)).eval()
    image = torch.rand(1, 3, 96, 128, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        network = model.network_outputs(image)
        prediction = torch.full_like(network.prediction, -4.0)
        height, width = prediction.shape[-2:]
        subject = (slice(None), slice(None), slice(0, height // 8), slice(0, width // 8))  # 1.6 %
        prediction[:, 0:1][subject] = 4.0  # near
        prediction[:, 1:2] = 0.0
        prediction[:, 1:2][subject] = 3.0  # the focus map's peak
        network = dataclasses.replace(network, prediction=prediction)
        output = model(image, network=network)
    assert float(output.focus_disparity[0]) == pytest.approx(expected_focus, abs=0.05)


def test_subject_depth_of_field_keeps_a_wavering_subject_sharp() -> None:
    """A subject the focus map outlines, its predicted depth wavering in stripes around the focus,
    before a far background: with a depth of field T each stripe's blur shrinks from c * offset to
    c * offset**2 / T (the 1 px floor aside); the background blurs as before."""
    torch.manual_seed(0)
    model = D2F(DEPTH).eval()
    image = torch.rand(1, 3, 96, 128, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        network = model.network_outputs(image)
        prediction = torch.full_like(network.prediction, -4.0)  # the background: far
        height, width = prediction.shape[-2:]
        rows, columns = slice(height // 4, 3 * height // 4), slice(width // 4, width // 2)
        stripes = torch.logit(torch.tensor([0.8, 0.95])).repeat(width // 8)[: width // 4]
        prediction[:, 0, rows, columns] = stripes  # the subject's depth wavers column by column
        prediction[:, 1] = 0.0
        prediction[:, 1, rows, columns] = 5.0  # the focus map's subject
        network = dataclasses.replace(network, prediction=prediction)
        options = {"network": network, "focus": (48.0, 48.0), "f_number": 1.4, "strength": 4.0}
        plain = defocus_to_diameter(model(image, **options).defocus, DEPTH.kernel_sizes)[0, 0]
        model.config = dataclasses.replace(DEPTH, subject_depth_of_field=0.3)
        kept = defocus_to_diameter(model(image, **options).defocus, DEPTH.kernel_sizes)[0, 0]
    coc_pixels = max(height, width) * LENS_BLUR / 1.4 * 4.0
    inner = (slice(height // 4 + 4, 3 * height // 4 - 4), slice(width // 4 + 4, width // 2 - 4))
    assert float(plain[inner].max()) > 5  # the plain lens blurs every other stripe by several pixels
    expected = (plain[inner] ** 2 / (coc_pixels * 0.3)).where(plain[inner] > 1, plain[inner]).clamp_min(1)
    torch.testing.assert_close(kept[inner], expected, rtol=0.02, atol=0.02)
    torch.testing.assert_close(kept[:, : width // 8], plain[:, : width // 8])  # the background


@pytest.mark.parametrize("value", [-0.1, float("inf"), True, "0.3"])
def test_a_bad_subject_depth_of_field_is_refused(value) -> None:
    with pytest.raises(ConfigError, match=r"^subject_depth_of_field: expected a finite number >= 0"):
        dataclasses.replace(DEPTH, subject_depth_of_field=value)


def test_a_given_depth_map_is_rendered_as_it_is_whatever_the_subject_depth_of_field() -> None:
    torch.manual_seed(0)
    model = D2F(DEPTH).eval()
    image = torch.rand(1, 3, 96, 128, generator=torch.Generator().manual_seed(4))
    options = {"disparity": ramp(), "focus": (64.0, 48.0), "f_number": 1.4}
    with torch.no_grad():
        network = model.network_outputs(image)
        network.prediction[:, 1] = 0.0
        network.prediction[:, 1, 40:150, 60:200] = 5.0  # a subject the focus map names, around the focus
        plain = model(image, network=network, **options).defocus
        model.config = dataclasses.replace(DEPTH, subject_depth_of_field=0.3)
        given = model(image, network=network, **options).defocus
    # the ramp's offsets around the focus are under T, so a predicted map would have shrunk them
    assert 0 < float(plain[..., 40:150, 60:200].max()) < 1
    torch.testing.assert_close(given, plain)
