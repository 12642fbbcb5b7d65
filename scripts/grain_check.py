"""Would grain help? A side-by-side on the real-lens pairs, the measurement behind leaving grain out.

    python scripts/grain_check.py [--pairs ../shared/real_lens/pairs.csv] [--model d2f-lite-2]

A blurred background loses the sensor noise that the sharp photo keeps. For each pair this renders the
photo with the focus and aperture hints of ``d2f eval --focus-hint --aperture``, then the same render
with the photo's own noise added where the fusion took the blurred rendering (noise level: the 10th
percentile over 32 px tiles of the standard deviation of the grey image minus its sigma-1 px Gaussian,
that is, its flattest tiles; one seeded Gaussian field). It compares the fine-detail level of the
background (the half of the tiles the lens blurred most) in the lens's photo, the render and the
render with grain: grain is worth adding only if it brings the render closer to the lens's photo.
"""

from __future__ import annotations

import sys

import numpy as np
import torch
from scipy import ndimage

from d2f.io import array_to_tensor, tensor_to_array
from d2f.metrics import tile_sharpness
from d2f.pipeline import predict
from d2f.real_lens.hints import pair_hints
from d2f.real_lens.pairs import load_pair
from lens_pairs_script import model_and_pairs

TILE = 32


def tile_noise(image: np.ndarray) -> np.ndarray:
    """Per 32 px tile, the standard deviation of the grey image minus its sigma-1 px Gaussian (0-255)."""
    grey = image.astype(np.float64).mean(axis=2)
    residual = grey - ndimage.gaussian_filter(grey, 1.0)
    rows, columns = residual.shape[0] // TILE, residual.shape[1] // TILE
    tiles = residual[: rows * TILE, : columns * TILE].reshape(rows, TILE, columns, TILE)
    return tiles.std(axis=(1, 3))


def main(argv: list[str] | None = None) -> int:
    started = model_and_pairs("grain_check", __doc__.split("\n\n")[0], argv)
    if isinstance(started, int):
        return started
    model, pairs = started
    torch.set_grad_enabled(False)
    closer = farther = 0
    for pair in pairs:
        loaded = load_pair(pair)
        input_sharpness, target_sharpness = tile_sharpness(loaded.image), tile_sharpness(loaded.target)
        hints, _ = pair_hints(loaded, input_sharpness, target_sharpness, focus=True, aperture=True)
        output = predict(model, array_to_tensor(loaded.image)[None], **hints)
        sigma = float(np.percentile(tile_noise(loaded.image), 10)) / 255
        noise = torch.randn(output.bokeh.shape[-2:], generator=torch.Generator().manual_seed(0)) * sigma
        grained = (output.bokeh[0] + (1 - output.fusion_mask[0, 0]) * noise).clamp(0, 1)
        change = np.log((target_sharpness + 1e-4) / (input_sharpness + 1e-4))
        background = change <= np.percentile(change, 50)
        target, render, with_grain = (
            float(tile_noise(image)[background].mean())
            for image in (loaded.target, tensor_to_array(output.bokeh[0]), tensor_to_array(grained))
        )
        gap, grain_gap = abs(np.log(render / target)), abs(np.log(with_grain / target))
        closer += grain_gap < gap - 0.05
        farther += grain_gap > gap + 0.05
        print(f"{pair.name:18s} lens {target:5.2f}  render {render:5.2f}  with grain {with_grain:5.2f}")
    print(f"grain brings the background closer to the lens's photo on {closer} pairs, farther on {farther} "
          f"(of {len(pairs)}; a change of the log ratio under 0.05 counts as neither)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
