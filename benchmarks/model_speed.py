"""Speed of any saved model at 1024x1536 and 3000x4000: median end-to-end seconds, fp32 and bf16, and on
a GPU the replay of a CUDA graph of the whole model; on the CPU, with ``--memory``, the peak resident
memory of a fresh process that loads the model and renders one photo of each size (PyTorch included).

    python benchmarks/model_speed.py --model d2f-lite [--device cuda] [--runs 10] [--memory]

``--model`` takes what :func:`d2f.load` takes (a bundled name or a ``save_pretrained`` folder). The
photo is the bundled sample, resized; the networks' cost does not depend on it, the renderer's a little.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

import torch
import torch.nn.functional as F

from d2f.cli.demo import SAMPLE_PHOTO
from d2f.io import read_image
from d2f.models import load
from timing import graph_replay_seconds, median_seconds, peak_rss_bytes

SIZES = ((1024, 1536), (3000, 4000))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="d2f-lite", help="a bundled name or a save_pretrained folder")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per figure (median)")
    parser.add_argument("--memory", action="store_true", help="also the peak memory of one render (CPU)")
    parser.add_argument("--child-size", type=int, nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    model = load(args.model).to(args.device)
    photo = read_image(SAMPLE_PHOTO).unsqueeze(0)
    if args.child_size is not None:  # one render in this fresh process, then its peak memory
        image = F.interpolate(photo, size=tuple(args.child_size), mode="bilinear", align_corners=False)
        model(image.clamp(0, 1))
        print(peak_rss_bytes())
        return
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU"
    print(f"{args.model} on {name} ({torch.get_num_threads()} threads)")
    for size in SIZES:
        image = F.interpolate(photo, size=size, mode="bilinear", align_corners=False).clamp(0, 1)
        image = image.to(args.device)
        with torch.inference_mode():
            fp32 = median_seconds(lambda image=image: model(image), args.runs, args.device)
            line = f"  {size[1]}x{size[0]}: fp32 {fp32 * 1e3:.1f} ms"
            if args.device.startswith("cuda"):
                bf16 = median_seconds(
                    lambda image=image: model(image, precision="bf16"), args.runs, args.device
                )
                try:
                    graph = graph_replay_seconds(lambda image=image: model(image), args.runs)
                    graph_text = f"{graph * 1e3:.2f} ms"
                except RuntimeError as error:
                    graph_text = f"capture failed ({str(error).splitlines()[0]})"
                line += f", bf16 {bf16 * 1e3:.1f} ms, CUDA graph (fp32) {graph_text}"
        if args.memory:
            command = [sys.executable, __file__, "--model", args.model, "--device", "cpu"]
            command += ["--child-size", *map(str, size)]
            peak = int(subprocess.run(command, capture_output=True, text=True, check=True).stdout.split()[-1])
            line += f", peak memory of one render in a fresh process {peak / 2**30:.2f} GiB"
        print(line, flush=True)


if __name__ == "__main__":
    main()
