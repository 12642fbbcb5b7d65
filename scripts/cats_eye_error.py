"""The error of the cat's eye's zone approximation: how much of each pixel's kernel is misplaced.

    python scripts/cats_eye_error.py                  # stage 1 of a 1024x1536 photo, strength 1 and 2

The renderer cuts the frame into CATS_EYE_ZONES x CATS_EYE_ZONES zones, each rendered with the kernel of
its centre and cross-faded into its neighbours (d2f.render.layered). At each pixel the kernel it gets
is therefore the blend of the zones' kernels by their weights there, while the exact cat's eye would use
the kernel of that pixel's own position. This prints, for the largest kernel (69 px), the share of the
light that the blend puts where the exact kernel would not (half the L1 distance of the two normalised
kernels: 0 identical, 1 disjoint), as the mean over the frame, its 95th percentile and its maximum.
"""

from __future__ import annotations

import argparse

import torch

from d2f.render import layered
from d2f.render.kernels import KERNEL_SIZES, Aperture, aperture_kernel
from d2f.render.layered import _MAX_CATS_EYE_SHIFT, CATS_EYE_SHIFT, _zone_weights


def clip_at(x: float, y: float, height: int, width: int, strength: float) -> tuple[float, float]:
    """The clip of the exact cat's eye at pixel (x, y), as the renderer computes it for a zone centre."""
    half_diagonal = 0.5 * (height**2 + width**2) ** 0.5
    shift = strength * CATS_EYE_SHIFT / half_diagonal
    clip_x, clip_y = (x - width / 2) * shift, (y - height / 2) * shift
    length = (clip_x**2 + clip_y**2) ** 0.5
    if length > _MAX_CATS_EYE_SHIFT:
        clip_x, clip_y = clip_x * _MAX_CATS_EYE_SHIFT / length, clip_y * _MAX_CATS_EYE_SHIFT / length
    return clip_x, clip_y


def errors(height: int, width: int, strength: float, size: int, step: int) -> torch.Tensor:
    like = torch.zeros((), dtype=torch.float64)
    rows, columns = _zone_weights(height, like), _zone_weights(width, like)
    zone_kernels = {
        (i, j): aperture_kernel(size, Aperture().with_clip(clip_at(cx, cy, height, width, strength)),
                                dtype=torch.float64)
        for i, (_, _, cy) in enumerate(rows) for j, (_, _, cx) in enumerate(columns)
    }
    result = []
    for y in range(0, height, step):
        for x in range(0, width, step):
            blend = torch.zeros(size, size, dtype=torch.float64)
            for i, (span_y, weight_y, _) in enumerate(rows):
                for j, (span_x, weight_x, _) in enumerate(columns):
                    if span_y[0] <= y < span_y[1] and span_x[0] <= x < span_x[1]:
                        weight = weight_y[y - span_y[0]] * weight_x[x - span_x[0]]
                        blend += weight * zone_kernels[i, j]
            exact_clip = clip_at(x + 0.5, y + 0.5, height, width, strength)
            exact = aperture_kernel(size, Aperture().with_clip(exact_clip), dtype=torch.float64)
            result.append(0.5 * float((blend - exact).abs().sum()))
    return torch.tensor(result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, nargs=2, default=(512, 768), metavar=("H", "W"),
                        help="stage 1's size (default 512 768: a 1024x1536 photo)")
    parser.add_argument("--step", type=int, default=16, help="pixels between the sampled positions")
    parser.add_argument("--zones", type=int, help="zones a side to try (default: the renderer's)")
    args = parser.parse_args()
    if args.zones is not None:
        layered.CATS_EYE_ZONES = args.zones
    size = KERNEL_SIZES[-1]
    for strength in (0.5, 1.0, 2.0):
        values = errors(*args.size, strength, size, args.step)
        print(
            f"cat's eye {strength:g}, {size} px kernel, {args.size[0]}x{args.size[1]}, "
            f"{layered.CATS_EYE_ZONES} zones a side: misplaced light mean {values.mean():.3f}, "
            f"95th percentile {values.quantile(0.95):.3f}, max {values.max():.3f}"
        )


if __name__ == "__main__":
    main()
