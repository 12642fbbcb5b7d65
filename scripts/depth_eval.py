"""How well models that predict depth rank held-out scenes (real RGB-D or synthetic); prints a table.

For every held-out scene (``d2f.data.rgbd``'s ``holdout`` split of ``../shared/rgbd``: every tenth
RGB-D-D pair and two Middlebury 2014 scenes; or the held-out photos of an RGB-D cache written by
``scripts/cache_rgbd.py``; or, with ``--synthetic COUNT``, synthetic scenes with exact disparity that
training never drew: the depth config's mix, half of them perspective scenes, with seed
``data.seed + 1`` = 9001, at 512x768), each model renders the photo and its ``D2FOutput.disparity`` is
upsampled (bilinear) to the photo's size and compared with the true disparity
(:func:`d2f.train.depth.depth_metrics`): Spearman's rank correlation, and AbsRel and the share within
1.25x after scale-and-shift alignment. The prior "lower in the frame is nearer" (disparity = row index)
is the baseline row.

    PYTHONPATH=src python scripts/depth_eval.py --weights runs/lite2/model --root ../shared/rgbd
    PYTHONPATH=src python scripts/depth_eval.py --weights runs/lite2/model --cache cache/rgbd
    PYTHONPATH=src python scripts/depth_eval.py --weights runs/lite2/model --synthetic 32
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from d2f.errors import D2FError
from d2f.models import load_pretrained
from d2f.train.depth import depth_metrics
from d2f.train.rgbd_cache import RGBDCacheDataset

METRICS = ("spearman", "absrel", "delta1")

#: The held-out synthetic scenes: configs/lite2_depth.yaml's mix drawn with its data.seed + 1.
SYNTHETIC_SEED = 9001
SYNTHETIC_SIZE = (512, 768)
SYNTHETIC_PERSPECTIVE_PROBABILITY = 0.5
SYNTHETIC_KERNEL_SCALE = 0.6


def held_out_scenes(
    root: Path | None, cache: Path | None, synthetic: int | None = None
) -> Iterator[tuple[str, torch.Tensor, torch.Tensor]]:
    """``(name, photo (3, H, W) in [0, 1], disparity (1, H, W))`` of each held-out scene."""
    if synthetic is not None:
        from d2f.data import SyntheticBokehDataset

        scenes = SyntheticBokehDataset(
            synthetic,
            SYNTHETIC_SIZE,
            seed=SYNTHETIC_SEED,
            kernel_scale=SYNTHETIC_KERNEL_SCALE,
            perspective_probability=SYNTHETIC_PERSPECTIVE_PROBABILITY,
        )
        for index, scene in enumerate(scenes):
            kind = "perspective" if scenes.is_perspective(index) else "layered"
            yield f"{scene['name']} ({kind})", scene["image"], scene["disparity"]
        return
    if cache is not None:
        dataset = RGBDCacheDataset(cache, "holdout", size=None, random=False)
        for index in range(len(dataset)):
            item = dataset[index]
            yield item["name"], item["image"], item["disparity"]
        return
    from d2f.data.rgbd import RGBDBokehDataset, load_rgbd

    for pair in RGBDBokehDataset(root, "holdout", size=None, skip_bad=True).pairs:
        photo, disparity = load_rgbd(pair.source, pair.rgb, pair.depth)
        yield pair.name, photo.float() / 255, disparity


def row_prior(disparity: torch.Tensor) -> torch.Tensor:
    """The prior "lower in the frame is nearer": each pixel's disparity is its row index."""
    height, width = disparity.shape[-2:]
    rows = torch.arange(height, dtype=torch.float32)[:, None].expand(height, width)
    return rows[None].clone()


@torch.inference_mode()
def predicted_disparity(model, photo: torch.Tensor) -> torch.Tensor:
    """The model's disparity (1, H, W) for a photo (3, H, W), upsampled to the photo's size."""
    output = model(photo[None])
    if output.disparity is None:
        raise SystemExit("depth_eval: this model predicts defocus, not depth")
    return F.interpolate(output.disparity.float(), size=photo.shape[-2:], mode="bilinear")[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--weights", type=Path, action="append", default=[], help="a saved model (repeatable)"
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--root", type=Path, default=Path("../shared/rgbd"), help="the RGB-D folder")
    source.add_argument("--cache", type=Path, help="an RGB-D cache instead (its held-out photos)")
    source.add_argument("--synthetic", type=int, metavar="COUNT", help="held-out synthetic scenes instead")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    try:
        models = {path.name if path.name != "model" else str(path): load_pretrained(path).to(args.device)
                  for path in args.weights}
        columns = ["row prior", *models]
        results: dict[str, dict[str, list[float]]] = {column: {m: [] for m in METRICS} for column in columns}
        header = f"{'scene':32s}" + "".join(f" | {column[-24:]:>24s}" for column in columns)
        print(f"Spearman / AbsRel / delta<1.25 per held-out scene (AbsRel, delta after alignment)\n{header}")
        for name, photo, disparity in held_out_scenes(args.root, args.cache, args.synthetic):
            predictions = {"row prior": row_prior(disparity)}
            for column, model in models.items():
                predictions[column] = predicted_disparity(model, photo.to(args.device)).cpu()
            cells = []
            for column in columns:
                values = depth_metrics(predictions[column][None], disparity[None].float())
                for metric in METRICS:
                    results[column][metric].append(float(values[metric][0]))
                cells.append(" / ".join(f"{results[column][m][-1]:5.2f}" for m in METRICS))
            print(f"{name[:32]:32s}" + "".join(f" | {cell:>24s}" for cell in cells))
    except D2FError as error:
        print(f"depth_eval: {error}", file=sys.stderr)
        return 1
    count = len(results["row prior"]["spearman"])
    means = [" / ".join(f"{np.mean(results[column][m]):5.2f}" for m in METRICS) for column in columns]
    print(f"{f'mean over {count} scenes':32s}" + "".join(f" | {cell:>24s}" for cell in means))
    return 0


if __name__ == "__main__":
    sys.exit(main())
