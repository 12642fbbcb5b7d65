"""A tiny training config shared by the training tests: seconds per run on a CPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from d2f.train.config import TrainConfig, load_config

SMOKE_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "smoke.yaml"

#: The smoke architecture and data; six steps of batch 2, a checkpoint every two steps, EMA on.
TINY_OVERRIDES = (
    "run.steps=6",
    "run.batch_size=2",
    "run.log_every=1",
    "run.val_every=2",
    "run.sample_count=1",
    "run.ema_decay=0.9",
    "optim.warmup_steps=2",
    "data.train_count=8",
    "data.val_count=2",
    "data.num_workers=0",
)


def tiny_config(*overrides: str) -> TrainConfig:
    return load_config(SMOKE_CONFIG, [*TINY_OVERRIDES, *overrides])


#: The smoke architecture predicting depth, on a tiny mix of RGB-D photos and synthetic scenes.
TINY_DEPTH_OVERRIDES = (
    "stage=depth",
    "model.architecture.predicts=depth",
    "data.dataset=depth",
    "data.synthetic_share=0.5",
    "data.size=[128,128]",
    "data.val_count=null",
    "loss.disparity=1",
    "loss.disparity_gradient=0.5",
    "loss.disparity_anchor=0.2",
    "loss.focus_map=0.1",
)


def tiny_depth_config(cache_root: Path, *overrides: str) -> TrainConfig:
    return tiny_config(*TINY_DEPTH_OVERRIDES, f"data.root={cache_root}", *overrides)


def write_tiny_cache(root: Path, train: int = 3, holdout: int = 2, size: tuple[int, int] = (96, 160)) -> Path:
    """An RGB-D cache of random photos over a disparity that grows down the frame (near at the bottom)."""
    from d2f.train.rgbd_cache import write_cache_entry, write_cache_index

    root.mkdir(parents=True, exist_ok=True)
    generator = np.random.default_rng(0)
    entries = []
    for number in range(train + holdout):
        image = generator.integers(0, 256, (*size, 3), dtype=np.uint8)
        rows = np.linspace(0.2, 1.0 + number, size[0], dtype=np.float32)[:, None]
        disparity = np.repeat(rows, size[1], axis=1)
        names = write_cache_entry(root, number, image, disparity, long_side=128)
        entries.append({"name": f"tiny/{number}", "split": "train" if number < train else "holdout", **names})
    write_cache_index(root, entries)
    return root
