import numpy as np
import pytest
from rgbd_files import pfm, pgm16, png16_rgb

from d2f.data.depth_files import read_map_image, read_npy_map, read_pfm
from d2f.errors import DataError


def _values() -> np.ndarray:
    return np.random.default_rng(1).integers(0, 65535, (7, 9)).astype(np.float64)


def test_16_bit_rgb_png_every_filter_type(tmp_path):
    values = _values()
    png16_rgb(tmp_path / "map.png", values)  # rows use filters None, Sub, Up, Average, Paeth in turn
    np.testing.assert_array_equal(read_map_image(tmp_path / "map.png"), values)


def test_16_bit_pgm_in_either_byte_order(tmp_path):
    values = _values()
    pgm16(tmp_path / "big.pgm", values)
    pgm16(tmp_path / "little.pgm", values, little_endian=True)
    np.testing.assert_array_equal(read_map_image(tmp_path / "big.pgm"), values)
    np.testing.assert_array_equal(read_map_image(tmp_path / "little.pgm", swap_bytes=True), values)


def test_pfm_is_read_top_row_first_in_either_byte_order(tmp_path):
    values = np.arange(12, dtype=np.float32).reshape(3, 4)
    values[1, 2] = np.inf
    pfm(tmp_path / "little.pfm", values)
    (tmp_path / "big.pfm").write_bytes(b"Pf\n4 3\n1.0\n" + values[::-1].astype(">f4").tobytes())
    np.testing.assert_array_equal(read_pfm(tmp_path / "little.pfm"), values)
    np.testing.assert_array_equal(read_pfm(tmp_path / "big.pfm"), values)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"P6\n4 3\n255\n", "not a PFM file"),
        (b"PF\n4 3\n-1.0\n" + bytes(144), "colour one"),
        (b"Pf\n4 3\n-1.0\n" + bytes(20), "truncated"),
    ],
)
def test_bad_pfm(tmp_path, content, match):
    (tmp_path / "bad.pfm").write_bytes(content)
    with pytest.raises(DataError, match=f"bad.pfm: .*{match}"):
        read_pfm(tmp_path / "bad.pfm")


def test_bad_files_name_themselves(tmp_path):
    with pytest.raises(DataError, match=r"missing\.png: cannot read"):
        read_map_image(tmp_path / "missing.png")
    (tmp_path / "cut.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(DataError, match=r"cut\.png: cannot read"):
        read_map_image(tmp_path / "cut.png")
    np.save(tmp_path / "cube.npy", np.zeros((2, 3, 4)))
    with pytest.raises(DataError, match=r"cube\.npy: expected a 2-D numeric array"):
        read_npy_map(tmp_path / "cube.npy")
