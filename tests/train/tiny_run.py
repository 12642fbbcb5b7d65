"""A tiny training config shared by the training tests: seconds per run on a CPU."""

from __future__ import annotations

from pathlib import Path

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
