"""The picture of docs/lens-controls.md: each lens control on the sample photo and on a sheet of lights.

    python scripts/lens_controls_grid.py            # writes docs/lens-controls.jpg

Top: small white lights on black, rendered by d2f's renderer alone at one large defocus, so that each
disc is the aperture itself: round, six blades, five curved blades turned, then the cat's eye (the
discs towards the corners clipped into lens shapes). Below: the bundled sample photo
(src/d2f/samples/coffee.jpg) rendered by the bundled d2f-lite under each setting. d2f-lite predicts
defocus, not depth, so the depth controls (focus point, f-number, focus range) use a simple depth map
given with the photo: a table receding from the bottom edge (near) to the top edge (far).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from d2f.io import read_image
from d2f.models import load_bundled
from d2f.pipeline import predict
from d2f.render import Aperture, saturation_weight, weighted_layered_render

ROOT = Path(__file__).resolve().parents[1]
PANEL = (300, 200)  # width, height of each picture in the grid

LIGHT_PANELS = (
    ("round (default)", None, 0.0),
    ("--aperture-blades 6", Aperture(6), 0.0),
    ("blades 5, rotation 36, curvature 0.3", Aperture(5, 36.0, 0.3), 0.0),
    ("--cats-eye 1", None, 1.0),
)

PHOTO_PANELS = (
    ("photo", None),
    ("d2f-lite, defaults", {}),
    ("--aperture-blades 6 --strength 2", {"aperture_blades": 6, "strength": 2.0}),
    ("--cats-eye 1.5 --strength 2", {"cats_eye": 1.5, "strength": 2.0}),
    ("--highlight-threshold 0.8 --highlight-gain 20", {"highlight_threshold": 0.8, "highlight_gain": 20.0}),
    ("depth map: focus on the cup, f/2", {"focus": (300.0, 200.0), "f_number": 2.0}),
    ("depth map: focus on the far table, f/2", {"focus": (300.0, 10.0), "f_number": 2.0}),
    ("depth map: focus on the cup, f/1", {"focus": (300.0, 200.0), "f_number": 1.0}),
    ("depth map: cup, f/1, --focus-range 0.15",
     {"focus": (300.0, 200.0), "f_number": 1.0, "focus_range": 0.15}),
)


def lights_sheet(height: int = 200, width: int = 300) -> torch.Tensor:
    """(1, 3, H, W): 3 x 3 white lights on a grid, on black."""
    image = torch.zeros(1, 3, height, width)
    for y in np.linspace(25, height - 25, 4).round().astype(int):
        for x in np.linspace(25, width - 25, 6).round().astype(int):
            image[..., y - 1 : y + 2, x - 1 : x + 2] = 1.0
    return image


def render_lights(aperture: Aperture | None, cats_eye: float) -> torch.Tensor:
    image = lights_sheet()
    weight = saturation_weight(image, torch.ones_like(image[:, :1]))
    defocus = torch.full_like(image[:, :1], 0.45)  # a disc of about 25 px
    bokeh = weighted_layered_render(image, defocus, weight, aperture=aperture, cats_eye=cats_eye)
    # Brightened so that the discs show: each light is spread over hundreds of pixels.
    return (bokeh[0] * 12).clamp(0, 1)


def table_depth(height: int, width: int) -> torch.Tensor:
    """(1, 1, H, W) normalised disparity: 0 at the top edge (far), 1 at the bottom edge (near)."""
    rows = torch.linspace(0, 1, height).reshape(1, 1, height, 1)
    return rows.expand(1, 1, height, width).contiguous()


def labelled(picture: torch.Tensor, label: str) -> Image.Image:
    array = (picture.permute(1, 2, 0).clamp(0, 1).numpy() * 255).round().astype(np.uint8)
    panel = Image.fromarray(array).resize(PANEL, Image.Resampling.LANCZOS)
    draw = ImageDraw.Draw(panel)
    draw.rectangle((0, 0, PANEL[0], 14), fill=(0, 0, 0))
    draw.text((4, 2), label, fill=(255, 255, 255))
    return panel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "lens-controls.jpg")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    panels = [labelled(render_lights(aperture, eye), label) for label, aperture, eye in LIGHT_PANELS]
    photo = read_image(ROOT / "src" / "d2f" / "samples" / "coffee.jpg")
    model = load_bundled("d2f-lite")
    depth = table_depth(*photo.shape[-2:])
    for label, options in PHOTO_PANELS:
        if options is None:
            panels.append(labelled(photo, label))
            continue
        disparity = depth if "focus" in options else None
        output = predict(model, photo[None], device="cpu", disparity=disparity, **options)
        panels.append(labelled(output.bokeh[0], label))
    columns = 4
    rows = -(-len(panels) // columns)
    sheet = Image.new("RGB", (columns * PANEL[0], rows * PANEL[1]), (255, 255, 255))
    for index, panel in enumerate(panels):
        sheet.paste(panel, ((index % columns) * PANEL[0], (index // columns) * PANEL[1]))
    sheet.save(args.output, quality=85, optimize=True)
    print(f"wrote {args.output} ({args.output.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
