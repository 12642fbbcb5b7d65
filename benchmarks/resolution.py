"""Does a model give the same look at any resolution? The same photo at 1.5 MP and at 12 MP.

    python benchmarks/resolution.py [--model d2f-lite-2] [--photo PATH]

Renders the photo resized to 1.5 MP and to 12 MP, brings the 12 MP result back to 1.5 MP, and compares
the background blur of the two: the factor by which each output divided the sharpness of the textured
tiles (:func:`d2f.metrics.tile_sharpness`, 32 px tiles; the half of the tiles blurred most at 1.5 MP,
the background). A model whose blur is a fraction of the image gives a ratio near 1 (target: within
10 %); one whose blur is in pixels blurs the 12 MP photo about a third as much. The photo is the
real-lens set's RealBokeh f/22 photo where ``../shared`` has it, else the bundled sample.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from d2f.cli.demo import SAMPLE_PHOTO
from d2f.io import read_image, tensor_to_array
from d2f.metrics import sharpness_change, textured_tiles, tile_sharpness
from d2f.models import load
from d2f.pipeline import predict

SHARED_PHOTO = Path(__file__).resolve().parents[2] / "shared" / "real_lens" / "realbokeh" / "866" / "f22.jpg"
MEGAPIXELS = (1.5, 12.0)


def resized(image: torch.Tensor, megapixels: float) -> torch.Tensor:
    height, width = image.shape[-2:]
    scale = (megapixels * 1e6 / (height * width)) ** 0.5
    size = (round(height * scale), round(width * scale))
    return F.interpolate(image, size=size, mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="d2f-lite-2", help="a bundled name or a save_pretrained folder")
    default_photo = SHARED_PHOTO if SHARED_PHOTO.is_file() else SAMPLE_PHOTO
    parser.add_argument("--photo", type=Path, default=default_photo, help="the photo to render")
    args = parser.parse_args()
    model = load(args.model)
    photo = read_image(args.photo).unsqueeze(0)
    small = resized(photo, MEGAPIXELS[0])
    outputs = {}
    with torch.inference_mode():
        for megapixels in MEGAPIXELS:
            bokeh = predict(model, resized(photo, megapixels)).bokeh
            outputs[megapixels] = F.interpolate(
                bokeh, size=small.shape[-2:], mode="bilinear", antialias=True, align_corners=False
            )
    sharp = tile_sharpness(tensor_to_array(small[0]))
    background = textured_tiles(sharp)
    changes = {
        megapixels: sharpness_change(tile_sharpness(tensor_to_array(output[0].clamp(0, 1))), sharp)
        for megapixels, output in outputs.items()
    }
    order = np.argsort(changes[MEGAPIXELS[0]][background])
    tiles = np.flatnonzero(background.ravel())[order[: max(1, len(order) // 2)]]
    blur = {megapixels: float(np.exp(-changes[megapixels].ravel()[tiles].mean())) for megapixels in changes}
    print(f"{args.model} on {args.photo.name}: background blur (input sharpness / output sharpness, "
          f"{len(tiles)} tiles)")
    for megapixels in MEGAPIXELS:
        print(f"  {megapixels:g} MP: {blur[megapixels]:.3f}")
    print(f"  ratio 12 MP / 1.5 MP: {blur[MEGAPIXELS[1]] / blur[MEGAPIXELS[0]]:.3f}")


if __name__ == "__main__":
    main()
