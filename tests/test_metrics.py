import math

import numpy as np
import pytest
from scipy import ndimage
from skimage.metrics import structural_similarity

from d2f.errors import InputError
from d2f.metrics import (
    blur_map_agreement,
    laplacian_energy,
    psnr,
    rank_correlation,
    ssim,
    structural_measures,
    subject_regions,
    textured_tiles,
    tile_sharpness,
)


def textured(height=160, width=200, seed=0):
    """A detailed random image: lots of Laplacian energy everywhere."""
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def blurred(image, sigma=3.0):
    return np.round(ndimage.gaussian_filter(image.astype(float), (sigma, sigma, 0))).astype(np.uint8)


def centre_mask(height=160, width=200, half=50):
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[height // 2 - half : height // 2 + half, width // 2 - half : width // 2 + half] = 255
    return mask


def test_psnr_of_a_constant_error_of_one_level():
    image = textured().clip(0, 254)
    assert psnr(image + 1, image) == pytest.approx(10 * math.log10(255**2), abs=1e-9)
    assert psnr(image, image) == math.inf


def test_psnr_counts_all_three_channels():
    image = textured().clip(0, 250)
    shifted = image.copy()
    shifted[..., 0] += 3  # squared error 9 in one channel of three: MSE 3
    assert psnr(shifted, image) == pytest.approx(10 * math.log10(255**2 / 3), abs=1e-9)


def test_ssim_is_scikit_images_rgb_ssim_with_a_7x7_window():
    image, other = textured(seed=1), blurred(textured(seed=1), 1.0)
    expected = structural_similarity(image, other, channel_axis=2, data_range=255, win_size=7)
    assert ssim(other, image) == pytest.approx(expected, abs=1e-12)
    assert ssim(image, image) == pytest.approx(1.0)
    assert ssim(other, image) < 0.9


@pytest.mark.parametrize(
    ("measure", "output", "target", "message"),
    [
        (psnr, np.zeros((8, 8, 3), np.uint8), np.zeros((8, 9, 3), np.uint8), "differs"),
        (psnr, np.zeros((8, 8, 3), np.float32), np.zeros((8, 8, 3), np.uint8), "uint8"),
        (psnr, np.zeros((8, 8), np.uint8), np.zeros((8, 8), np.uint8), r"\(H, W, 3\)"),
        (ssim, np.zeros((5, 5, 3), np.uint8), np.zeros((5, 5, 3), np.uint8), "7x7"),
    ],
)
def test_bad_images_are_input_errors(measure, output, target, message):
    with pytest.raises(InputError, match=message):
        measure(output, target)


def test_regions_are_eroded_by_15_and_40_pixels():
    mask = centre_mask(half=50)  # a 100x100 square
    subject, background = subject_regions(mask)
    rows = np.flatnonzero(subject.any(axis=1))
    assert (rows.min(), rows.max()) == (30 + 15, 129 - 15)
    assert not background[:, 100].any()  # 160 rows: the band 40 px around the square covers the column
    assert background[:, 0].any() and not background[80, 50 - 40 : 150 + 40].any()
    assert not (subject & background).any()


def test_sharp_output_keeps_subject_sharpness_one_and_blur_loses_it():
    image, mask = textured(), centre_mask()
    target = blurred(image)
    assert structural_measures(image, image, target, mask).subject_sharpness == pytest.approx(1.0)
    assert structural_measures(blurred(image), image, target, mask).subject_sharpness < 0.1


def test_background_blur_match_is_one_when_the_background_is_blurred_like_the_ground_truth():
    image, mask = textured(), centre_mask(half=20)
    target = blurred(image)
    assert structural_measures(target, image, target, mask).background_blur_match == pytest.approx(1.0)
    # A sharp background is far sharper than the ground truth; a stronger blur is smoother than it.
    assert structural_measures(image, image, target, mask).background_blur_match > 10
    assert structural_measures(blurred(image, 6.0), image, target, mask).background_blur_match < 0.5


def test_a_subject_thinner_than_the_erosion_gives_nan():
    image = textured()
    mask = centre_mask(half=10)
    measures = structural_measures(image, image, image, mask)
    assert math.isnan(measures.subject_sharpness)
    assert measures.background_blur_match == pytest.approx(1.0)
    assert math.isnan(laplacian_energy(image, np.zeros(image.shape[:2], bool)))


def test_a_subject_filling_the_image_is_not_eroded_from_the_border():
    subject, background = subject_regions(np.full((50, 60), 255, np.uint8))
    assert subject.all() and not background.any()
    subject, background = subject_regions(np.zeros((50, 60), np.uint8))
    assert background.all() and not subject.any()


def test_a_mask_of_another_size_is_an_input_error():
    image = textured()
    with pytest.raises(InputError, match="subject_mask"):
        structural_measures(image, image, image, centre_mask(100, 100, 20))


def band_blurred(image, sigmas):
    """``image`` cut into vertical 32 px bands, band i blurred with a Gaussian of ``sigmas[i]`` px."""
    result = image.copy()
    for index, sigma in enumerate(sigmas):
        band = slice(32 * index, 32 * (index + 1))
        result[:, band] = blurred(image, sigma)[:, band] if sigma > 0 else image[:, band]
    return result


def photo_like(height=192, width=256, seed=0):
    """Detail at several scales that change across the frame, unlike a scene's blur."""
    rng = np.random.default_rng(seed)
    image = np.zeros((height, width, 3))
    for sigma in (0.0, 1.0, 3.0):
        layer = ndimage.gaussian_filter(rng.normal(size=(height, width, 3)), (sigma, sigma, 0))
        weight = ndimage.gaussian_filter(rng.random((height, width)), 24)[..., None]
        image += weight * layer / layer.std()
    return np.clip(128 + 40 * image, 0, 255).astype(np.uint8)


LENS_SIGMAS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)  # one per 32 px band of a 256 px wide frame


def test_tile_sharpness_leaves_out_partial_tiles_and_needs_one_tile():
    image = photo_like(100, 140)
    sharpness = tile_sharpness(image)
    assert sharpness.shape == (3, 4) and (sharpness > 0).all()
    assert tile_sharpness(image[:96, :128]) == pytest.approx(sharpness, rel=0.05)  # borders differ a bit
    assert (tile_sharpness(blurred(image, 2.0)) < sharpness / 2).all()
    with pytest.raises(InputError, match="at least 32x32"):
        tile_sharpness(image[:31])


def test_textured_tiles_are_those_above_the_25th_percentile():
    sharpness = np.arange(1.0, 9.0).reshape(2, 4)
    assert textured_tiles(sharpness).sum() == 6 and not textured_tiles(sharpness)[0, :2].any()


def test_rank_correlation_is_spearmans_with_average_ranks_for_ties():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(1)
    values, reference = rng.integers(0, 5, 40).astype(float), rng.normal(size=40)
    reference[:10] = reference[0]
    assert rank_correlation(values, reference) == pytest.approx(spearmanr(values, reference)[0], abs=1e-12)
    assert rank_correlation(reference, reference) == pytest.approx(1.0)
    assert rank_correlation(-reference, reference) == pytest.approx(-1.0)
    assert rank_correlation(np.zeros(40), reference) == 0.0  # nothing changes: follows no order
    assert math.isnan(rank_correlation(values, np.ones(40)))  # no order to follow
    assert math.isnan(rank_correlation([1.0], [2.0]))
    with pytest.raises(InputError, match="values"):
        rank_correlation(values[:3], reference)


def test_blur_map_agreement_is_one_for_the_target_and_near_one_for_a_blur_that_follows_it():
    image = photo_like()
    target = band_blurred(image, LENS_SIGMAS)
    assert blur_map_agreement(target, image, target) == pytest.approx(1.0)
    # Another blur of the same map: weaker, and a box instead of a Gaussian.
    weaker = band_blurred(image, [0.7 * sigma for sigma in LENS_SIGMAS])
    assert blur_map_agreement(weaker, image, target) > 0.9
    box = image.copy()
    for index, sigma in enumerate(LENS_SIGMAS):
        band = slice(32 * index, 32 * (index + 1))
        size = 1 + 2 * round(1.7 * sigma)
        box[:, band] = ndimage.uniform_filter(image, (size, size, 1))[:, band]
    assert blur_map_agreement(box, image, target) > 0.9


def test_blur_map_agreement_is_low_for_a_uniform_blur_and_negative_for_the_opposite_order():
    image = photo_like()
    target = band_blurred(image, LENS_SIGMAS)
    for sigma in (1.0, 3.0, 6.0):
        assert abs(blur_map_agreement(blurred(image, sigma), image, target)) < 0.3
    assert blur_map_agreement(image, image, target) == 0.0  # the input itself: nothing blurred
    assert blur_map_agreement(band_blurred(image, LENS_SIGMAS[::-1]), image, target) < -0.9
    assert math.isnan(blur_map_agreement(target, image, image))  # a target without blur: no order


def test_blur_map_agreement_ignores_a_change_of_exposure_of_the_target():
    image = photo_like()
    target = band_blurred(image, LENS_SIGMAS)
    darker = np.round(target * 0.8).astype(np.uint8)
    assert blur_map_agreement(target, image, darker) > 0.95
