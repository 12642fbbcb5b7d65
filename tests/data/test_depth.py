from pathlib import Path

import numpy as np
import pytest
import torch

from d2f.data.depth import (
    central_focus_disparity,
    disparity_to_coc,
    disparity_to_defocus,
    fill_unknown,
    known_disparity,
)
from d2f.errors import DataError, InputError
from d2f.render import diameter_to_defocus

# Middlebury's "aloe" (ground truth disparity, 0 = unknown) as Debian's opencv-doc ships it.
ALOE = Path("/usr/share/doc/opencv-doc/examples/data")


def test_fill_unknown_takes_the_nearest_known_value():
    disparity = np.array(
        [
            [np.nan, 3.0, 8.0, 8.0],
            [3.0, np.inf, 0.0, 8.0],
            [3.0, 3.0, 8.0, -1.0],
        ],
        dtype=np.float32,
    )
    filled = fill_unknown(disparity)
    assert filled.shape == (1, 3, 4)
    torch.testing.assert_close(filled, torch.tensor([[[3.0, 3.0, 8.0, 8.0]] * 3]))
    assert int(known_disparity(torch.from_numpy(disparity)).sum()) == 8
    # An explicit mask of measured pixels is honoured too: a finite but unreliable value is replaced.
    unreliable = filled.clone()
    unreliable[0, 0, 1] = 100.0
    known = torch.ones(3, 4, dtype=torch.bool)
    known[0, 1] = False
    assert float(fill_unknown(unreliable, known)[0, 0, 1]) == 3.0


def test_fill_unknown_errors():
    with pytest.raises(DataError, match="no known pixel"):
        fill_unknown(np.full((4, 4), np.inf))
    with pytest.raises(InputError, match="shape"):
        fill_unknown(np.zeros((2, 3, 4)))
    with pytest.raises(InputError, match="array or a tensor"):
        fill_unknown([[1.0]])


def test_coc_is_linear_in_disparity():
    disparity = torch.tensor([[1.0, 2.0, 3.0, 6.0]])
    coc, focus = disparity_to_coc(disparity, max_coc=100.0, focus_disparity=2.0)
    assert focus == 2.0
    torch.testing.assert_close(coc, torch.tensor([[[-25.0, 0.0, 25.0, 100.0]]]))  # nearer: positive
    defocus = disparity_to_defocus(disparity, max_coc=100.0, focus_disparity=2.0)
    torch.testing.assert_close(defocus, diameter_to_defocus(coc.abs() / 2))
    with pytest.raises(InputError, match="max_coc"):
        disparity_to_coc(disparity, max_coc=-1.0)


def check_real_scene(disparity: np.ndarray) -> None:
    unknown = ~known_disparity(torch.from_numpy(disparity.astype(np.float32)))  # (H, W)
    assert bool(unknown.any())  # the test needs holes to fill
    coc, focus = disparity_to_coc(disparity)
    defocus = disparity_to_defocus(disparity)
    assert coc.shape == defocus.shape == (1, *disparity.shape)
    assert bool(torch.isfinite(coc).all()) and bool(torch.isfinite(defocus).all())
    assert float(coc.abs().max()) == pytest.approx(140.0)
    assert float(defocus.min()) >= 0 and float(defocus.max()) <= 1
    assert focus == pytest.approx(central_focus_disparity(fill_unknown(disparity)))
    # The focus plane runs through the scene: there is blur in front of it and behind it.
    assert float((coc > 5).float().mean()) > 0.01 and float((coc < -5).float().mean()) > 0.01
    # Holes take a neighbouring value: no unknown pixel differs from every known one.
    known_values = torch.from_numpy(disparity[~unknown.numpy()].astype(np.float32))
    filled = fill_unknown(disparity)[0]
    assert bool(torch.isin(filled[unknown], known_values).all())


def test_middlebury_motorcycle_from_scikit_image():
    import skimage.data

    _, _, disparity = skimage.data.stereo_motorcycle()
    assert np.isinf(disparity).any()
    check_real_scene(disparity)


@pytest.mark.skipif(not (ALOE / "aloeGT.png").is_file(), reason="Debian's opencv-doc is not installed")
def test_middlebury_aloe_from_opencv_doc():
    from PIL import Image

    disparity = np.asarray(Image.open(ALOE / "aloeGT.png").convert("L"), dtype=np.float32)
    image = np.asarray(Image.open(ALOE / "aloeL.jpg"))
    assert image.shape[:2] == disparity.shape
    assert (disparity == 0).any()
    check_real_scene(disparity)
