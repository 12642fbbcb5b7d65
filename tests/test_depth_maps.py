"""Reading users' depth maps: every format, both kinds, unknown pixels filled, one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import d2f.io
from d2f.depth_maps import (
    disparity_span,
    load_depth_values,
    metric_disparity,
    normalised_disparity,
    read_depth,
)
from d2f.errors import InputError


def ramp(height: int = 12, width: int = 16) -> np.ndarray:
    """Disparity growing from 1 (far, top row) to ``height`` (near, bottom row)."""
    return np.repeat(np.arange(1, height + 1, dtype=np.float64)[:, None], width, axis=1)


def write_pfm(path: Path, array: np.ndarray) -> Path:
    height, width = array.shape
    with open(path, "wb") as file:
        file.write(f"Pf\n{width} {height}\n-1\n".encode())
        file.write(np.ascontiguousarray(array[::-1], dtype="<f4").tobytes())
    return path


def expected() -> torch.Tensor:
    values = ramp()
    return torch.from_numpy(((values - 1) / (values.max() - 1)).astype(np.float32))[None]


@pytest.mark.parametrize("kind", ["png8", "png16", "tiff", "npy", "pfm", "rgb_grey"])
def test_every_format_reads_as_the_same_normalised_disparity(tmp_path: Path, kind: str) -> None:
    values = ramp()
    path = tmp_path / {"png8": "d.png", "png16": "d.png", "tiff": "d.tif", "npy": "d.npy", "pfm": "d.pfm",
                       "rgb_grey": "d.png"}[kind]
    if kind == "png8":
        Image.fromarray((values * 10).astype(np.uint8)).save(path)
    elif kind == "png16":
        Image.fromarray((values * 1000).astype(np.uint16)).save(path)
    elif kind == "tiff":
        Image.fromarray(values.astype(np.float32)).save(path)
    elif kind == "npy":
        np.save(path, values)
    elif kind == "pfm":
        write_pfm(path, values)
    else:
        Image.fromarray(np.repeat((values * 10).astype(np.uint8)[..., None], 3, axis=2)).save(path)
    disparity = read_depth(path)
    assert disparity.shape == (1, 12, 16) and disparity.dtype == torch.float32
    torch.testing.assert_close(disparity, expected(), atol=1e-6, rtol=0)
    assert torch.equal(d2f.io.read_depth(path), disparity)


def test_depth_is_inverted_so_that_near_is_one() -> None:
    depth = 1 / ramp()
    torch.testing.assert_close(normalised_disparity(depth, "depth"), expected(), atol=1e-6, rtol=0)
    disparity = normalised_disparity(ramp(), "depth")
    assert float(disparity[0, 0, 0]) == 1.0 and float(disparity[0, -1, 0]) == 0.0


@pytest.mark.parametrize("hole", [0.0, np.nan, np.inf, -5.0, 999.0])
def test_unknown_pixels_take_their_neighbours_value(hole: float) -> None:
    step = np.full((12, 16), 2.0)
    step[:, 8:] = 5.0  # a far left half, a near right half
    values = step.copy()
    values[3:6, 2:5] = hole  # inside the far half
    values[7, 12] = hole  # inside the near half
    disparity = normalised_disparity(values, invalid=999.0)
    assert torch.equal(disparity, torch.from_numpy((step == 5.0).astype(np.float32))[None])


class TestDisparitySpan:
    def test_metres_millimetres_and_inverse_metres_agree(self) -> None:
        metres = np.array([[1.0, 2.0], [4.0, 0.0]])  # 0: unknown, left out
        assert disparity_span(metres, "depth", depth_scale=1.0) == pytest.approx(0.75)
        assert disparity_span(metres * 1000, "depth", depth_scale=np.float32(0.001)) == pytest.approx(0.75)
        per_km = 1000 / metres[:, :1]  # disparity in 1/km: 1/m = value * 0.001
        assert disparity_span(per_km, "disparity", depth_scale=0.001) == pytest.approx(0.75)
        assert disparity_span(metres, "depth", 4.0, depth_scale=1.0) == pytest.approx(0.5)  # 4 m invalid
        with_a_hole = np.array([[2.0, 3.0], [np.nan, 2.5]])  # the unknown pixel must not count (as 1 m)
        assert disparity_span(with_a_hole, "depth", depth_scale=1.0) == pytest.approx(1 / 2 - 1 / 3)

    @pytest.mark.parametrize("scale", [0, -1.0, float("inf"), True, "1"])
    def test_a_scale_must_be_a_positive_number(self, scale) -> None:
        for function in (disparity_span, metric_disparity):
            with pytest.raises(InputError, match=r"^depth_scale: expected a finite number > 0"):
                function(np.ones((2, 2)), "depth", depth_scale=scale)

    @pytest.mark.parametrize("kind", ["depth", "disparity"])
    def test_metric_disparity_is_the_map_and_its_span_together(self, kind: str) -> None:
        values = np.array([[1.0, 2.0, 0.0], [4.0, 999.0, 3.0]])
        disparity, span = metric_disparity(values, kind, 999.0, depth_scale=0.5)
        assert torch.equal(disparity, normalised_disparity(values, kind, 999.0))
        assert span == disparity_span(values, kind, 999.0, depth_scale=0.5)

    def test_a_file_s_values_as_stored(self, tmp_path: Path) -> None:
        np.save(tmp_path / "d.npy", np.full((3, 4), 2.5, np.float32))
        assert load_depth_values(tmp_path / "d.npy").tolist() == np.full((3, 4), 2.5).tolist()
        with pytest.raises(InputError, match=r"d\.png: no such file"):
            load_depth_values(tmp_path / "d.png")


def test_a_constant_map_is_all_in_one_plane() -> None:
    assert torch.equal(normalised_disparity(np.full((4, 5), 7.0)), torch.zeros(1, 4, 5))


def test_too_few_valid_pixels(tmp_path: Path) -> None:
    values = np.zeros((50, 50))
    values[0, 0] = 3.0
    np.save(tmp_path / "holes.npy", values)
    with pytest.raises(InputError, match=r"holes\.npy: only 1 of 2500 pixels have a valid disparity"):
        read_depth(tmp_path / "holes.npy")
    with pytest.raises(InputError, match="only 0 of"):
        normalised_disparity(np.full((3, 3), 5.0), invalid=5.0)


def test_colour_image_is_refused(tmp_path: Path) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "photo.png")
    with pytest.raises(InputError, match=r"photo\.png: expected one channel of depth .* shape \(8, 8, 3\)"):
        read_depth(tmp_path / "photo.png")
    with pytest.raises(InputError, match=r"got shape \(3, 4, 6\): 6 different channels .* channels-first"):
        normalised_disparity(np.random.default_rng(1).random((3, 4, 6)))
    with pytest.raises(InputError, match="expected a map of shape"):
        normalised_disparity(np.ones((2, 3, 4, 5)))


def test_unreadable_files(tmp_path: Path) -> None:
    (tmp_path / "broken.png").write_bytes(b"not a png at all")
    (tmp_path / "broken.pfm").write_bytes(b"P6\n1 1\n")
    (tmp_path / "short.pfm").write_bytes(b"Pf\n4 4\n-1\n" + b"\0" * 8)
    for name, message in (("broken.png", "cannot read the depth map"), ("broken.pfm", "not a PFM file"),
                          ("short.pfm", "truncated"), ("missing.png", "no such file")):
        with pytest.raises(InputError, match=message) as error:
            read_depth(tmp_path / name)
        assert str(error.value).startswith(str(tmp_path / name)) and "\n" not in str(error.value)
    with pytest.raises(InputError, match="depth_kind"):
        normalised_disparity(ramp(), "distance")
