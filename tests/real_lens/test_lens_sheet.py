import numpy as np
import pytest
from PIL import Image

from d2f.errors import InputError
from d2f.real_lens.sheet import CELL_SIZE, GAP, TITLE_HEIGHT, ContactSheets, sheet_path


def test_one_jpeg_per_set_with_a_row_per_pair(tmp_path):
    rng = np.random.default_rng(0)
    sheets = ContactSheets(["input", "model", "target", "defocus map"])
    photo = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
    defocus = np.tile(np.linspace(0, 1, 40), (30, 1))
    for name in ("a1", "a2"):
        sheets.add("a/b", name, [photo, photo, photo, defocus])
    sheets.add("c", "c1", [photo, None, photo, None])
    written = sheets.write(tmp_path / "sheets")
    assert written == [tmp_path / "sheets" / "a_b.jpg", tmp_path / "sheets" / "c.jpg"]
    with Image.open(written[0]) as sheet:
        assert sheet.format == "JPEG"
        assert sheet.size == (4 * (CELL_SIZE[0] + GAP) + GAP, TITLE_HEIGHT + 2 * (CELL_SIZE[1] + GAP) + GAP)
        pixels = np.asarray(sheet.convert("RGB")).astype(int)
    # The defocus map's cell is colour-mapped: black on the left (in focus), pale on the right.
    top = TITLE_HEIGHT + CELL_SIZE[1] // 2
    left = 3 * (CELL_SIZE[0] + GAP) + GAP
    assert pixels[top, left + 5].sum() < 100 and pixels[top, left + CELL_SIZE[0] - 5].sum() > 500
    with pytest.raises(InputError, match="already exists"):
        sheets.write(tmp_path / "sheets")


def test_rows_need_one_image_per_column_and_names_are_safe(tmp_path):
    with pytest.raises(InputError, match="expected 2"):
        ContactSheets(["input", "target"]).add("s", "x", [None])
    assert sheet_path(tmp_path, "../..") == tmp_path / "set.jpg"
    assert sheet_path(tmp_path, "real lens") == tmp_path / "real_lens.jpg"
