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
    subject_weight,
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

    def test_the_subject_keeps_offsets_under_its_depth_of_field_as_their_square(self, device, dtype) -> None:
        offsets = torch.tensor([0.0, 0.1, 0.2, 0.3, 0.5], dtype=torch.float64)
        disparity = (0.4 + offsets).to(device, dtype).reshape(1, 1, 1, 5)
        on_subject = torch.ones_like(disparity)
        defocus = thin_lens_defocus(
            disparity, 0.4, coc_pixels=100.0, subject=on_subject, subject_depth_of_field=0.3
        )
        diameter = defocus_to_diameter(defocus)[0, 0, 0].double().cpu()
        shrunk = torch.where(offsets < 0.3, offsets**2 / 0.3, offsets)
        torch.testing.assert_close(diameter, (100 * shrunk).clamp_min(1), rtol=1e-3, atol=1e-3)

    def test_half_a_subject_shrinks_an_offset_half_as_much(self) -> None:
        disparity = torch.tensor([0.5, 0.6]).reshape(1, 1, 1, 2)
        subject = torch.full_like(disparity, 0.5)
        defocus = thin_lens_defocus(
            disparity, 0.5, coc_pixels=100.0, subject=subject, subject_depth_of_field=0.2
        )
        # 0.1 * (1 - 0.5 * (1 - 0.1 / 0.2)) = 0.075 of offset: 7.5 px
        assert float(defocus_to_diameter(defocus)[0, 0, 0, 1]) == pytest.approx(7.5, rel=1e-3)

    def test_off_the_subject_or_far_from_the_focus_the_thin_lens_is_unchanged(self, device) -> None:
        disparity = torch.rand(2, 1, 6, 8, generator=torch.Generator().manual_seed(0)).to(device)
        subject = torch.zeros_like(disparity)
        subject[1] = 1.0  # the second image is all subject, but focused far from every pixel
        plain = thin_lens_defocus(disparity, torch.tensor([0.5, 2.0]), coc_pixels=60.0)
        weighted = thin_lens_defocus(
            disparity, torch.tensor([0.5, 2.0]), coc_pixels=60.0, subject=subject, subject_depth_of_field=0.3
        )
        torch.testing.assert_close(weighted, plain)

    def test_a_subject_of_another_shape_or_a_bad_depth_of_field_is_refused(self) -> None:
        shape_and_device = r"^subject: expected the shape of disparity \(1, 1, 2, 2\) on cpu"
        with pytest.raises(InputError, match=shape_and_device):
            thin_lens_defocus(
                torch.zeros(1, 1, 2, 2), 0.0, 10.0, subject=torch.ones(1, 1, 2, 3), subject_depth_of_field=0.3
            )
        with pytest.raises(InputError, match=r"^subject_depth_of_field: expected a finite number >= 0"):
            thin_lens_defocus(torch.zeros(1, 1, 2, 2), 0.0, 10.0, subject_depth_of_field=float("nan"))


class TestSubjectWeight:
    def test_the_peak_of_the_focus_map_is_the_subject_and_the_rest_is_not(self, device, dtype) -> None:
        logits = torch.zeros(1, 1, 20, 20, device=device, dtype=dtype)
        logits[..., 5:10, 5:10] = 6.0
        weight = subject_weight(logits)
        assert weight.shape == logits.shape and weight.dtype == dtype
        assert weight[..., 5:10, 5:10].eq(1).all()
        assert weight.sum() == 25

    def test_only_differences_of_logits_count(self) -> None:
        logits = torch.randn(2, 1, 16, 16, generator=torch.Generator().manual_seed(1))
        weight = subject_weight(logits)
        assert 0 < float(weight.mean()) < 1
        torch.testing.assert_close(subject_weight(3 * logits - 7), weight, atol=1e-5, rtol=0)

    def test_the_smoothstep_between_the_median_and_the_99th_percentile(self, dtype) -> None:
        # 101 values: median 0, 99th percentile 1 (the 100th of 101); 0.3 -> 0, 0.5 -> 0.5, 0.7 -> 1
        logits = torch.cat([torch.zeros(51), torch.tensor([0.3, 0.5, 0.7]), torch.ones(47)])
        weight = subject_weight(logits.to(dtype).reshape(1, 1, 1, -1))[0, 0, 0]
        assert weight[:51].eq(0).all() and weight[-47:].eq(1).all()
        torch.testing.assert_close(weight[51:54].double(), torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64))

    def test_a_flat_map_names_no_subject(self) -> None:
        assert subject_weight(torch.full((1, 1, 8, 8), 2.5)).eq(0).all()

    def test_wrong_shape_is_refused(self) -> None:
        with pytest.raises(InputError, match="focus_logits"):
            subject_weight(torch.zeros(1, 2, 4, 4))


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
