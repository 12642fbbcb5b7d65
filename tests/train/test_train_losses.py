import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from d2f.errors import InputError
from d2f.train.losses import (
    defocus_loss,
    defocus_range_loss,
    gradient_loss,
    image_gradients,
    l1_loss,
    mask_loss,
    masked_l1_loss,
    ssim,
)


def images(seed=0, shape=(2, 3, 32, 40)):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=generator, dtype=torch.float64)


def test_l1():
    prediction = torch.zeros(1, 3, 4, 4)
    assert l1_loss(prediction, prediction + 0.25) == pytest.approx(0.25)


def test_ssim_matches_scikit_image_gaussian_ssim():
    first, second = images(0), images(1)
    second = 0.5 * first + 0.5 * second  # correlated, so SSIM is far from 0
    expected = np.mean(
        [
            structural_similarity(
                first[index].permute(1, 2, 0).numpy(),
                second[index].permute(1, 2, 0).numpy(),
                channel_axis=2,
                data_range=1.0,
                gaussian_weights=True,
                sigma=1.5,
                use_sample_covariance=False,
            )
            for index in range(first.shape[0])
        ]
    )
    assert float(ssim(first, second)) == pytest.approx(expected, abs=1e-6)
    assert float(ssim(first, first)) == pytest.approx(1.0)


def test_ssim_is_differentiable_and_rejects_small_images():
    first, second = images(0).requires_grad_(), images(1)
    (1 - ssim(first, second)).backward()
    assert first.grad is not None and torch.isfinite(first.grad).all() and first.grad.abs().sum() > 0
    with pytest.raises(InputError, match="at least 11x11"):
        ssim(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))


def test_gradient_loss_ignores_offsets_and_sees_seams():
    image = images(2)
    gradient_x, gradient_y = image_gradients(image)
    assert gradient_x.shape == (2, 3, 32, 39) and gradient_y.shape == (2, 3, 31, 40)
    assert float(gradient_loss(image + 0.1, image)) == pytest.approx(0.0, abs=1e-12)
    seamed = image.clone()
    seamed[..., :, 20:] += 0.1  # a step at column 20: one column of x-gradients differs by 0.1
    assert float(gradient_loss(seamed, image)) == pytest.approx(0.1 / 39, rel=1e-6)


def test_defocus_loss_resizes_the_ground_truth_to_the_prediction():
    truth = torch.full((2, 1, 64, 80), 0.5)
    assert float(defocus_loss(torch.full((2, 1, 32, 40), 0.25), truth)) == pytest.approx(0.25)
    with pytest.raises(InputError, match="batch size"):
        defocus_loss(torch.zeros(1, 1, 8, 8), torch.zeros(2, 1, 8, 8))


def test_defocus_range_loss_is_the_distance_outside_zero_to_one():
    defocus = torch.tensor([-0.5, 0.0, 0.5, 1.0, 1.25]).view(1, 1, 1, 5)
    assert float(defocus_range_loss(defocus)) == pytest.approx((0.5 + 0.25) / 5)


def test_mask_loss_and_shape_checks():
    mask = torch.full((1, 1, 4, 4), 0.75)
    assert float(mask_loss(mask, torch.ones(1, 1, 4, 4))) == pytest.approx(0.25)
    with pytest.raises(InputError, match="target"):
        l1_loss(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 5))
    with pytest.raises(InputError, match="channels"):
        l1_loss(torch.zeros(1, 3, 4, 4), torch.zeros(1, 1, 4, 4))


class TestMaskedL1Loss:
    def test_with_a_full_mask_it_is_the_l1(self):
        first, second = images(0), images(1)
        full = torch.ones(2, 1, 32, 40, dtype=torch.float64)
        assert float(masked_l1_loss(first, second, full)) == pytest.approx(float(l1_loss(first, second)))

    def test_only_masked_pixels_count_and_their_share_does_not_matter(self):
        prediction, target = torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8)
        target[..., :2, :] = 0.5  # in the mask
        target[..., 2:, :] = 9.0  # outside it
        mask = torch.zeros(1, 1, 8, 8)
        mask[..., :2, :] = 1
        assert float(masked_l1_loss(prediction, target, mask)) == pytest.approx(0.5)
        mask[..., :1, :] = 0  # a smaller masked region with the same error: the same mean
        assert float(masked_l1_loss(prediction, target, mask)) == pytest.approx(0.5)

    def test_soft_masks_weigh_pixels_and_are_resized_to_the_prediction(self):
        prediction, target = torch.zeros(1, 1, 1, 2), torch.tensor([[[[1.0, 3.0]]]])
        weights = torch.tensor([[[[0.75, 0.25]]]])
        assert float(masked_l1_loss(prediction, target, weights)) == pytest.approx(1.5)
        large_mask = torch.ones(2, 1, 64, 80)
        assert float(masked_l1_loss(images(0), images(1), large_mask.double())) == pytest.approx(
            float(l1_loss(images(0), images(1)))
        )

    def test_an_empty_mask_gives_zero_and_a_finite_gradient(self):
        prediction = images(0).requires_grad_()
        loss = masked_l1_loss(prediction, images(1), torch.zeros(2, 1, 32, 40, dtype=torch.float64))
        loss.backward()
        assert float(loss) == 0 and torch.isfinite(prediction.grad).all()

    def test_gradcheck(self):
        prediction = images(0, (1, 2, 5, 6)).requires_grad_()
        target = images(1, (1, 2, 5, 6))
        mask = images(2, (1, 1, 5, 6))
        assert torch.autograd.gradcheck(lambda x: masked_l1_loss(x, target, mask), (prediction,))

    def test_bad_masks(self):
        prediction = torch.zeros(2, 3, 4, 4)
        with pytest.raises(InputError, match="mask"):
            masked_l1_loss(prediction, prediction, torch.ones(2, 3, 4, 4))
        with pytest.raises(InputError, match="mask: expected batch size 2"):
            masked_l1_loss(prediction, prediction, torch.ones(1, 1, 4, 4))
