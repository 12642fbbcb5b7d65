"""Speed and memory of the bundled default model, d2f-lite (``d2f.models.CONFIGS["d2f-lite"]``).

    python benchmarks/default_model.py [--runs 5] [--threads N]

Prints the model's size (parameters, float16 bundle), the time to load the bundle, and on the CPU at
1024x1536: the median end-to-end time with its split (defocus network, radiance network + renderer,
full-resolution fusion) and the peak resident memory of a fresh process that loads the model and
renders one photo (VmHWM, PyTorch itself included). With CUDA available, the fp32 and bf16 times too.
Last, the wall time of the whole command ``d2f render`` on the bundled sample photo in a fresh process
(Python start-up and imports included, what a user waits for), beside that of ``import torch`` alone.
Targets (issue 6): CPU 1024x1536 at most 1.5 s and 1.5 GB; loading under 1 s; H100 at most 8 ms.

Weights: the bundle when this installation has it. Otherwise random weights whose defocus head is
rescaled so that the map spreads over the whole range [0, 1] on the benchmark photo: every renderer
level is then busy, which is the renderer's slow case (a trained model's maps leave levels empty or
small, and the renderer crops or skips them). The networks' cost does not depend on the weights. The
photo is an EBB! sample from ``../shared`` when present, else the bundled sample photo, resized.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from d2f.cli.demo import SAMPLE_PHOTO
from d2f.io import read_image
from d2f.models import CONFIGS, D2F, load_bundled, load_pretrained, presets
from timing import graph_replay_seconds, median_seconds, peak_rss_bytes, pipeline_split

NAME = "d2f-lite"
SIZE = (1024, 1536)
EBB_PHOTO = Path(__file__).resolve().parents[2] / "shared" / "ebb_samples" / "original" / "2977.jpg"


def _image(device: str) -> torch.Tensor:
    photo = EBB_PHOTO if EBB_PHOTO.is_file() else SAMPLE_PHOTO
    image = read_image(photo).unsqueeze(0)
    return F.interpolate(image, size=SIZE, mode="bilinear", align_corners=False).clamp(0, 1).to(device)


def _model(image: torch.Tensor) -> tuple[D2F, str]:
    if presets.is_bundled(NAME):
        return load_bundled(NAME).to(image.device), "bundled weights"
    torch.manual_seed(0)
    model = D2F(CONFIGS[NAME]).eval().to(image.device)
    last = model.defocus_net.head.conv3  # the last layer is linear: rescale its output to [0, 1]
    with torch.inference_mode():
        defocus = model(image).defocus
        scale = 1 / (defocus.max() - defocus.min())
        last.weight.mul_(scale)
        last.bias.mul_(scale).sub_(scale * defocus.min())
    return model, "random weights, defocus spread over [0, 1]"


def child(case: str, runs: int) -> dict:
    """One measurement, in this fresh process."""
    with torch.inference_mode():
        if case == "load":
            model, weights = _model(_image("cpu"))
            with tempfile.TemporaryDirectory() as folder:
                bundle = presets.export_bundle(
                    model.save_pretrained(Path(folder) / "fp32"), Path(folder) / NAME
                )
                start = time.perf_counter()
                load_pretrained(bundle)
                seconds = time.perf_counter() - start
                size = (bundle / "model.safetensors").stat().st_size
            parameters = sum(parameter.numel() for parameter in model.parameters())
            return {"seconds": seconds, "bytes": size, "parameters": parameters, "weights": weights}
        if case == "cpu_time":
            image = _image("cpu")
            return pipeline_split(_model(image)[0], image, runs)
        if case == "cpu_memory":
            image = _image("cpu")
            model = _model(image)[0]
            start = time.perf_counter()
            model(image)
            return {"seconds": time.perf_counter() - start, "peak_rss": peak_rss_bytes()}
        if case == "cuda":
            image = _image("cuda")
            model = _model(image)[0]
            fp32, bf16 = model(image).bokeh, model(image, precision="bf16").bokeh
            return {
                "device": torch.cuda.get_device_name(),
                "fp32": pipeline_split(model, image, runs),
                "bf16": median_seconds(lambda: model(image, precision="bf16"), runs, "cuda"),
                "max_abs_difference": float((bf16 - fp32).abs().max()),
                "graph_fp32": _graph_seconds(lambda: model(image), runs),
            }
    raise ValueError(f"unknown case {case!r}")


def _graph_seconds(function, runs: int) -> float | str:
    """Seconds per replay of ``function`` as a CUDA graph, or why it could not be captured."""
    try:
        return graph_replay_seconds(function, runs)
    except RuntimeError as error:  # reported, not fatal: the other figures still print
        return f"capture failed: {str(error).splitlines()[0]}"


def _command_seconds(arguments: list[str], runs: int) -> float:
    """Median wall time of ``python ARGUMENTS`` in a fresh process, start-up and imports included (after
    one warm-up run, so that the files are in the page cache, as for a user's second command)."""
    command = [sys.executable, *arguments]
    return median_seconds(lambda: subprocess.run(command, capture_output=True, check=True), runs, "cpu")


def _run_child(case: str, runs: int, threads: int | None) -> dict:
    command = [sys.executable, __file__, "--child", case, "--runs", str(runs)]
    if threads is not None:
        command += ["--threads", str(threads)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"benchmark case {case} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per figure (median)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.child:
        print(json.dumps(child(args.child, args.runs)))
        return

    load = _run_child("load", 1, args.threads)
    print(
        f"{NAME}: {load['parameters'] / 1e6:.2f} M parameters, float16 bundle {load['bytes'] / 2**20:.1f} MB"
    )
    print(f"  ({load['weights']}); loading the bundle {load['seconds']:.2f} s (target < 1 s)")
    print(f"CPU: {os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads, torch {torch.__version__}")
    timing = _run_child("cpu_time", args.runs, args.threads)
    height, width = SIZE
    print(f"CPU {height}x{width} fp32, median of {args.runs}:")
    print(f"  end to end              {timing['end_to_end']:6.2f} s (target <= 1.5 s)")
    print(f"  defocus network         {timing['defocus_network']:6.2f} s")
    print(f"  radiance net + renderer {timing['radiance_and_renderer']:6.2f} s")
    print(f"  fusion (full res)       {timing['fusion']:6.2f} s")
    memory = _run_child("cpu_memory", 1, args.threads)
    print(
        f"CPU {height}x{width} peak RSS {memory['peak_rss'] / 2**30:.2f} GiB (target <= 1.5 GB), "
        f"first render {memory['seconds']:.2f} s"
    )
    if torch.cuda.is_available():
        runs = max(args.runs, 20)
        cuda = _run_child("cuda", runs, args.threads)
        split = cuda["fp32"]
        print(f"CUDA {cuda['device']} {height}x{width}, median of {runs}:")
        print(
            f"  fp32 {split['end_to_end'] * 1e3:6.2f} ms: "
            f"defocus network {split['defocus_network'] * 1e3:.2f} ms, "
            f"radiance + renderer {split['radiance_and_renderer'] * 1e3:.2f} ms, "
            f"fusion {split['fusion'] * 1e3:.2f} ms"
        )
        print(
            f"  bf16 {cuda['bf16'] * 1e3:6.2f} ms (target <= 8 ms); "
            f"|bf16 - fp32| max {cuda['max_abs_difference']:.4f}"
        )
        graph = cuda["graph_fp32"]
        print(f"  fp32 as a CUDA graph: {graph * 1e3:.2f} ms" if isinstance(graph, float) else f"  {graph}")
    else:
        print("CUDA: not available")
    with tempfile.TemporaryDirectory() as folder:
        render = ["-m", "d2f", "render", str(SAMPLE_PHOTO), "-o", str(Path(folder) / "out.jpg")]
        command = _command_seconds([*render, "--overwrite"], 3)
    torch_import = _command_seconds(["-c", "import torch"], 3)
    print(
        f"d2f render {SAMPLE_PHOTO.name} as a command, fresh process: {command:.2f} s, median of 3 "
        f"(import torch alone {torch_import:.2f} s)"
    )


if __name__ == "__main__":
    main()
