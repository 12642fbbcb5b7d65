import pytest
import torch

from d2f.errors import InputError
from d2f.render import SaturationWeight, saturation_weight


class TestSaturationWeight:
    def test_unsaturated_pixels_keep_their_weight(self, device, dtype):
        image = torch.rand(2, 3, 5, 6, device=device, dtype=dtype) * 0.98
        weight = torch.rand(2, 1, 5, 6, device=device, dtype=dtype)
        out = saturation_weight(image, weight)
        assert out.shape == (2, 3, 5, 6) and out.dtype == dtype
        torch.testing.assert_close(out, weight.expand_as(image))

    def test_any_saturated_channel_boosts_all_channels(self):
        image = torch.full((1, 3, 1, 3), 0.5)
        image[0, 1, 0, 1] = 0.995  # one channel of the middle pixel
        image[0, :, 0, 2] = 0.989  # just below the threshold
        weight = torch.full((1, 1, 1, 3), 0.25)
        out = saturation_weight(image, weight)
        torch.testing.assert_close(out[0, :, 0, 1], 3 * image[0, :, 0, 1] ** 5)
        torch.testing.assert_close(out[0, :, 0, [0, 2]], torch.full((3, 2), 0.25))

    def test_custom_constants(self):
        image = torch.full((1, 3, 2, 2), 0.9)
        out = saturation_weight(image, torch.zeros(1, 1, 2, 2), threshold=0.8, gain=2.0, power=1.0)
        torch.testing.assert_close(out, torch.full((1, 3, 2, 2), 1.8))

    def test_gradcheck(self):
        image = (torch.rand(1, 3, 4, 4, dtype=torch.float64) * 0.5 + 0.5).requires_grad_(True)
        weight = torch.rand(1, 1, 4, 4, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda i, w: saturation_weight(i, w, threshold=0.75), (image, weight))

    def test_module_equals_function(self):
        image, weight = torch.rand(1, 3, 6, 6), torch.rand(1, 3, 6, 6)
        torch.testing.assert_close(
            SaturationWeight(threshold=0.5)(image, weight), saturation_weight(image, weight, 0.5)
        )

    @pytest.mark.parametrize(
        ("image", "weight", "match"),
        [
            (torch.rand(1, 4, 2, 2), torch.rand(1, 1, 2, 2), "image: expected 3 channels"),
            (torch.rand(1, 3, 2, 2), torch.rand(1, 2, 2, 2), "weight: expected 1 or 3 channels"),
            (torch.rand(1, 3, 2, 2), torch.rand(1, 1, 3, 2), "weight: expected batch and spatial size"),
            (torch.rand(1, 3, 2, 2), torch.full((1, 1, 2, 2), float("nan")), "weight: expected finite"),
            (torch.rand(3, 2, 2), torch.rand(1, 1, 2, 2), r"image: expected shape \(N, C, H, W\)"),
        ],
    )
    def test_bad_input(self, image, weight, match):
        with pytest.raises(InputError, match=match):
            saturation_weight(image, weight)
