"""Speed and memory of the whole D2F pipeline (``d2f.D2F``), with the official architecture.

    python benchmarks/pipeline.py [--runs 5] [--skip-12mp]

Prints, on the CPU at 1024x1536: the median end-to-end time and its split (defocus network,
radiance network + renderer, full-resolution fusion); the peak resident memory of rendering one
1024x1536 and one 3000x4000 (12 MP) photo, each measured in a fresh subprocess (VmHWM); and, when CUDA
is available, fp32 and bf16 timings at 1024x1536 with the largest difference between the two.
Targets (issue 3): CPU 1024x1536 at most 4 s and under 3 GB; 12 MP within 8 GB; H100 fp32 at most
15 ms, bf16 at most 8 ms.

The renderer's cost depends on the defocus map (it skips and crops levels that the map leaves empty),
so the input is a real photo (an EBB! sample from ``../shared`` when present, else a synthetic scene)
and the weights are the deterministic parity weights (``tests/models/reference_weights.py``), whose
defocus maps spread over all levels like a trained network's; the networks' cost does not depend on
weights.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from d2f.models import D2F, checkpoint_filter_fn

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT.parent / "shared" / "ebb_samples" / "original" / "2977.jpg"
SIZE = (1024, 1536)
LARGE_SIZE = (3000, 4000)

sys.path.insert(0, str(ROOT / "tests" / "models"))
from reference_weights import reference_state_dicts  # noqa: E402

from timing import median_seconds, peak_rss_bytes, pipeline_split  # noqa: E402


def _model(device: str) -> D2F:
    model = D2F()
    state_dicts = reference_state_dicts()
    model.load_state_dict(checkpoint_filter_fn({**state_dicts["stage1"], **state_dicts["stage2"]}))
    return model.eval().to(device)


def _image(size: tuple[int, int], device: str) -> torch.Tensor:
    """(1, 3, H, W): the photo resized to ``size``, or a synthetic scene when it is absent."""
    if PHOTO.is_file():
        array = np.asarray(Image.open(PHOTO).convert("RGB"), dtype=np.float32) / 255
        image = torch.from_numpy(array).permute(2, 0, 1)[None]
    else:
        rows, cols = torch.meshgrid(torch.linspace(0, 1, 256), torch.linspace(0, 1, 384), indexing="ij")
        image = torch.stack([rows, cols, (torch.sin(20 * rows) * torch.cos(30 * cols) + 1) / 2])[None]
    return F.interpolate(image, size=size, mode="bilinear", align_corners=False).clamp(0, 1).to(device)


def child(case: str, runs: int) -> dict:
    """One measurement, in this (fresh) process."""
    with torch.inference_mode():
        if case == "cpu_time":
            return pipeline_split(_model("cpu"), _image(SIZE, "cpu"), runs)
        if case.startswith("cpu_memory_"):
            size = SIZE if case == "cpu_memory_small" else LARGE_SIZE
            model, image = _model("cpu"), _image(size, "cpu")
            start = time.perf_counter()
            model(image)
            return {"seconds": time.perf_counter() - start, "peak_rss": peak_rss_bytes()}
        if case == "cuda":
            model, image = _model("cuda"), _image(SIZE, "cuda")
            fp32 = model(image).bokeh
            bf16 = model(image, precision="bf16").bokeh
            return {
                "fp32": median_seconds(lambda: model(image), runs, "cuda"),
                "bf16": median_seconds(lambda: model(image, precision="bf16"), runs, "cuda"),
                "max_abs_difference": float((bf16 - fp32).abs().max()),
                "mean_abs_difference": float((bf16 - fp32).abs().mean()),
                "split_fp32": pipeline_split(model, image, runs),
                "device": torch.cuda.get_device_name(),
            }
    raise ValueError(f"unknown case {case!r}")


def _run_child(case: str, runs: int) -> dict:
    command = [sys.executable, __file__, "--child", case, "--runs", str(runs)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"benchmark case {case} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per figure (median)")
    parser.add_argument("--skip-12mp", action="store_true", help="skip the 3000x4000 memory case")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.runs)))
        return

    height, width = SIZE
    nnpack = "on" if torch.backends.nnpack.is_available() else "off"
    print(f"d2f pipeline benchmark: torch {torch.__version__}, {_cpu_name()}, {os.cpu_count()} CPUs, "
          f"{torch.get_num_threads()} threads, NNPACK {nnpack}")
    print(f"load average before: {os.getloadavg()[0]:.2f} (other processes on the CPUs slow timings down)")
    timing = _run_child("cpu_time", args.runs)
    print(f"CPU {height}x{width} fp32, median of {args.runs}:")
    print(f"  end to end              {timing['end_to_end']:7.2f} s   (target <= 4 s)")
    print(f"  defocus network         {timing['defocus_network']:7.2f} s")
    print(f"  radiance net + renderer {timing['radiance_and_renderer']:7.2f} s")
    print(f"  fusion (full res)       {timing['fusion']:7.2f} s")
    cases = [("cpu_memory_small", SIZE, 3)]
    if not args.skip_12mp:
        cases.append(("cpu_memory_large", LARGE_SIZE, 8))
    for case, (case_height, case_width), target in cases:
        memory = _run_child(case, 1)
        print(f"CPU {case_height}x{case_width} peak RSS {memory['peak_rss'] / 2**30:5.2f} GiB "
              f"(target < {target} GB), one render {memory['seconds']:.1f} s")
    if torch.cuda.is_available():
        cuda = _run_child("cuda", max(args.runs, 20))
        split = cuda["split_fp32"]
        print(f"CUDA {cuda['device']} {height}x{width}, median of {max(args.runs, 20)}:")
        print(f"  fp32 {cuda['fp32'] * 1e3:7.2f} ms (target <= 15 ms): defocus network "
              f"{split['defocus_network'] * 1e3:.2f} ms, radiance + renderer "
              f"{split['radiance_and_renderer'] * 1e3:.2f} ms, fusion {split['fusion'] * 1e3:.2f} ms")
        print(f"  bf16 {cuda['bf16'] * 1e3:7.2f} ms (target <= 8 ms); |bf16 - fp32| max "
              f"{cuda['max_abs_difference']:.4f}, mean {cuda['mean_abs_difference']:.5f}")
    else:
        print("CUDA: not available")


if __name__ == "__main__":
    main()
