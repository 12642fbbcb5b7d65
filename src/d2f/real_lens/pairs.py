"""The pairs of a real-lens evaluation: read from a CSV, checked row by row, and loaded.

The CSV has a header row. Required columns: ``name`` (unique), ``original`` (the photo at a small
aperture) and ``bokeh`` (the same scene at a wider one: the target). Optional: ``set`` (a group for the
summary), ``f_original`` and ``f_bokeh`` (f-numbers, empty where unknown) and ``focus_mask`` (white
where the photographer focused). Other columns are ignored. Paths are relative to the CSV's folder.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from d2f.errors import DataError, InputError
from d2f.io import open_image, read_image, tensor_to_array
from d2f.metrics import TILE_SIZE

REQUIRED_COLUMNS = ("name", "original", "bokeh")
OPTIONAL_COLUMNS = ("set", "f_original", "f_bokeh", "focus_mask")
#: The set of rows whose ``set`` is empty or absent.
DEFAULT_SET = "default"


@dataclass(frozen=True)
class LensPair:
    """One row of the CSV: a photo, its real-lens bokeh and what is known about them."""

    row: int
    name: str
    set: str
    original: Path
    bokeh: Path
    f_original: float | None = None
    f_bokeh: float | None = None
    focus_mask: Path | None = None


@dataclass(frozen=True)
class RowError:
    """A row that could not be scored; ``message`` is one line naming the row (as a spreadsheet numbers
    it: the header is row 1) and, where one is at fault, the file."""

    row: int
    name: str
    set: str
    message: str
    exit_code: int = 2


@dataclass
class LoadedPair:
    """A pair's images: (H, W, 3) uint8 photo and target, the (H, W) bool focus mask, what was adjusted."""

    pair: LensPair
    image: np.ndarray
    target: np.ndarray
    mask: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)


def read_pairs_csv(path: str | Path) -> tuple[list[LensPair], list[RowError]]:
    """The pairs of a CSV (see the module docstring), and the rows that are wrong in themselves.

    A row with an empty or repeated name, an empty path or an f-number that is not a positive number is
    returned as a :class:`RowError`; files are not opened here (see :func:`load_pair`).
    Raises :class:`DataError` naming the CSV when it cannot be read, lacks a required column or has no
    rows.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    try:
        with path.open(newline="", encoding="utf-8-sig") as file:
            reader = csv.DictReader(file)
            columns = [column.strip() for column in reader.fieldnames or []]
            missing = [column for column in REQUIRED_COLUMNS if column not in columns]
            if missing:
                listed = ", ".join(repr(column) for column in missing)
                raise DataError(
                    f"{path}: no column {listed} in the header (required: {', '.join(REQUIRED_COLUMNS)})"
                )
            reader.fieldnames = columns
            rows = [(reader.line_num, row) for row in reader]
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a UTF-8 text file") from None
    except csv.Error as error:
        raise DataError(f"{path}: not a valid CSV file ({error})") from None
    except OSError as error:
        raise DataError(f"{path}: cannot read: {error.strerror or error}") from None
    if not rows:
        raise DataError(f"{path}: no pairs below the header")
    pairs: list[LensPair] = []
    errors: list[RowError] = []
    first_row: dict[str, int] = {}
    for line, row in rows:
        values = {key: (value or "").strip() for key, value in row.items() if isinstance(key, str)}
        name, group = values.get("name", ""), values.get("set", "") or DEFAULT_SET
        try:
            pairs.append(_pair_of_row(values, line, path.parent, first_row))
        except InputError as error:
            errors.append(RowError(line, name, group, f"row {line}{_named(name)}: {error}"))
        if name and name not in first_row:
            first_row[name] = line
    return pairs, errors


def _named(name: str) -> str:
    return f" ({name})" if name else ""


def _pair_of_row(values: dict[str, str], line: int, folder: Path, first_row: dict[str, int]) -> LensPair:
    name = values["name"]
    if not name:
        raise InputError("empty name")
    if name in first_row:
        raise InputError(f"name already used on row {first_row[name]}")
    for column in ("original", "bokeh"):
        if not values[column]:
            raise InputError(f"empty {column!r}")
    mask = values.get("focus_mask", "")
    return LensPair(
        row=line,
        name=name,
        set=values.get("set", "") or DEFAULT_SET,
        original=folder / values["original"],
        bokeh=folder / values["bokeh"],
        f_original=_f_number(values, "f_original"),
        f_bokeh=_f_number(values, "f_bokeh"),
        focus_mask=folder / mask if mask else None,
    )


def _f_number(values: dict[str, str], column: str) -> float | None:
    text = values.get(column, "")
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not (math.isfinite(number) and number > 0):
        raise InputError(f"{column}: expected a positive f-number, got {text!r}")
    return number


def load_pair(pair: LensPair) -> LoadedPair:
    """Read a pair's images: the target (and mask) resized to the photo's size where it differs.

    Raises a :class:`D2FError` whose message names the file: missing, unreadable, or a photo smaller
    than one 32 px tile.
    """
    image = read_rgb(pair.original)
    height, width = image.shape[:2]
    if height < TILE_SIZE or width < TILE_SIZE:
        raise InputError(
            f"{pair.original}: image is {width}x{height}, at least {TILE_SIZE}x{TILE_SIZE} pixels needed"
        )
    loaded = LoadedPair(pair, image, read_rgb(pair.bokeh))
    if loaded.target.shape != image.shape:
        size = f"{loaded.target.shape[1]}x{loaded.target.shape[0]}"
        resized = Image.fromarray(loaded.target).resize((width, height), Image.Resampling.LANCZOS)
        loaded.target = np.asarray(resized)
        loaded.notes.append(f"target {size} resized to the photo's {width}x{height}")
    if pair.focus_mask is not None:
        mask = open_image(pair.focus_mask, max_megapixels=None).convert("L")
        if mask.size != (width, height):
            loaded.notes.append(f"focus mask {mask.width}x{mask.height} resized to {width}x{height}")
            mask = mask.resize((width, height), Image.Resampling.NEAREST)
        loaded.mask = np.asarray(mask) >= 128
    return loaded


def read_rgb(path: Path) -> np.ndarray:
    """An image file as (H, W, 3) uint8 RGB, upright (EXIF orientation applied), any size."""
    return tensor_to_array(read_image(path, max_megapixels=None))


def row_error(pair: LensPair, error: BaseException | str, exit_code: int | None = None) -> RowError:
    """A :class:`RowError` for a pair that failed after reading the CSV (first line of ``error``; exit
    code: ``exit_code``, else the error's own, else 1)."""
    code = exit_code if exit_code is not None else getattr(error, "exit_code", 1)
    lines = str(error).strip().splitlines()
    problem = lines[0] if lines else type(error).__name__
    return RowError(pair.row, pair.name, pair.set, f"row {pair.row} ({pair.name}): {problem}", code)


__all__ = [
    "DEFAULT_SET",
    "OPTIONAL_COLUMNS",
    "REQUIRED_COLUMNS",
    "LensPair",
    "LoadedPair",
    "RowError",
    "load_pair",
    "read_pairs_csv",
    "read_rgb",
    "row_error",
]
