"""Highlights: clipped lights bloom into flat-topped discs whose brightness follows the gain."""

import itertools

import torch

from d2f.render import saturation_weight, weighted_layered_render

SIZES = (5, 9, 31)
TOP = 1 + 1 / 9  # defocus that selects the top level (diameter 31) alone


def light_on_dark(size: int = 64) -> torch.Tensor:
    """A dark grey photo with one small clipped light (3 x 3 pixels of white) in the middle."""
    image = torch.full((1, 3, size, size), 0.05, dtype=torch.float64)
    middle = size // 2
    image[..., middle - 1 : middle + 2, middle - 1 : middle + 2] = 1.0
    return image


def render(image: torch.Tensor, gain: float, threshold: float = 0.99) -> torch.Tensor:
    weight = saturation_weight(image, torch.ones_like(image[:, :1]), threshold=threshold, gain=gain)
    defocus = torch.full_like(image[:, :1], TOP)
    return weighted_layered_render(image, defocus, weight, kernel_sizes=SIZES)[0, 0]


def test_clipped_light_renders_a_flat_topped_disc_whose_contrast_rises_with_gain():
    image = light_on_dark()
    contrasts = []
    for gain in (1.0, 3.0, 10.0, 30.0):
        bokeh = render(image, gain)
        offsets = torch.arange(64) - 32
        inner_disc = offsets[:, None] ** 2 + offsets[None, :] ** 2 <= 10**2  # well within the radius 15
        inside = bokeh[inner_disc]
        ring = bokeh[32, [32 - 22, 32 + 22]]  # outside the disc, on the dark background
        # Flat top: every pixel of the inner disc sees the whole light.
        assert float(inside.max() - inside.min()) < 1e-3 * float(inside.mean())
        assert torch.allclose(ring, torch.full_like(ring, 0.05))
        contrasts.append(float(inside.mean()) / float(ring.mean()))
    assert all(later > earlier * 1.2 for earlier, later in itertools.pairwise(contrasts))
    # The edge is a disc of the kernel's diameter: lit to radius 15, dark beyond.
    bokeh = render(image, 30.0)
    assert float(bokeh[32, 32 + 14]) > 2 * 0.05 and abs(float(bokeh[32, 32 + 18]) - 0.05) < 1e-6


def test_photo_without_highlights_is_unchanged_by_the_gain():
    image = torch.rand(1, 3, 40, 40, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 0.9
    assert torch.equal(render(image, 1.0, threshold=0.95), render(image, 50.0, threshold=0.95))
    # A lower threshold makes the brightest pixels highlights, and then the gain matters.
    assert not torch.allclose(render(image, 1.0, threshold=0.5), render(image, 50.0, threshold=0.5))
