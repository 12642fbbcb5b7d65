"""The blur backends level by level: every path yields the same blurred stacks."""

import pytest
import torch

from d2f.render import KERNEL_SIZES, layer_masks
from d2f.render.backends import (
    blur_levels_batched,
    blur_levels_cropped,
    blur_levels_direct,
    next_fast_size,
    padding_mode,
)


def full_frames(levels, shape):
    """Expand each yielded level to a whole frame (zeros where the backend skipped)."""
    frames = []
    for level in levels:
        frame = torch.zeros(shape, dtype=torch.float64)
        if level is not None:
            height, width = level.stack.shape[-2:]
            frame[..., level.top : level.top + height, level.left : level.left + width] = level.stack
        frames.append(frame)
    return frames


@pytest.mark.parametrize("direct_max_size", [0, 11, 100])
@pytest.mark.parametrize("chunk_bytes", [1, 10**9])
@pytest.mark.parametrize("track_gradients", [False, True])
def test_batched_equals_direct(chunk_bytes, direct_max_size, track_gradients):
    values = torch.rand(2, 3, 40, 52, dtype=torch.float64, requires_grad=track_gradients)
    masks = layer_masks(torch.rand(2, 1, 40, 52, dtype=torch.float64))
    shape = (2, 4, 40, 52)
    expected = full_frames(blur_levels_direct(values, masks, KERNEL_SIZES), shape)
    levels = blur_levels_batched(
        values, masks, KERNEL_SIZES, chunk_bytes=chunk_bytes, direct_max_size=direct_max_size
    )
    batched = full_frames(levels, shape)
    assert len(batched) == len(expected) == 14
    for ours, reference in zip(batched, expected, strict=True):
        torch.testing.assert_close(ours, reference, atol=1e-10, rtol=0)


def test_cropped_skips_empty_levels_and_crops_to_the_mask():
    values = torch.rand(1, 3, 100, 72, dtype=torch.float64)
    defocus = torch.zeros(1, 1, 100, 72, dtype=torch.float64)
    defocus[..., 10:30, 20:40] = 1.0  # only the top levels are used, in a small box
    masks = layer_masks(defocus)
    levels = list(blur_levels_cropped(values, masks, KERNEL_SIZES))
    used = [level for level in levels if level is not None]
    assert 0 < len(used) < 14
    top_level = levels[0]
    assert top_level.top == 0 and top_level.stack.shape[-2] == 30 + 34  # box grown by the radius 34
    expected = full_frames(blur_levels_direct(values, masks, KERNEL_SIZES), (1, 4, 100, 72))
    for ours, reference in zip(full_frames(levels, (1, 4, 100, 72)), expected, strict=True):
        torch.testing.assert_close(ours, reference, atol=1e-10, rtol=0)


def test_next_fast_size():
    assert next_fast_size(580) == 600
    assert next_fast_size(7) == 8
    assert next_fast_size(15, even=True) == 16
    for size in range(1, 300):
        fast = next_fast_size(size, even=True)
        assert fast >= size and fast % 2 == 0


def test_padding_mode():
    assert padding_mode(35, 40, 69) == "reflect"
    assert padding_mode(34, 400, 69) == "replicate"


def test_batched_gradients_equal_direct():
    values = torch.rand(1, 3, 36, 40, dtype=torch.float64, requires_grad=True)
    defocus = torch.rand(1, 1, 36, 40, dtype=torch.float64, requires_grad=True)
    weights = torch.rand(14, 1, 4, 36, 40, dtype=torch.float64)  # a different projection per level

    def gradients(backend):
        levels = backend(values, layer_masks(defocus), KERNEL_SIZES)
        total = sum((level.stack * weight).sum() for level, weight in zip(levels, weights, strict=True))
        return torch.autograd.grad(total, (values, defocus))

    expected = gradients(blur_levels_direct)
    for ours, reference in zip(gradients(blur_levels_batched), expected, strict=True):
        torch.testing.assert_close(ours, reference, atol=1e-10, rtol=0)


def test_batched_zeroes_the_transform_margins(monkeypatch):
    """Uninitialised memory in the transform buffer (here NaN) never reaches the blurred levels."""
    shape = (1, 4, 41, 53)  # padded by 34: 109 x 121, transformed at 120 x 128 (margins on both sides)
    values = torch.rand(1, 3, 41, 53, dtype=torch.float64)
    masks = layer_masks(torch.rand(1, 1, 41, 53, dtype=torch.float64))
    expected = full_frames(blur_levels_direct(values, masks, KERNEL_SIZES), shape)
    original_new_empty = torch.Tensor.new_empty

    def new_empty_of_nan(self, *size, **kwargs):
        return original_new_empty(self, *size, **kwargs).fill_(float("nan"))

    monkeypatch.setattr(torch.Tensor, "new_empty", new_empty_of_nan)
    batched = full_frames(blur_levels_batched(values, masks, KERNEL_SIZES), shape)
    for ours, reference in zip(batched, expected, strict=True):
        torch.testing.assert_close(ours, reference, atol=1e-10, rtol=0)
