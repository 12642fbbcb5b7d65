"""Give a depth model its blur-range head: fit it on the RGB-D photos with metric depth, save the model.

    PYTHONPATH=src python scripts/fit_blur_range.py --model runs/lite2/model --out runs/lite2_range

The head (:mod:`d2f.train.blur_range`) predicts each photo's disparity range in 1/m from the defocus
network's pooled features. It is fitted on the ``train`` split of the sources of ``../shared/rgbd``
whose depth is metric (RGB-D-D, NYU, KITTI LiDAR, the orchard, ...); the ridge penalty is the one of
the grid 10^-3 .. 10^3 with the lowest mean absolute log error in 5-fold cross-validation (a rule
written before the fit). The held-out split (every tenth RGB-D-D photo) is reported, never used.
Takes about two minutes on the 2-core CPU.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from d2f.data.rgbd import SOURCES, RGBDBokehDataset, load_rgbd
from d2f.errors import D2FError
from d2f.models import load
from d2f.train.blur_range import (
    cross_validate,
    disparity_range,
    fit_ridge,
    photo_features,
    predict_ridge,
    with_range_head,
)

PENALTIES = tuple(10.0**k for k in range(-3, 4))


def metric_photos(root: Path, split: str, model) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Features (M, F), log disparity ranges (M,) and names of a split's photos with metric depth."""
    sources = [source.name for source in SOURCES if source.metres is not None]
    dataset = RGBDBokehDataset(root, split, size=None, sources=sources, skip_bad=True)
    features, targets, names = [], [], []
    for pair in dataset.pairs:
        photo, disparity = load_rgbd(pair.source, pair.rgb, pair.depth)
        features.append(photo_features(model, photo.float() / 255).numpy())
        targets.append(np.log(disparity_range(disparity)))
        names.append(pair.name)
    return np.stack(features), np.array(targets), names


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="d2f-lite-2", help="a depth model: bundled name or folder")
    parser.add_argument("--root", type=Path, default=Path("../shared/rgbd"), help="the RGB-D folder")
    parser.add_argument("--out", type=Path, required=True, help="folder to save the model with its head")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    try:
        model = load(args.model)
        train_x, train_y, train_names = metric_photos(args.root, "train", model)
        held_x, held_y, _ = metric_photos(args.root, "holdout", model)
        sources = sorted({name.split("/")[0] for name in train_names})
        print(f"{len(train_y)} training photos with metric depth ({', '.join(sources)}), "
              f"{len(held_y)} held out")
        errors = cross_validate(train_x, train_y, PENALTIES)
        for penalty, error in errors.items():
            print(f"penalty {penalty:<7g} 5-fold mean |log error| {error:.3f}")
        penalty = min(errors, key=errors.get)
        fit = fit_ridge(train_x, train_y, penalty)
        held_error = float(np.abs(predict_ridge(fit, held_x) - held_y).mean())
        constant_error = float(np.abs(train_y.mean() - held_y).mean())
        print(f"chosen penalty {penalty:g}; held-out mean |log error| {held_error:.3f} "
              f"(one constant for every photo: {constant_error:.3f})")
        with_range_head(model, fit).save_pretrained(args.out)
    except D2FError as error:
        print(f"fit_blur_range: {error}", file=sys.stderr)
        return error.exit_code
    print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
