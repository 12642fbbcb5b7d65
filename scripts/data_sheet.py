"""Draw what the model learns from: image | disparity | bokeh, one row per training item.

    python scripts/data_sheet.py                                   # -> docs/training_data.jpg
    python scripts/data_sheet.py --rgbd ../shared/rgbd --output rgbd_sheet.jpg

The committed sheet shows perspective scenes (scikit-image's photos as textures) with two bokeh
columns: the scene renderer's exact one, and the one rendered from the all-in-focus image and its
disparity alone, as :class:`d2f.data.RGBDBokehDataset` renders real photos (layers cut by CoC, the
hidden background filled by pull-push). Their difference is that path's artefact: the PSNR between the
two is printed. With ``--rgbd``, the rows are RGB-D photos instead (the holdout split, random focus and
blur): those photos are not ours to redistribute, so that sheet is for local use, never committed.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from d2f.data import RGBDBokehDataset, generate_perspective_scene
from d2f.data.depth_layers import highlight_gain, render_depth_bokeh
from d2f.data.textures import TextureBank
from d2f.errors import D2FError
from d2f.io import tensor_to_pil

REPO = Path(__file__).resolve().parents[1]
LABEL_HEIGHT = 18
# Seeds of the committed sheet's scenes: a mix of focus on a subject and on the ground, streets, fields.
SEEDS = (3, 7, 12, 21, 27, 33)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rgbd", type=Path, help="the RGB-D folder: draw its photos instead (local use)")
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "training_data.jpg")
    parser.add_argument("--size", default="256x384", help="HxW of each cell (default: 256x384)")
    parser.add_argument("--rows", type=int, default=len(SEEDS), help="rows (default: 6)")
    args = parser.parse_args(argv)
    size = tuple(int(side) for side in args.size.lower().split("x"))
    try:
        if args.rgbd is None:
            columns = ("image", "disparity (near = white)", "exact bokeh", "bokeh from image + depth")
            rows, psnrs = perspective_rows(size, args.rows)
            print(f"bokeh from image + depth vs exact: PSNR {sum(psnrs) / len(psnrs):.1f} dB on average "
                  f"({', '.join(f'{value:.1f}' for value in psnrs)})")
        else:
            columns = ("image", "disparity (near = white)", "bokeh")
            rows = rgbd_rows(args.rgbd, size, args.rows)
    except D2FError as error:
        print(f"data_sheet.py: error: {error}", file=sys.stderr)
        return error.exit_code
    sheet = draw_sheet(columns, rows)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    partial = args.output.with_name(args.output.name + ".partial")
    sheet.save(partial, format="JPEG", quality=85, optimize=True)
    partial.replace(args.output)
    print(f"{args.output}: {sheet.width}x{sheet.height}, {args.output.stat().st_size / 1e3:.0f} kB")
    return 0


def _grey(disparity: torch.Tensor) -> torch.Tensor:
    low, high = float(disparity.min()), float(disparity.max())
    return ((disparity - low) / max(high - low, 1e-12)).expand(3, -1, -1)


def perspective_rows(size: tuple[int, int], count: int) -> tuple[list[tuple[str, list]], list[float]]:
    """Rows of perspective scenes, and the PSNR of the image + depth bokeh against the exact one."""
    textures = TextureBank.builtin()
    rows, psnrs = [], []
    for seed in SEEDS[:count]:
        scene = generate_perspective_scene(seed, size, textures)
        params = scene["params"]
        # The dataset's path for real photos: only the image and its CoC, context mirrored at the edges.
        margin = math.ceil(params["largest_coc"] / 2) + 2
        pad = (margin, margin, margin, margin)
        image = F.pad(scene["image"][None], pad, mode="reflect")[0]
        coc = F.pad(scene["coc"][None], pad, mode="reflect")[0]
        from_depth = render_depth_bokeh(image, coc, margin=margin, gain=highlight_gain(image, 4.0))
        error = float(((from_depth - scene["bokeh"]) ** 2).mean())
        psnrs.append(10 * math.log10(1 / max(error, 1e-12)))
        label = (f"seed {seed}: focus on the {params['focus_on']} at {params['focus_depth']:.1f} m, "
                 f"largest CoC {params['largest_coc']:.0f} px; {psnrs[-1]:.1f} dB")
        rows.append((label, [scene["image"], _grey(scene["disparity"]), scene["bokeh"], from_depth]))
    return rows, psnrs


def rgbd_rows(root: Path, size: tuple[int, int], count: int) -> list[tuple[str, list]]:
    """Rows of RGB-D photos of the holdout split, spread over it."""
    dataset = RGBDBokehDataset(root, "holdout", size=size, random_flip=False)
    step = max(1, len(dataset) // count)
    rows = []
    for index in list(range(0, len(dataset), step))[:count]:
        item = dataset[index]
        label = f"{item['name']}: largest CoC {float(item['coc'].abs().max()):.0f} px"
        rows.append((label, [item["image"], _grey(item["norm_disparity"]), item["bokeh"]]))
    return rows


def draw_sheet(columns: tuple[str, ...], rows: list[tuple[str, list]]) -> Image.Image:
    """A header of column names, then each row's label over its cells."""
    height, width = rows[0][1][0].shape[-2:]
    sheet_height = LABEL_HEIGHT + len(rows) * (height + LABEL_HEIGHT)
    sheet = Image.new("RGB", (width * len(columns), sheet_height), "white")
    draw = ImageDraw.Draw(sheet)
    for index, name in enumerate(columns):
        draw.text((index * width + 4, 3), name, fill="black")
    for row, (label, cells) in enumerate(rows):
        top = LABEL_HEIGHT + row * (height + LABEL_HEIGHT)
        draw.text((4, top + 3), label, fill="black")
        for index, cell in enumerate(cells):
            sheet.paste(tensor_to_pil(cell.clamp(0, 1)), (index * width, top + LABEL_HEIGHT))
    return sheet


if __name__ == "__main__":
    sys.exit(main())
