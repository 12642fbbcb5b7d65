"""Contact sheets: per set, one row per pair (input | each method's output | target | defocus map).

Each image is fitted into a 320x240 cell, so a sheet of nine pairs and five columns stays near 1600x2200
pixels (under 1 MB as JPEG, quality 85).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont, ImageOps

from d2f.errors import InputError
from d2f.io import colorize_defocus, write_image

CELL_SIZE = (320, 240)
#: Height of the column titles above the first row, and the gap between cells.
TITLE_HEIGHT = 20
GAP = 4
BACKGROUND = (24, 24, 24)
TEXT = (235, 235, 235)
QUALITY = 85


def sheet_path(folder: str | Path, set_name: str) -> Path:
    """``folder/<set>.jpg``, the set's name reduced to letters, digits, ``-``, ``_`` and ``.``."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", set_name).strip("._") or "set"
    return Path(folder) / f"{safe}.jpg"


class ContactSheets:
    """Collects small copies of each pair's images, by set, and writes one sheet per set."""

    def __init__(self, columns: list[str]):
        self.columns = list(columns)
        self.rows: dict[str, list[tuple[str, list[Image.Image | None]]]] = {}

    def add(self, set_name: str, name: str, images: list[np.ndarray | None]) -> None:
        """One row: an (H, W, 3) uint8 image, or an (h, w) defocus map in [0, 1], or None, per column."""
        if len(images) != len(self.columns):
            raise InputError(f"images: expected {len(self.columns)} (one per column), got {len(images)}")
        cells = [None if image is None else _thumbnail(image) for image in images]
        self.rows.setdefault(set_name, []).append((name, cells))

    def write(self, folder: str | Path, *, overwrite: bool = False) -> list[Path]:
        """Write ``folder/<set>.jpg`` for each set (atomically); returns the paths."""
        Path(folder).mkdir(parents=True, exist_ok=True)
        written = []
        for set_name, rows in self.rows.items():
            path = sheet_path(folder, set_name)
            written.append(write_image(path, self._compose(rows), quality=QUALITY, overwrite=overwrite))
        return written

    def _compose(self, rows: list[tuple[str, list[Image.Image | None]]]) -> Image.Image:
        cell_width, cell_height = CELL_SIZE
        width = len(self.columns) * (cell_width + GAP) + GAP
        height = TITLE_HEIGHT + len(rows) * (cell_height + GAP) + GAP
        sheet = Image.new("RGB", (width, height), BACKGROUND)
        draw = ImageDraw.Draw(sheet)
        font = ImageFont.load_default()
        for index, title in enumerate(self.columns):
            draw.text((GAP + index * (cell_width + GAP) + 4, 4), title, fill=TEXT, font=font)
        for row, (name, cells) in enumerate(rows):
            top = TITLE_HEIGHT + row * (cell_height + GAP)
            for index, cell in enumerate(cells):
                if cell is None:
                    continue
                left = GAP + index * (cell_width + GAP) + (cell_width - cell.width) // 2
                sheet.paste(cell, (left, top + (cell_height - cell.height) // 2))
            box = draw.textbbox((GAP + 4, top + 4), name, font=font)
            draw.rectangle((box[0] - 2, box[1] - 2, box[2] + 2, box[3] + 2), fill=BACKGROUND)
            draw.text((GAP + 4, top + 4), name, fill=TEXT, font=font)
        return sheet


def _thumbnail(image: np.ndarray) -> Image.Image:
    """The image fitted into a cell; a defocus map (smaller than the photo) is colour-mapped and enlarged."""
    if image.ndim == 2:
        colours = colorize_defocus(torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)))
        return ImageOps.contain(Image.fromarray(colours), CELL_SIZE, Image.Resampling.BILINEAR)
    return ImageOps.contain(Image.fromarray(image), CELL_SIZE, Image.Resampling.LANCZOS)


__all__ = ["CELL_SIZE", "ContactSheets", "sheet_path"]
