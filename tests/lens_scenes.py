"""A small synthetic scene photographed "through a real lens" at several apertures, for real-lens tests.

A far textured wall, a nearer band across the bottom (a table) and an in-focus subject, rendered by
:func:`d2f.render.scene.render_scene` all in focus (the original) and at f/8, f/4 and f/2 (the wall's
blur diameter is 32 px / f-number, the table's 40 % of it).
"""

from __future__ import annotations

import csv
import functools
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from d2f.data.textures import procedural_texture
from d2f.render.scene import SceneLayer, render_scene

HEIGHT, WIDTH, MARGIN = 128, 192, 12
F_NUMBERS = (8.0, 4.0, 2.0)
#: The subject's box (top, bottom, left, right) in the photo.
SUBJECT = (24, 88, 32, 96)


@functools.lru_cache(maxsize=1)
def lens_scene() -> tuple[np.ndarray, dict[float, np.ndarray], np.ndarray]:
    """(photo, {f-number: bokeh}, subject mask): (H, W, 3) uint8 images and an (H, W) uint8 mask."""
    rng = np.random.default_rng(0)
    size = (HEIGHT + 2 * MARGIN, WIDTH + 2 * MARGIN)
    wall, table, subject = (procedural_texture(rng, size, kind) for kind in ("cells", "dots", "checks"))
    everywhere = torch.ones(1, *size)
    band = torch.zeros(1, *size)
    band[:, MARGIN + 96 :, :] = 1
    alpha = torch.zeros(1, *size)
    top, bottom, left, right = SUBJECT
    alpha[:, MARGIN + top : MARGIN + bottom, MARGIN + left : MARGIN + right] = 1

    def photo(f_number: float | None) -> np.ndarray:
        blur = 0.0 if f_number is None else 32.0 / f_number
        layers = [
            SceneLayer(wall, everywhere, -blur),
            SceneLayer(table, band, -0.4 * blur),
            SceneLayer(subject, alpha, 0.0),
        ]
        image = render_scene(layers, margin=MARGIN, sharp=f_number is None)
        return (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)

    mask = np.zeros((HEIGHT, WIDTH), np.uint8)
    mask[top:bottom, left:right] = 255
    return photo(None), {f_number: photo(f_number) for f_number in F_NUMBERS}, mask


def write_lens_pairs(folder: Path, *, extra_rows: list[dict] | None = None) -> Path:
    """The scene's files and a ``pairs.csv`` with one row per aperture (set ``synthetic``, with the mask)."""
    image, bokeh, mask = lens_scene()
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(folder / "f16.png")
    Image.fromarray(mask).save(folder / "mask.png")
    rows = []
    for f_number, target in bokeh.items():
        Image.fromarray(target).save(folder / f"f{f_number:g}.png")
        rows.append(
            {
                "name": f"scene-f{f_number:g}",
                "set": "synthetic",
                "original": "f16.png",
                "bokeh": f"f{f_number:g}.png",
                "f_original": "16",
                "f_bokeh": f"{f_number:g}",
                "focus_mask": "mask.png",
            }
        )
    return write_csv(folder / "pairs.csv", rows + (extra_rows or []))


def write_csv(path: Path, rows: list[dict], columns: list[str] | None = None) -> Path:
    columns = columns or ["name", "set", "original", "bokeh", "f_original", "f_bokeh", "focus_mask"]
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path
