"""``d2f.render.lens``: thin-lens defocus from disparity, focus and aperture."""

from __future__ import annotations

import pytest
import torch

from d2f.errors import InputError
from d2f.render import defocus_to_diameter
from d2f.render.lens import (
    LENS_BLUR,
    METRIC_LENS_BLUR,
    check_focus_point,
    coc_fraction,
    disparity_at,
    thin_lens_defocus,
    weighted_median,
)


class TestThinLensDefocus:
    def test_blur_grows_linearly_with_the_disparity_offset(self, device, dtype) -> None:
        disparity = torch.linspace(0, 1, 11, device=device, dtype=dtype).reshape(1, 1, 1, 11)
        defocus = thin_lens_defocus(disparity, 0.5, coc_pixels=40.0)
        diameter = defocus_to_diameter(defocus)[0, 0, 0]
        expected = (40 * (torch.linspace(0, 1, 11, dtype=torch.float64) - 0.5).abs()).clamp_min(1)
        torch.testing.assert_close(diameter.double().cpu(), expected, rtol=1e-4, atol=1e-3)

    def test_focus_range_keeps_a_band_sharp(self, device) -> None:
        disparity = torch.tensor([0.3, 0.45, 0.5, 0.55, 0.8], device=device).reshape(1, 1, 1, 5)
        defocus = thin_lens_defocus(disparity, 0.5, coc_pixels=40.0, focus_range=0.1)
        assert defocus[0, 0, 0, 1:4].eq(0).all()
        assert (defocus[0, 0, 0, [0, 4]] > 0).all()

    def test_per_image_focus(self) -> None:
        disparity = torch.full((2, 1, 4, 4), 0.5)
        defocus = thin_lens_defocus(disparity, torch.tensor([0.5, 0.0]), coc_pixels=30.0)
        assert defocus[0].eq(0).all() and defocus[1].gt(0).all()

    def test_bad_focus_range_is_refused(self) -> None:
        with pytest.raises(InputError, match="focus_range"):
            thin_lens_defocus(torch.zeros(1, 1, 2, 2), 0.0, 10.0, focus_range=-1.0)


def test_coc_fraction_follows_one_over_n() -> None:
    assert coc_fraction(2.0) == pytest.approx(LENS_BLUR / 2)
    assert coc_fraction(2.0, 4.0) == pytest.approx(LENS_BLUR / 4)
    assert coc_fraction(2.0, strength=0.0) == 0.0
    assert coc_fraction(1.4) > coc_fraction(2.8) > coc_fraction(8.0)


def test_coc_fraction_follows_a_known_disparity_range(device) -> None:
    ranges = torch.tensor([0.25, 2.0], device=device)
    fraction = coc_fraction(2.0, 8.0, 0.5, disparity_range=ranges)
    expected = METRIC_LENS_BLUR * (1 / 2 - 1 / 8) * 0.5 * ranges
    torch.testing.assert_close(fraction, expected)
    assert float(fraction[1] / fraction[0]) == pytest.approx(8.0)  # a close-up blurs more


def test_coc_fraction_refuses_a_range_that_is_not_one_per_image() -> None:
    with pytest.raises(InputError, match=r"^disparity_range: expected a tensor of one value per image"):
        coc_fraction(2.0, disparity_range=torch.ones(1, 1))


def test_weighted_median_follows_the_weights() -> None:
    values = torch.tensor([0.1, 0.2, 0.9, 1.0]).reshape(1, 1, 2, 2)
    even, skewed = torch.tensor([1.0, 1, 1, 1]), torch.tensor([0.0, 0, 5, 1])
    assert float(weighted_median(values, even.reshape(1, 1, 2, 2))) == pytest.approx(0.2)
    assert float(weighted_median(values, skewed.reshape(1, 1, 2, 2))) == pytest.approx(0.9)


def test_disparity_at_takes_the_median_of_the_window() -> None:
    disparity = torch.zeros(1, 1, 9, 9)
    disparity[..., 3:6, 3:6] = 0.7
    disparity[..., 4, 4] = 0.1  # a thin outlier at the clicked pixel
    assert float(disparity_at(disparity, (4.0, 4.0), window=3)) == pytest.approx(0.7)
    assert float(disparity_at(disparity, (100.0, -5.0), window=3)) == 0.0  # clamped to the frame


class TestCheckFocusPoint:
    def test_points_on_the_photo_pass_its_far_edges_included(self) -> None:
        for point in ((0.0, 0.0), (59.5, 39.5), (60.0, 40.0)):
            check_focus_point(point, 60, 40)

    @pytest.mark.parametrize("point", [(60.5, 10.0), (10.0, 41.0), (1e9, 1e9)])
    def test_a_point_beyond_the_photo_is_one_line_naming_it(self, point) -> None:
        with pytest.raises(InputError, match=r"^focus: \(.*\) is outside the photo \(60x40 pixels"):
            check_focus_point(point, 60, 40)
