import numpy as np
import pytest
import torch

from d2f.data.transforms import (
    as_size,
    half_resolution_size,
    paired_random_crop,
    paired_random_flip,
    resize,
)
from d2f.errors import InputError


class TestHalfResolutionSize:
    @pytest.mark.parametrize(
        ("full", "half"),
        [
            ((1024, 1536), (512, 768)),  # EBB!'s size
            ((1000, 1500), (512, 768)),
            ((1023, 1537), (512, 768)),
            ((192, 320), (128, 128)),  # 1.5 and 2.5 multiples: halves round to the even multiple
            ((448, 576), (256, 256)),  # 3.5 -> 4, 4.5 -> 4
            ((10, 70), (64, 64)),  # never below 64
        ],
    )
    def test_rule(self, full, half):
        assert half_resolution_size(*full) == half

    def test_matches_numpy_rounding(self):
        for side in range(1, 4000, 7):
            expected = max(1, int(np.round(side / 2 / 64))) * 64
            assert half_resolution_size(side, side) == (expected, expected)

    @pytest.mark.parametrize("bad", [0, -5, 2.5, True])
    def test_bad_sides(self, bad):
        with pytest.raises(InputError, match="height"):
            half_resolution_size(bad, 100)


def test_as_size():
    assert as_size(7) == (7, 7)
    assert as_size((3, 4)) == (3, 4)
    with pytest.raises(InputError, match="crop_size"):
        as_size((3, 0), "crop_size")


def test_paired_crop_takes_the_same_window_from_every_image():
    image = torch.arange(2 * 20 * 30, dtype=torch.float32).view(2, 20, 30)
    shifted = image + 1000
    crops = paired_random_crop([image, shifted], (8, 12), np.random.default_rng(0))
    assert crops[0].shape == (2, 8, 12)
    torch.testing.assert_close(crops[1], crops[0] + 1000)
    # Deterministic for a given generator state, varied across states.
    again = paired_random_crop([image], (8, 12), np.random.default_rng(0))[0]
    torch.testing.assert_close(again, crops[0])
    windows = {float(paired_random_crop([image], (8, 12), np.random.default_rng(seed))[0][0, 0, 0])
               for seed in range(20)}
    assert len(windows) > 5


def test_paired_crop_larger_than_the_image():
    with pytest.raises(InputError, match="larger than the image"):
        paired_random_crop([torch.zeros(3, 10, 10)], 11, np.random.default_rng(0))


def test_paired_flip_flips_all_or_none():
    image = torch.rand(3, 5, 7)
    outcomes = set()
    for seed in range(10):
        first, second = paired_random_flip([image, image.clone()], np.random.default_rng(seed))
        torch.testing.assert_close(first, second)
        outcomes.add(bool(torch.equal(first, image.flip(-1))))
    assert outcomes == {True, False}


def test_resize_keeps_range_and_size():
    image = torch.rand(3, 64, 96)
    small = resize(image, (32, 48))
    assert small.shape == (3, 32, 48)
    assert float(small.min()) >= 0 and float(small.max()) <= 1
    assert float(small.mean()) == pytest.approx(float(image.mean()), abs=0.01)
    assert resize(image, (64, 96)) is image
    mask = (torch.rand(1, 64, 96) > 0.5).float()
    assert set(resize(mask, (20, 30), mode="nearest").unique().tolist()) <= {0.0, 1.0}
