"""Speed and peak memory of the renderer's backends.

For each size, renders one image with each backend and prints the median time, the direct/fft ratio
(measured in this one run) and the peak memory. Two defocus maps: ``scene`` is depth-like (a ground
plane receding to a blurred background, an in-focus subject), as a defocus network predicts;
``noise`` is uniform random defocus, the worst case for the FFT backend's cropping since every level
covers the whole frame.

    python benchmarks/render.py                 # CPU, 512x768 and 1024x1536
    python benchmarks/render.py --device cuda   # GPU (fp32)
    python benchmarks/render.py --device cuda --graph   # ... and the fft render replayed as a CUDA graph
    python benchmarks/render.py --device cuda --direct-max-sizes 7 11 15   # GPU: direct-level thresholds
    python benchmarks/render.py --device cuda --profile   # where the time of a 1024x1536 fft render goes
    python benchmarks/render.py --shapes        # aperture shapes and cat's eye against the round disk

Peak memory on the CPU is the peak resident set of a fresh process that renders once (so it includes
PyTorch itself); on CUDA it is ``torch.cuda.max_memory_allocated``.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import torch

from d2f.render import Aperture, backends, weighted_layered_render
from timing import graph_replay_seconds

SIZES = ((512, 768), (1024, 1536))


def make_inputs(height: int, width: int, defocus_kind: str, device: str):
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, height, width, generator=generator)
    weight = torch.rand(1, 3, height, width, generator=generator) + 0.2
    if defocus_kind == "noise":
        defocus = torch.rand(1, 1, height, width, generator=generator)
    else:
        rows = torch.linspace(0, 1, height).view(height, 1)
        columns = torch.linspace(0, 1, width).view(1, width)
        ground = (1 - rows) * 0.9 + 0.05 * torch.sin(columns * 12)  # far at the top, near at the bottom
        subject = ((rows - 0.55) / 0.3) ** 2 + ((columns - 0.5) / 0.18) ** 2 < 1
        defocus = (
            torch.where(subject, torch.zeros_like(ground), ground).clamp(0, 1).expand(1, 1, height, width)
        )
    return [tensor.contiguous().to(device) for tensor in (image, defocus, weight)]


def time_render(
    height, width, defocus_kind, backend, device, repeats, aperture=None, cats_eye=0.0
) -> float:
    image, defocus, weight = make_inputs(height, width, defocus_kind, device)
    times = []
    with torch.inference_mode():
        for _ in range(repeats + (1 if device == "cuda" else 0)):
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            weighted_layered_render(
                image, defocus, weight, backend=backend, aperture=aperture, cats_eye=cats_eye
            )
            if device == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
    return statistics.median(times[1:] if device == "cuda" else times)


def time_graph_replay(height, width, defocus_kind, repeats) -> float:
    """Median time of replaying a CUDA graph of the fft render (no Python, no launches, no checks)."""
    image, defocus, weight = make_inputs(height, width, defocus_kind, "cuda")
    render = lambda: weighted_layered_render(image, defocus, weight, backend="fft")  # noqa: E731
    return graph_replay_seconds(render, repeats)


def direct_threshold_sweep(sizes: list[int], repeats: int) -> None:
    """Graph-replay time of the fft render with each ``BATCHED_DIRECT_MAX_SIZE`` (the nearest levels with
    kernels up to it are convolved directly, the others transformed), on the depth-like map."""
    default = backends.BATCHED_DIRECT_MAX_SIZE
    print(f"GPU direct-level threshold (default {default}), fft render replayed as a CUDA graph:")
    try:
        for height, width in SIZES:
            for size in sizes:
                backends.BATCHED_DIRECT_MAX_SIZE = size
                seconds = time_graph_replay(height, width, "scene", repeats)
                print(f"{height}x{width:<5} kernels <= {size:2d} px direct: {seconds * 1e3:6.3f} ms")
    finally:
        backends.BATCHED_DIRECT_MAX_SIZE = default


def profile_render(device: str, renders: int = 5) -> None:
    """The kernels (CUDA) or operators (CPU) that take most of the time of eager 1024x1536 fft renders."""
    from torch.profiler import ProfilerActivity, profile

    image, defocus, weight = make_inputs(1024, 1536, "scene", device)
    activity = ProfilerActivity.CUDA if device == "cuda" else ProfilerActivity.CPU
    with torch.inference_mode():
        for _ in range(2):  # warm-up: allocator, FFT plans
            weighted_layered_render(image, defocus, weight, backend="fft")
        with profile(activities=[activity]) as profiler:
            for _ in range(renders):
                weighted_layered_render(image, defocus, weight, backend="fft")
            if device == "cuda":
                torch.cuda.synchronize()
    print(f"{renders} eager fft renders of 1024x1536 (depth-like map); divide the totals by {renders}:")
    sort_by = "self_cuda_time_total" if device == "cuda" else "self_cpu_time_total"
    print(profiler.key_averages().table(sort_by=sort_by, row_limit=18, max_name_column_width=60))


#: The lens looks timed by ``--shapes``: (label, aperture, cat's eye strength).
SHAPES = (
    ("round disk", None, 0.0),
    ("hexagon", Aperture(6), 0.0),
    ("pentagon, curved 0.3, turned 20", Aperture(5, 20.0, 0.3), 0.0),
    ("round, cat's eye 1", None, 1.0),
    ("hexagon, cat's eye 1", Aperture(6), 1.0),
)


def shape_costs(device: str, repeats: int, defocus_kinds: list[str]) -> None:
    """Time of the fft render of each lens look at 1024x1536, and its ratio to the round disk's.

    The looks are timed in turn, ``repeats`` rounds, and each keeps its fastest time: on a machine
    shared with other jobs the load drifts, and the fastest of interleaved runs compares like with like.
    """
    height, width = 1024, 1536
    for defocus_kind in defocus_kinds:
        best = [float("inf")] * len(SHAPES)
        for _ in range(repeats):
            for index, (_, aperture, cats_eye) in enumerate(SHAPES):
                seconds = time_render(height, width, defocus_kind, "fft", device, 1, aperture, cats_eye)
                best[index] = min(best[index], seconds)
        for (label, _, _), value in zip(SHAPES, best, strict=True):
            print(f"{height}x{width} {defocus_kind:>6} {label:<34} {value:8.3f} s  {value / best[0]:5.2f}x")


def peak_memory_mb(height, width, defocus_kind, backend, device) -> float:
    """Peak memory of one render, measured in a fresh process."""
    if device == "cuda":
        image, defocus, weight = make_inputs(height, width, defocus_kind, device)
        torch.cuda.reset_peak_memory_stats()
        with torch.inference_mode():
            weighted_layered_render(image, defocus, weight, backend=backend)
        return torch.cuda.max_memory_allocated() / 2**20
    command = [sys.executable, __file__, "--child", json.dumps([height, width, defocus_kind, backend])]
    return float(subprocess.run(command, check=True, capture_output=True, text=True).stdout)


def child(arguments: str) -> None:
    height, width, defocus_kind, backend = json.loads(arguments)
    image, defocus, weight = make_inputs(height, width, defocus_kind, "cpu")
    with torch.inference_mode():
        weighted_layered_render(image, defocus, weight, backend=backend)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per case (median)")
    parser.add_argument("--defocus", nargs="+", default=["scene", "noise"], choices=["scene", "noise"])
    parser.add_argument("--graph", action="store_true", help="CUDA: also time a CUDA graph of the fft render")
    parser.add_argument(
        "--direct-max-sizes",
        type=int,
        nargs="+",
        metavar="PX",
        help="CUDA: only time graph replays with each of these direct-level thresholds",
    )
    parser.add_argument("--profile", action="store_true", help="only profile eager 1024x1536 fft renders")
    parser.add_argument(
        "--shapes", action="store_true", help="only time aperture shapes and cat's eye against the round disk"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    if args.direct_max_sizes and args.device != "cuda":
        parser.error("--direct-max-sizes: the thresholds apply to the GPU path; pass --device cuda")
    where = (
        torch.cuda.get_device_name() if args.device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    )
    print(f"d2f renderer benchmark on {where}, torch {torch.__version__}, float32")
    if args.direct_max_sizes:
        direct_threshold_sweep(args.direct_max_sizes, args.repeats)
        return
    if args.profile:
        profile_render(args.device)
        return
    if args.shapes:
        shape_costs(args.device, args.repeats, args.defocus)
        return
    header = ("size", "defocus", "direct s", "fft s", "ratio", "peak MB direct", "peak MB fft")
    print("{:>10} {:>8} {:>9} {:>8} {:>6} {:>15} {:>12}".format(*header))
    for height, width in SIZES:
        for defocus_kind in args.defocus:
            timings = {
                b: time_render(height, width, defocus_kind, b, args.device, args.repeats)
                for b in ("direct", "fft")
            }
            memory = {
                b: peak_memory_mb(height, width, defocus_kind, b, args.device) for b in ("direct", "fft")
            }
            graph = ""
            if args.graph and args.device == "cuda":
                replay = time_graph_replay(height, width, defocus_kind, args.repeats)
                graph = f"   fft as a CUDA graph {replay:.4f}"
            print(
                f"{height}x{width:<5} {defocus_kind:>8} {timings['direct']:9.4f} {timings['fft']:8.4f} "
                f"{timings['direct'] / timings['fft']:6.1f} {memory['direct']:15.0f} {memory['fft']:12.0f}"
                f"{graph}",
                flush=True,
            )


if __name__ == "__main__":
    main()
