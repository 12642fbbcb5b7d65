import numpy as np
import pytest
from PIL import Image

from d2f.errors import DataError, ImageReadError, InputError
from d2f.real_lens.pairs import DEFAULT_SET, load_pair, read_pairs_csv
from lens_scenes import write_csv


def rows(**overrides):
    row = {"name": "a", "original": "a.png", "bokeh": "b.png"}
    return [{**row, **overrides}]


def test_paths_are_relative_to_the_csv_and_optional_columns_may_be_absent(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    path = write_csv(folder / "pairs.csv", rows(extra="x"), ["name", "original", "bokeh", "extra"])
    pairs, errors = read_pairs_csv(path)
    assert errors == [] and len(pairs) == 1
    pair = pairs[0]
    assert (pair.row, pair.name, pair.set) == (2, "a", DEFAULT_SET)
    assert pair.original == folder / "a.png" and pair.bokeh == folder / "b.png"
    assert pair.f_original is None and pair.f_bokeh is None and pair.focus_mask is None


def test_optional_columns_are_read(tmp_path):
    row = {"set": "s", "f_original": "16", "f_bokeh": " 2.8 ", "focus_mask": "../m.png"}
    pairs, _ = read_pairs_csv(write_csv(tmp_path / "pairs.csv", rows(**row)))
    assert (pairs[0].set, pairs[0].f_original, pairs[0].f_bokeh) == ("s", 16.0, 2.8)
    assert pairs[0].focus_mask == tmp_path / ".." / "m.png"


def test_bad_rows_are_errors_naming_the_row_and_the_others_are_kept(tmp_path):
    good = rows()[0]
    table = [
        good,
        {**good, "name": ""},
        {**good},  # the same name again
        {**good, "name": "b", "bokeh": ""},
        {**good, "name": "c", "f_bokeh": "wide"},
        {**good, "name": "d", "f_original": "-2"},
        {**good, "name": "e", "set": "s"},
    ]
    pairs, errors = read_pairs_csv(write_csv(tmp_path / "pairs.csv", table))
    assert [pair.name for pair in pairs] == ["a", "e"]
    messages = [error.message for error in errors]
    assert messages == [
        "row 3: empty name",
        "row 4 (a): name already used on row 2",
        "row 5 (b): empty 'bokeh'",
        "row 6 (c): f_bokeh: expected a positive f-number, got 'wide'",
        "row 7 (d): f_original: expected a positive f-number, got '-2'",
    ]
    assert all(error.exit_code == 2 for error in errors)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name,original\na,a.png\n", r"no column 'bokeh' in the header \(required: name, original, bokeh\)"),
        ("", "no column 'name', 'original', 'bokeh'"),
        ("name,original,bokeh\n", "no pairs below the header"),
    ],
)
def test_a_csv_without_a_required_column_or_rows_is_one_data_error(tmp_path, text, message):
    path = tmp_path / "pairs.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=message):
        read_pairs_csv(path)


def test_missing_and_binary_csv_files(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_pairs_csv(tmp_path / "none.csv")
    (tmp_path / "binary.csv").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(DataError, match="not a UTF-8 text file"):
        read_pairs_csv(tmp_path / "binary.csv")


def test_a_header_with_a_byte_order_mark_and_spaces(tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_text("\ufeffname, original ,bokeh\na,a.png,b.png\n", encoding="utf-8")
    pairs, _ = read_pairs_csv(path)
    assert pairs[0].original == tmp_path / "a.png"


def save(path, array):
    Image.fromarray(array).save(path)
    return path


def test_a_target_and_a_mask_of_another_size_are_resized_with_a_note(tmp_path):
    rng = np.random.default_rng(0)
    save(tmp_path / "a.png", rng.integers(0, 256, (40, 60, 3), dtype=np.uint8))
    save(tmp_path / "b.png", rng.integers(0, 256, (80, 120, 3), dtype=np.uint8))
    mask = np.zeros((20, 30), np.uint8)
    mask[5:15, 10:20] = 255
    save(tmp_path / "m.png", mask)
    pairs, _ = read_pairs_csv(write_csv(tmp_path / "pairs.csv", rows(focus_mask="m.png")))
    loaded = load_pair(pairs[0])
    assert loaded.target.shape == loaded.image.shape == (40, 60, 3)
    assert loaded.mask.shape == (40, 60) and loaded.mask.dtype == bool
    assert loaded.mask[10:30, 20:40].all() and loaded.mask.sum() == 400
    assert loaded.notes == [
        "target 120x80 resized to the photo's 60x40",
        "focus mask 30x20 resized to 60x40",
    ]


def test_missing_unreadable_and_too_small_images_name_the_file(tmp_path):
    pairs, _ = read_pairs_csv(write_csv(tmp_path / "pairs.csv", rows()))
    with pytest.raises(ImageReadError, match=r"a\.png: no such file"):
        load_pair(pairs[0])
    (tmp_path / "a.png").write_bytes(b"not an image")
    with pytest.raises(ImageReadError, match=r"a\.png: not an image file"):
        load_pair(pairs[0])
    save(tmp_path / "a.png", np.zeros((20, 60, 3), np.uint8))
    with pytest.raises(InputError, match=r"a\.png: image is 60x20, at least 32x32"):
        load_pair(pairs[0])
