"""The fixed part of radiance virtualisation: near-saturated pixels dominate their blur."""

from __future__ import annotations

import torch

from d2f.render.checks import check_finite, check_same_size, check_tensor, compute_dtype


def saturation_weight(
    image: torch.Tensor,
    weight: torch.Tensor,
    threshold: float = 0.99,
    gain: float = 3.0,
    power: float = 5.0,
) -> torch.Tensor:
    """Replace the radiance weight of near-saturated pixels by ``gain * image ** power``.

    A clipped highlight in an 8-bit photo hides how bright the light really was; boosting its weight
    makes it dominate the pixels it is blurred with, so it renders as a crisp bokeh disc. A pixel counts
    as near-saturated when ANY channel is >= ``threshold``; its weight becomes per-channel.

    Args:
        image: (N, 3, H, W) in [0, 1].
        weight: (N, 1, H, W) or (N, 3, H, W), non-negative (the radiance network's output).
        threshold, gain, power: the rule's constants (the reference's defaults).

    Returns:
        (N, 3, H, W) radiance weight.
    """
    check_tensor(image, "image", channels=(3,))
    check_tensor(weight, "weight", channels=(1, 3))
    check_same_size(image, weight, "image", "weight")
    check_finite(weight, "weight")
    dtype = compute_dtype(image, weight)
    image, weight = image.to(dtype), weight.to(dtype)
    saturated = (image >= threshold).any(dim=1, keepdim=True)
    return torch.where(saturated, gain * image**power, weight.expand_as(image))
