"""The orientation check of d2f-lite-2's depth recipe: is near large in the trained disparity?

    python scripts/orient_model.py runs/lite2/model --cache cache/rgbd --out runs/lite2/oriented

The depth stage's sign-aware losses should leave it so (the shipped run: kept as it was); this applies
the rule of :func:`d2f.train.depth.orient_disparity` on the first ``--items`` photos of the RGB-D
cache's *training* split (central crops; never held-out photos) and saves the model, flipped or not, to
``--out``.
"""

from __future__ import annotations

import argparse
import sys
from itertools import islice
from pathlib import Path

from d2f.models import load_pretrained
from d2f.train.depth import orient_disparity
from d2f.train.rgbd_cache import RGBDCacheDataset


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="a folder written by save_pretrained")
    parser.add_argument("--cache", type=Path, default=Path("cache/rgbd"), help="the RGB-D cache")
    parser.add_argument("--items", type=int, default=32, help="training photos the rule looks at")
    parser.add_argument("--out", type=Path, required=True, help="where to save the oriented model")
    args = parser.parse_args()
    model = load_pretrained(args.model)
    items = RGBDCacheDataset(args.cache, "train", size=(288, 384), random=False)
    flipped = orient_disparity(model, islice(iter(items), args.items))
    model.save_pretrained(args.out)
    print(f"{args.out}: disparity {'flipped' if flipped else 'kept as it was'} "
          f"(rule: mean Spearman on {args.items} training photos)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
