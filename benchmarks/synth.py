"""Throughput of the synthetic scene generators (``d2f.data.generate_scene``, ``--layout perspective``:
``generate_perspective_scene``): scenes per second.

Each scene is generated and rendered in full (textures, shapes, lights, the all-in-focus photo, the
ground-truth bokeh and every map), exactly as ``SyntheticBokehDataset`` items are; nothing is written.
Scenes ``[seed, i]`` for i < count, so every configuration sees the same scenes.

Configurations:
- ``in-process``: one process with torch's default threads (on the CPU, one thread per core).
- ``workers``: K spawned processes with one thread each, as a DataLoader with K workers feeds
  training; the wall-clock rate of all of them together.

Besides the wall-clock rate, each line gives the CPU seconds per scene; on a machine shared with
other jobs the wall clock suffers first.

    python benchmarks/synth.py                       # CPU, 512x768, 16 scenes
    python benchmarks/synth.py --device cuda         # GPU rendering
    python benchmarks/synth.py --textures textures   # training's texture folder (decoded once per process)
    python benchmarks/synth.py --layout perspective --workers 2   # perspective scenes (target: >= 2/s)
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor

import torch

from d2f.data.perspective import generate_perspective_scene
from d2f.data.synthetic import generate_scene
from d2f.data.textures import TextureBank


def _generate(
    indices: list[int],
    seed: int,
    size: tuple[int, int],
    device: str,
    threads: int | None,
    folder: str | None,
    layout: str = "classic",
):
    """Generate scenes; returns the CPU seconds this process used (textures decoded on first use)."""
    if threads is not None:
        torch.set_num_threads(threads)
    textures = TextureBank.from_folder(folder) if folder else TextureBank.builtin()
    generate = generate_perspective_scene if layout == "perspective" else generate_scene
    start = time.process_time()
    for index in indices:
        scene = generate([seed, index], size, textures, device=device)
        if device != "cpu":
            torch.cuda.synchronize()
        del scene
    return time.process_time() - start


def in_process(
    count: int, seed: int, size, device: str, folder: str | None, layout: str
) -> tuple[float, float]:
    _generate([count], seed + 1, size, device, None, folder, layout)  # warm-up: imports, FFT plans
    start = time.perf_counter()
    cpu = _generate(list(range(count)), seed, size, device, None, folder, layout)
    return count / (time.perf_counter() - start), cpu / count


def with_workers(
    count: int, seed: int, size, device: str, workers: int, folder: str | None, layout: str
) -> tuple[float, float]:
    context = multiprocessing.get_context("spawn")
    shares = [list(range(worker, count, workers)) for worker in range(workers)]
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        # Warm-up in every worker first, so that process start-up is not timed.
        list(pool.map(_generate, [[count + worker] for worker in range(workers)], [seed + 1] * workers,
                      [size] * workers, [device] * workers, [1] * workers, [folder] * workers,
                      [layout] * workers))
        start = time.perf_counter()
        cpu = sum(pool.map(_generate, shares, [seed] * workers, [size] * workers, [device] * workers,
                           [1] * workers, [folder] * workers, [layout] * workers))
        elapsed = time.perf_counter() - start
    return count / elapsed, cpu / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="512x768", help="HxW (default: 512x768)")
    parser.add_argument("--count", type=int, default=16, help="scenes per configuration (default: 16)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="processes of the workers configuration (default: one per core)")
    parser.add_argument("--layout", default="classic", choices=("classic", "perspective"),
                        help="scene layout (default: classic)")
    parser.add_argument("--textures", metavar="DIR",
                        help="texture folder, as training's data.textures (default: scikit-image's photos)")
    args = parser.parse_args()
    height, width = (int(side) for side in args.size.lower().split("x"))
    size = (height, width)
    where = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"{os.cpu_count()}-core CPU"
    print(f"{args.layout} synthetic scenes {height}x{width}, {args.count} scenes, {where}, "
          f"torch {torch.__version__}, load average {os.getloadavg()[0]:.1f}")
    rate, cpu = in_process(args.count, args.seed, size, args.device, args.textures, args.layout)
    print(f"  in-process ({torch.get_num_threads()} threads): {rate:.2f} scenes/s, {cpu:.2f} CPU s/scene")
    if args.device == "cpu" and args.workers > 1:
        rate, cpu = with_workers(args.count, args.seed, size, args.device, args.workers, args.textures,
                                 args.layout)
        print(f"  {args.workers} workers x 1 thread: {rate:.2f} scenes/s, {cpu:.2f} CPU s/scene")


if __name__ == "__main__":
    main()
