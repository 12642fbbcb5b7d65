"""``d2f.render.checks``: argument checks that raise one-line ``InputError``s."""

from __future__ import annotations

import math

import pytest
import torch

from d2f.errors import InputError
from d2f.render.checks import check_per_image


class TestCheckPerImage:
    @pytest.mark.parametrize("shape", [(1,), (3,), ()])
    def test_one_value_or_one_per_image_passes(self, device, dtype, shape) -> None:
        check_per_image(torch.full(shape, 0.5, device=device, dtype=dtype), "scale", 3)

    @pytest.mark.parametrize(
        ("value", "problem"),
        [
            (torch.ones(2), r"got torch.float32 of shape \(2,\)"),
            (torch.ones(3, 1), r"got torch.float32 of shape \(3, 1\)"),
            (torch.ones(3, dtype=torch.int64), r"got torch.int64 of shape \(3,\)"),
        ],
    )
    def test_wrong_count_shape_or_dtype_names_what_came(self, value, problem) -> None:
        with pytest.raises(InputError, match=rf"^scale: expected a number or one floating-point value per "
                           rf"image \(3,\), {problem}$"):
            check_per_image(value, "scale", 3)

    @pytest.mark.parametrize(
        ("bad", "problem"), [(math.nan, "expected finite values"), (-0.25, "expected non-negative values")]
    )
    def test_values_are_finite_and_not_negative(self, device, dtype, bad, problem) -> None:
        value = torch.tensor([0.5, bad, 1.0], device=device, dtype=dtype)
        with pytest.raises(InputError, match=f"^scale: {problem}"):
            check_per_image(value, "scale", 3)
