"""Draw the README's contact sheet: input | defocus | output | ground truth, one row per photo.

    python scripts/contact_sheet.py                                  # -> docs/contact_sheet.jpg
    python scripts/contact_sheet.py --data ../shared/ebb_samples --output ebb_sheet.jpg

Rows: every pair of ``--data`` (``original/`` and ``bokeh/``), if given, then the bundled sample photo
of ``d2f demo`` (no ground truth: its cell stays blank). The model is the bundled default (or
``--model`` d2f-lite|PATH). The committed sheet shows the sample photo only: the EBB! photos are not
ours to redistribute, so a sheet with them is for local use and is never committed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from d2f.cli.demo import SAMPLE_PHOTO
from d2f.errors import D2FError
from d2f.evaluation import find_pairs
from d2f.io import read_image, tensor_to_pil
from d2f.models import CONFIGS, load_bundled, load_pretrained
from d2f.pipeline import predict

REPO = Path(__file__).resolve().parents[1]
COLUMNS = ("input", "defocus", "output", "ground truth")
LABEL_HEIGHT = 18


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, help="folder of pairs: original/ and bokeh/ (default: none)")
    parser.add_argument("--model", default="d2f-lite", help="a bundled model name or a model folder")
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "contact_sheet.jpg")
    parser.add_argument("--row-height", type=int, default=256, help="height of each row in pixels")
    args = parser.parse_args(argv)
    try:
        model = load_bundled(args.model) if args.model in CONFIGS else load_pretrained(args.model)
        pairs = find_pairs(args.data) if args.data is not None else []
        rows = [(pair.name, pair.original, pair.bokeh) for pair in pairs]
        rows.append(("sample photo", SAMPLE_PHOTO, None))
        sheet = draw_sheet(model, rows, args.row_height)
    except D2FError as error:
        print(f"contact_sheet.py: error: {error}", file=sys.stderr)
        return error.exit_code
    args.output.parent.mkdir(parents=True, exist_ok=True)
    partial = args.output.with_name(args.output.name + ".partial")
    sheet.save(partial, format="JPEG", quality=85, optimize=True)
    partial.replace(args.output)
    print(f"{args.output}: {sheet.width}x{sheet.height}, {args.output.stat().st_size / 1e3:.0f} kB")
    return 0


def draw_sheet(
    model: torch.nn.Module, rows: list[tuple[str, Path, Path | None]], row_height: int
) -> Image.Image:
    """One row of four cells per (name, photo, ground truth or None), with a header of column names."""
    cells = []
    for name, photo, truth in rows:
        image = read_image(photo)
        output = predict(model, image.unsqueeze(0), device="cpu")
        defocus = output.defocus[0].clamp(0, 1).expand(3, -1, -1)
        row = [tensor_to_pil(image), tensor_to_pil(defocus), tensor_to_pil(output.bokeh[0])]
        row.append(tensor_to_pil(read_image(truth)) if truth is not None else None)
        cells.append((name, [_fit(cell, row_height) if cell is not None else None for cell in row]))
    width = max(cell.width for _, row in cells for cell in row if cell is not None)
    sheet = Image.new("RGB", (width * len(COLUMNS), LABEL_HEIGHT + len(cells) * row_height), "white")
    draw = ImageDraw.Draw(sheet)
    for column, title in enumerate(COLUMNS):
        draw.text((column * width + 4, 3), title, fill="black")
    for index, (name, row) in enumerate(cells):
        top = LABEL_HEIGHT + index * row_height
        for column, cell in enumerate(row):
            if cell is not None:
                sheet.paste(cell, (column * width, top))
        draw.text((4, top + 3), name, fill="white", stroke_width=1, stroke_fill="black")
    return sheet


def _fit(image: Image.Image, height: int) -> Image.Image:
    return image.resize((round(image.width * height / image.height), height), Image.Resampling.LANCZOS)


if __name__ == "__main__":
    sys.exit(main())
