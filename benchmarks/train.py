"""Training throughput of D2F (images per second), and what the data loaders can feed it.

    python benchmarks/train.py [--device cpu|cuda] [--steps 3] [--sizes smoke,synthetic,ebb] [--threads N]

For each size, one training step is timed as the loop runs it (forward of the stage, loss, backward,
gradient clipping, AdamW; bf16 autocast on CUDA) on random images, after one warm-up step:

- smoke: ``configs/smoke.yaml`` (narrow d2f-lite, 128x128 scenes, stage 1 at 64x64, batch 4);
- synthetic: ``configs/synthetic_stage1.yaml`` (the paper's network, 512x768 scenes, stage 1 at 256x384);
- ebb: ``configs/ebb_stage1.yaml`` (the paper's network, 1024x1536 photos, stage 1 at 512x768, batch 8).

Then the data side, in one process: synthetic scenes generated per second at each size, and EBB!
pairs (two 1536x1024 JPEGs, decoded and resized like ``ebb_stage1``) loaded per second. Workers needed
to keep a step fed = training images/s divided by one process's data images/s. On the CPU the paper's
network is slow, so the ``synthetic`` and ``ebb`` sizes run with batch 1 there (``--cpu-batch``).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from d2f.train.config import load_config
from d2f.train.model import build_model
from d2f.train.stages import stage_loss, stage_module

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
SIZES = {"smoke": "smoke.yaml", "synthetic": "synthetic_stage1.yaml", "ebb": "ebb_stage1.yaml"}


def training_throughput(name: str, device: torch.device, steps: int, cpu_batch: int) -> dict:
    with tempfile.TemporaryDirectory() as root:  # an empty EBB! layout: the config only checks it
        for sub in ("original", "bokeh"):
            (Path(root) / sub).mkdir()
        config = load_config(CONFIGS / SIZES[name], [f"data.root={root}"])
    batch = config.run.batch_size if device.type == "cuda" or name == "smoke" else cpu_batch
    torch.manual_seed(0)
    model = build_model(config.model).to(device)
    stage = stage_module(1, model).train()
    parameters = [parameter for parameter in stage.parameters() if parameter.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=config.optim.lr)
    height, width = config.data.size or config.data.resize  # ebb_stage1: whole resized photos
    image = torch.rand(batch, 3, height, width, device=device)
    target = torch.rand(batch, 3, height, width, device=device)
    defocus = torch.rand(batch, 1, height, width, device=device)
    autocast = (
        torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        if device.type == "cuda"
        else contextlib.nullcontext()
    )

    def step() -> None:
        with autocast:
            output = stage(image, target)
        loss, _ = stage_loss(config.loss, output, defocus)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()

    step()
    _synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _synchronize(device)
    seconds = (time.perf_counter() - start) / steps
    memory = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else math.nan
    return {
        "size": name,
        "encoder": config.model.architecture.encoder,
        "image": f"{height}x{width}",
        "stage1": "x".join(map(str, model.stage1_size(height, width))),
        "batch": batch,
        "seconds_per_step": seconds,
        "images_per_second": batch / seconds,
        "gpu_memory_gib": memory,
    }


def synthetic_scenes_per_second(size: tuple[int, int], kernel_scale: float, count: int) -> float:
    from d2f.data import SyntheticBokehDataset

    dataset = SyntheticBokehDataset(count + 1, size=size, seed=0, kernel_scale=kernel_scale)
    dataset[count]  # warm-up (texture bank, FFT plans)
    start = time.perf_counter()
    for index in range(count):
        dataset[index]
    return count / (time.perf_counter() - start)


def ebb_pairs_per_second(count: int) -> float:
    """EBB!-like pairs: 1536x1024 JPEGs of photo-like noise, decoded and resized as ebb_stage1 does."""
    from d2f.data import EBBDataset

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for sub in ("original", "bokeh"):
            (root / sub).mkdir()
        smooth = Image.fromarray(rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)).resize((1536, 1024))
        for index in range(count + 1):
            for sub in ("original", "bokeh"):
                smooth.rotate(index).save(root / sub / f"{index}.jpg", quality=95)
        dataset = EBBDataset(root, resize=(1024, 1536), random_flip=True)
        dataset[count]
        start = time.perf_counter()
        for index in range(count):
            dataset[index]
        return count / (time.perf_counter() - start)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per size (after one warm-up)")
    parser.add_argument("--sizes", default="smoke,synthetic,ebb", help="comma-separated: smoke,synthetic,ebb")
    parser.add_argument("--cpu-batch", type=int, default=1, help="batch of the paper-sized runs on the CPU")
    parser.add_argument("--data-samples", type=int, default=4, help="samples timed per data source")
    parser.add_argument("--threads", type=int, help="CPU threads of PyTorch (default: its own choice)")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    label = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"CPU, {torch.get_num_threads()} threads"
    )
    print(f"training throughput on {label} (torch {torch.__version__})")
    print(
        f"{'size':<10} {'encoder':<18} {'image':>10} {'stage 1':>8} {'batch':>5} "
        f"{'s/step':>8} {'img/s':>8} {'GPU GiB':>8}"
    )
    rows = []
    for name in args.sizes.split(","):
        row = training_throughput(name, device, args.steps, args.cpu_batch)
        rows.append(row)
        print(
            f"{row['size']:<10} {row['encoder']:<18} {row['image']:>10} {row['stage1']:>8} {row['batch']:>5} "
            f"{row['seconds_per_step']:>8.3f} {row['images_per_second']:>8.2f} {row['gpu_memory_gib']:>8.2f}"
        )
    print("\ndata, one process:")
    feeds = {
        "smoke": (
            "synthetic 128x128 scenes",
            lambda: synthetic_scenes_per_second((128, 128), 0.5, args.data_samples),
        ),
        "synthetic": (
            "synthetic 512x768 scenes",
            lambda: synthetic_scenes_per_second((512, 768), 1.0, args.data_samples),
        ),
        "ebb": ("EBB! 1536x1024 JPEG pairs", lambda: ebb_pairs_per_second(args.data_samples)),
    }
    for row in rows:
        description, measure = feeds[row["size"]]
        per_process = measure()
        workers = math.ceil(row["images_per_second"] / per_process)
        print(
            f"{description:<28} {per_process:8.2f} /s per process -> "
            f"{workers} worker(s) to feed {row['size']}"
        )


if __name__ == "__main__":
    main()
