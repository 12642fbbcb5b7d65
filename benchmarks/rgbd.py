"""Throughput of ``d2f.data.RGBDBokehDataset``: items per second, as a training DataLoader sees them.

Each item is decoded (first pass only: decoded photos and filled disparity maps are cached per
process), zoomed, cropped, focused and rendered with the layered scene renderer. The first pass over
the items is timed with cold caches, the second with warm ones.

Configurations:
- ``in-process``: one process, torch's default threads.
- ``workers``: a DataLoader with K worker processes of one thread each (persistent, so the second pass
  finds their caches warm).

    python benchmarks/rgbd.py --root ../shared/rgbd                     # 384x512, 48 items
    python benchmarks/rgbd.py --root ../shared/rgbd --size 256x384 --workers 2
"""

from __future__ import annotations

import argparse
import os
import time

import torch
from torch.utils.data import DataLoader, Subset

from d2f.data import RGBDBokehDataset


def _one_thread(_: int) -> None:
    torch.set_num_threads(1)


def timed_passes(dataset, workers: int) -> tuple[float, float]:
    """Items per second of a cold and a warm pass over ``dataset``."""
    rates = []
    if workers == 0:
        for _ in range(2):
            start = time.perf_counter()
            for index in range(len(dataset)):
                dataset[index]
            rates.append(len(dataset) / (time.perf_counter() - start))
        return rates[0], rates[1]
    loader = DataLoader(dataset, batch_size=1, num_workers=workers, persistent_workers=True,
                        worker_init_fn=_one_thread, collate_fn=lambda items: items)
    iterator = iter(loader)
    next(iterator)  # worker start-up is not timed
    start = time.perf_counter()
    for _ in iterator:
        pass
    rates.append((len(dataset) - 1) / (time.perf_counter() - start))
    start = time.perf_counter()
    for _ in loader:
        pass
    rates.append(len(dataset) / (time.perf_counter() - start))
    return rates[0], rates[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", required=True, help="the RGB-D folder (../shared/rgbd)")
    parser.add_argument("--size", default="384x512", help="HxW of the items (default: 384x512)")
    parser.add_argument("--count", type=int, default=48, help="items per pass (default: 48)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="DataLoader workers of the workers configuration (default: one per core)")
    args = parser.parse_args()
    height, width = (int(side) for side in args.size.lower().split("x"))
    dataset = RGBDBokehDataset(args.root, "train", size=(height, width))
    # Spread over every source: every n-th pair of the training split.
    step = max(1, len(dataset) // args.count)
    subset = Subset(dataset, range(0, len(dataset), step)[: args.count])
    print(f"RGB-D items {height}x{width}, {len(subset)} of {len(dataset)} training pairs, "
          f"{os.cpu_count()}-core CPU, torch {torch.__version__}, load average {os.getloadavg()[0]:.1f}")
    cold, warm = timed_passes(subset, 0)
    print(f"  in-process ({torch.get_num_threads()} threads): {cold:.2f} items/s cold, {warm:.2f} warm")
    if args.workers > 0:
        cold, warm = timed_passes(subset, args.workers)
        print(f"  {args.workers} workers x 1 thread: {cold:.2f} items/s cold, {warm:.2f} warm")


if __name__ == "__main__":
    main()
