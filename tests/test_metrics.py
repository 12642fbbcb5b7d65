import math

import numpy as np
import pytest
from scipy import ndimage
from skimage.metrics import structural_similarity

from d2f.errors import InputError
from d2f.metrics import laplacian_energy, psnr, ssim, structural_measures, subject_regions


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
