import csv

import pytest
import torch
from safetensors.torch import load_file
from tiny_run import tiny_config

from d2f.errors import InputError
from d2f.train import loop
from d2f.train.checkpoint import load_checkpoint
from d2f.train.ema import EMA


class SimulatedCrashError(Exception):
    pass


def metrics(run):
    with (run / "metrics.csv").open() as file:
        return [(row["step"], row["train_loss"], row["val_loss"]) for row in csv.DictReader(file)]


def test_interrupted_and_resumed_run_ends_like_an_uninterrupted_one(tmp_path, monkeypatch):
    config = tiny_config("data.random_flip=true")
    loop.train(config, tmp_path / "straight", progress=False)

    # Stop the second run during step 5: its last checkpoint is step 4's.
    update = EMA.update
    calls = []

    def interrupt_at_step_5(self, model):
        calls.append(1)
        if len(calls) == 5:
            raise SimulatedCrashError
        update(self, model)

    monkeypatch.setattr(EMA, "update", interrupt_at_step_5)
    with pytest.raises(SimulatedCrashError):
        loop.train(config, tmp_path / "resumed", progress=False)
    monkeypatch.setattr(EMA, "update", update)
    assert load_checkpoint(tmp_path / "resumed" / "checkpoints" / "last.pt")["step"] == 4
    loop.train(loop.resume_config(tmp_path / "resumed"), tmp_path / "resumed", resume=True, progress=False)

    straight = load_checkpoint(tmp_path / "straight" / "checkpoints" / "last.pt")
    resumed = load_checkpoint(tmp_path / "resumed" / "checkpoints" / "last.pt")
    assert resumed["step"] == straight["step"] == 6
    for part in ("model", "ema"):
        for key, value in straight[part].items():
            assert torch.equal(resumed[part][key], value), f"{part}: {key}"
    exported = [load_file(tmp_path / run / "model" / "model.safetensors") for run in ("straight", "resumed")]
    assert all(torch.equal(exported[1][key], value) for key, value in exported[0].items())
    assert metrics(tmp_path / "resumed") == metrics(tmp_path / "straight")
    assert [row[0] for row in metrics(tmp_path / "straight")] == ["0", "1", "2", "3", "4", "5", "6"]


def test_a_run_directory_is_not_overwritten_and_resume_needs_a_checkpoint(tmp_path):
    config = tiny_config()
    with pytest.raises(InputError, match="no checkpoint to resume from"):
        loop.train(config, tmp_path / "empty", resume=True, progress=False)
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    (tmp_path / "run" / "checkpoints" / "last.pt").write_bytes(b"x")
    with pytest.raises(InputError, match="already holds a run"):
        loop.train(config, tmp_path / "run", progress=False)
