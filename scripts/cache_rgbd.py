"""Write a compact copy of the RGB-D photos for training away from ``../shared/rgbd`` (a GPU machine).

Every pair that :class:`d2f.data.RGBDBokehDataset` reads (its ``train`` and ``holdout`` splits, depth
converted to filled disparity by :func:`d2f.data.rgbd.load_rgbd`) is shrunk to a longer side of at
most ``--long-side`` and stored as JPEG (quality 90) + 16-bit PNG disparity with an ``index.json``
(format: :mod:`d2f.train.rgbd_cache`). The training config reads it as ``data.root``. Nothing of it
is committed (``cache/`` is ignored): the photos are not ours to redistribute.

    PYTHONPATH=src python scripts/cache_rgbd.py --root ../shared/rgbd --out cache/rgbd
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from d2f.errors import D2FError
from d2f.train.rgbd_cache import INDEX_NAME, write_cache_entry, write_cache_index


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("../shared/rgbd"), help="the RGB-D folder")
    parser.add_argument("--out", type=Path, default=Path("cache/rgbd"), help="the cache folder to write")
    parser.add_argument("--long-side", type=int, default=384, help="longer side of the stored photos")
    args = parser.parse_args(argv)
    try:
        from d2f.data.rgbd import RGBDBokehDataset, load_rgbd
    except ImportError:
        print("cache_rgbd: this d2f has no d2f.data.rgbd (the RGB-D dataset)", file=sys.stderr)
        return 1
    if args.out.exists():
        shutil.rmtree(args.out)  # a fresh copy: no photo of an older cache stays behind
    args.out.mkdir(parents=True)
    entries = []
    try:
        for split in ("train", "holdout"):
            pairs = RGBDBokehDataset(args.root, split, size=None, skip_bad=True).pairs
            for pair in pairs:
                photo, disparity = load_rgbd(pair.source, pair.rgb, pair.depth)
                names = write_cache_entry(
                    args.out,
                    len(entries),
                    photo.permute(1, 2, 0).numpy(),
                    disparity[0].numpy(),
                    args.long_side,
                )
                entries.append({"name": pair.name, "split": split, **names})
    except D2FError as error:
        print(f"cache_rgbd: {error}", file=sys.stderr)
        return 1
    write_cache_index(args.out, entries)
    size = sum(path.stat().st_size for path in args.out.iterdir())
    holdout = sum(entry["split"] == "holdout" for entry in entries)
    print(
        f"{args.out}: {len(entries) - holdout} training + {holdout} held-out photos, "
        f"{size / 2**20:.1f} MiB ({INDEX_NAME} last)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
