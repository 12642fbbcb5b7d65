from pathlib import Path

import numpy as np
import pytest

from d2f.errors import InputError
from d2f.real_lens.hints import FROM_MASK, FROM_TILES, deepest_point, focus_point, pair_hints
from d2f.real_lens.pairs import LensPair, LoadedPair


def test_the_focus_point_is_the_mask_pixel_farthest_from_its_border():
    mask = np.zeros((60, 80), bool)
    mask[10:31, 45:66] = True  # a 21x21 box: its centre is 11 px from the outside
    point, source = focus_point(mask, np.ones((1, 2)), np.ones((1, 2)))
    assert point == (55.0, 20.0) and source == FROM_MASK
    assert deepest_point(mask) == point  # what the synthetic measures focus on, too


def test_a_deepest_point_needs_a_non_empty_two_dimensional_mask():
    with pytest.raises(InputError, match=r"^mask: expected a non-empty \(H, W\) mask, got shape \(4, 4\)"):
        deepest_point(np.zeros((4, 4), bool))
    with pytest.raises(InputError, match=r"^mask: .*got shape \(2, 4, 4\)"):
        deepest_point(np.ones((2, 4, 4), bool))


def test_the_frame_edge_is_a_border_of_the_mask():
    mask = np.zeros((60, 80), bool)
    mask[:, :30] = True  # a band along the left edge: its middle column, not the edge
    (x, y), _ = focus_point(mask, np.ones((1, 2)), np.ones((1, 2)))
    assert x == 14.0 and 14 <= y <= 45


def test_without_a_mask_the_centre_of_the_textured_tile_the_lens_kept_sharpest():
    input_sharpness = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])  # the first two are untextured
    target_sharpness = np.array([[1.0, 2.0, 1.9], [0.2, 0.4, 0.1]])
    point, source = focus_point(None, input_sharpness, target_sharpness)
    assert point == (80.0, 16.0) and source == FROM_TILES
    empty = np.zeros((60, 80), bool)
    assert focus_point(empty, input_sharpness, target_sharpness) == (point, FROM_TILES)


def loaded(f_original=16.0, f_bokeh=2.8):
    pair = LensPair(2, "a", "s", Path("a.png"), Path("b.png"), f_original, f_bokeh)
    return LoadedPair(pair, np.zeros((64, 96, 3), np.uint8), np.zeros((64, 96, 3), np.uint8))


def test_hints_as_render_options_only_where_asked_and_known():
    sharpness = np.ones((2, 3))
    kept = np.array([[1.0, 1.0, 1.0], [1.0, 0.5, 0.5]])
    assert pair_hints(loaded(), sharpness, kept, focus=False, aperture=False) == ({}, None)
    hints, source = pair_hints(loaded(), sharpness, kept, focus=True, aperture=True)
    assert hints == {"focus": (16.0, 16.0), "f_number": 2.8, "input_f_number": 16.0} and source == FROM_TILES
    assert pair_hints(loaded(None, 4.0), sharpness, kept, focus=False, aperture=True)[0] == {"f_number": 4.0}
    assert pair_hints(loaded(None, None), sharpness, kept, focus=False, aperture=True)[0] == {}
