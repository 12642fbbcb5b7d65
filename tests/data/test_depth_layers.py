import pytest
import torch

from d2f.data.depth_layers import depth_layers, fill_hidden, layer_grid, render_depth_bokeh
from d2f.errors import InputError
from d2f.render.scene import render_scene

RED, GREEN = (0.9, 0.1, 0.1), (0.1, 0.8, 0.2)


def _square_scene(near_coc: float, far_coc: float, size: int = 48, margin: int = 0):
    """A red square (near) on a green wall (far), with their CoCs."""
    image = torch.tensor(GREEN).view(3, 1, 1).repeat(1, size, size)
    coc = torch.full((1, size, size), far_coc)
    inside = (slice(None), slice(16, 32), slice(16, 32))
    image[inside] = torch.tensor(RED).view(3, 1, 1)
    coc[inside] = near_coc
    return image, coc


def test_layer_grid_holds_zero_and_respects_the_limits():
    for low, high in ((-140.0, 30.0), (-3.0, 2.0), (5.0, 90.0), (0.0, 0.0)):
        step, first, count = layer_grid(torch.tensor([low, high]), max_layers=12, min_step=4.0)
        assert step >= 4.0 and count <= 12
        assert first <= 0 <= first + count - 1 or low > 0  # 0 is a grid value whenever the range holds it
        assert first * step <= low + 1e-6 and high <= (first + count - 1) * step + 1e-6
    with pytest.raises(InputError, match="max_layers"):
        layer_grid(torch.zeros(1), max_layers=2)


def test_fill_hidden_keeps_known_pixels_and_extends_the_surroundings():
    image = torch.rand(3, 20, 30)
    image[:, :, 15:] = torch.tensor(GREEN).view(3, 1, 1)
    known = torch.zeros(2, 1, 20, 30, dtype=torch.bool)
    known[0, :, :, 15:] = True  # only the green half is known
    known[1] = True
    filled = fill_hidden(image, known)
    torch.testing.assert_close(filled[0, :, :, 15:], image[:, :, 15:])
    green = torch.tensor(GREEN).view(3, 1, 1).expand(3, 20, 15)
    torch.testing.assert_close(filled[0, :, :, :15], green)
    torch.testing.assert_close(filled[1], image)


def test_layers_rendered_sharp_give_back_the_photo():
    image = torch.rand(3, 24, 32)
    coc = torch.randn(1, 24, 32) * 30
    layers = depth_layers(image, coc, max_layers=8)
    assert len(layers) <= 8
    torch.testing.assert_close(render_scene(layers, sharp=True), image, atol=1e-5, rtol=0)


def test_sharp_foreground_hides_the_background_and_its_colour_stays_out_of_the_blur():
    # Focus on the red square; the wall behind it is blurred (diameter 12).
    image, coc = _square_scene(near_coc=0.0, far_coc=-12.0)
    bokeh = render_depth_bokeh(image, coc)
    torch.testing.assert_close(bokeh[:, 16:32, 16:32], image[:, 16:32, 16:32], atol=1e-5, rtol=0)
    # Right next to the square the blurred wall is filled with wall colour, not with the square's red.
    ring = torch.cat([bokeh[:, 12:16, 16:32].flatten(1), bokeh[:, 32:36, 16:32].flatten(1)], 1)
    torch.testing.assert_close(ring, torch.tensor(GREEN)[:, None].expand_as(ring), atol=0.01, rtol=0)


def test_blurred_foreground_reveals_the_background_without_dark_halo():
    # Focus on the wall; the red square in front of it is blurred (diameter 16).
    image, coc = _square_scene(near_coc=16.0, far_coc=0.0)
    bokeh = render_depth_bokeh(image, coc)
    # The square spreads over the wall, the mixture stays between the two colours (no black seeps in).
    low = torch.minimum(torch.tensor(RED), torch.tensor(GREEN)).view(3, 1, 1) - 1e-4
    high = torch.maximum(torch.tensor(RED), torch.tensor(GREEN)).view(3, 1, 1) + 1e-4
    assert bool(((bokeh >= low) & (bokeh <= high)).all())
    assert float(bokeh[0, 12, 24]) > GREEN[0] + 0.05  # red reaches over the wall at the square's edge
    torch.testing.assert_close(bokeh[:, :4, :4], image[:, :4, :4], atol=1e-5, rtol=0)  # far from it: sharp
