"""Draw the README's contact sheet: input | d2f-lite | d2f-lite-2 at f/1.8 | d2f-lite-2's depth, per photo.

    python scripts/contact_sheet.py                        # -> docs/contact_sheet.jpg
    python scripts/contact_sheet.py --photos a.jpg b.jpg --output local_sheet.jpg

The default photos are the ones scikit-image ships and that may be redistributed (the bundled sample
``coffee``, ``chelsea``, ``astronaut`` and ``rocket``: CC0 or public domain). d2f-lite-2 focuses where
it chooses; its depth map is shown near = bright. Photos of the real-lens or RGB-D sets are not ours to
redistribute: a sheet with them is for local use and is never committed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from d2f.errors import D2FError
from d2f.io import array_to_tensor, read_image, tensor_to_pil
from d2f.models import load
from d2f.pipeline import predict

REPO = Path(__file__).resolve().parents[1]
COLUMNS = ("input", "d2f-lite", "d2f-lite-2, f/1.8", "d2f-lite-2 depth (near = bright)")
SKIMAGE_PHOTOS = ("coffee", "chelsea", "astronaut", "rocket")
LABEL_HEIGHT = 18


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, nargs="+", help="photos (default: scikit-image's)")
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "contact_sheet.jpg")
    parser.add_argument("--row-height", type=int, default=240, help="height of each row in pixels")
    args = parser.parse_args(argv)
    try:
        photos = [read_image(path) for path in args.photos] if args.photos else skimage_photos()
        sheet = draw(photos, args.row_height)
    except D2FError as error:
        print(f"contact_sheet: error: {error}", file=sys.stderr)
        return error.exit_code
    args.output.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.output, quality=88)
    print(f"wrote {args.output} ({sheet.width}x{sheet.height})")
    return 0


def skimage_photos() -> list[torch.Tensor]:
    import skimage.data

    return [array_to_tensor(getattr(skimage.data, name)()) for name in SKIMAGE_PHOTOS]


def draw(photos: list[torch.Tensor], row_height: int) -> Image.Image:
    lite, lite2 = load("d2f-lite"), load("d2f-lite-2")
    rows = []
    with torch.inference_mode():
        for photo in photos:
            batch = photo.unsqueeze(0)
            flat = predict(lite, batch).bokeh[0]
            output = predict(lite2, batch, f_number=1.8)
            rows.append([photo, flat, output.bokeh[0], grey(output.disparity[0], photo.shape[-2:])])
    return layout(rows, COLUMNS, row_height)


def grey(disparity: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A (1, h, w) map as a (3, H, W) grey image of the photo's size."""
    return torch.nn.functional.interpolate(disparity[None], size=size, mode="bilinear")[0].expand(3, -1, -1)


def layout(rows: list[list[torch.Tensor]], titles: tuple[str, ...], row_height: int) -> Image.Image:
    """Images (3, H, W) in [0, 1], one list per row, drawn in titled columns at one row height."""
    rows = [[_fit(tensor_to_pil(cell.float().clamp(0, 1)), row_height) for cell in row] for row in rows]
    widths = [max(row[column].width for row in rows) for column in range(len(titles))]
    size = (sum(widths) + 4 * len(widths), LABEL_HEIGHT + sum(row[0].height + 4 for row in rows))
    sheet = Image.new("RGB", size, "white")
    pen = ImageDraw.Draw(sheet)
    left = 0
    for column, (title, width) in enumerate(zip(titles, widths, strict=True)):
        pen.text((left + 4, 3), title, fill="black")
        top = LABEL_HEIGHT
        for row in rows:
            sheet.paste(row[column], (left + 2, top))
            top += row[0].height + 4
        left += width + 4
    return sheet


def _fit(image: Image.Image, height: int) -> Image.Image:
    width = round(image.width * height / image.height)
    return image.resize((width, height), Image.Resampling.LANCZOS)


if __name__ == "__main__":
    sys.exit(main())
