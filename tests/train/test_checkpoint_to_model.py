"""scripts/checkpoint_to_model.py: a checkpoint of a run becomes the model folder a finished run leaves."""

import json
import runpy
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from tiny_run import tiny_config

from d2f.models import load_pretrained
from d2f.train import loop
from d2f.train.checkpoint import load_checkpoint

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "checkpoint_to_model.py"


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("run") / "run"
    loop.train(tiny_config(), folder, progress=False)
    return folder


@pytest.fixture
def convert():
    return runpy.run_path(str(SCRIPT))["main"]


def read_model(folder):
    return load_file(folder / "model.safetensors"), json.loads((folder / "config.json").read_text())


def test_last_checkpoint_gives_the_exported_model(run_folder, convert, tmp_path, capsys):
    assert convert([str(run_folder / "checkpoints" / "last.pt"), str(tmp_path / "model")]) == 0
    out = capsys.readouterr().out
    assert "the ema weights" in out and "at step 6" in out
    ours, our_config = read_model(tmp_path / "model")
    finished, finished_config = read_model(run_folder / "model")
    assert ours.keys() == finished.keys()
    assert all(torch.equal(ours[key], value) for key, value in finished.items())
    assert our_config == finished_config
    assert not load_pretrained(tmp_path / "model").training


def test_any_checkpoint_gives_its_own_ema_weights(run_folder, convert, tmp_path, capsys):
    checkpoint = run_folder / "checkpoints" / "best.pt"
    assert convert([str(checkpoint), str(tmp_path / "model")]) == 0
    state = load_checkpoint(checkpoint)
    assert f"at step {state['step']}" in capsys.readouterr().out
    ours, _ = read_model(tmp_path / "model")
    assert all(torch.equal(ours[key], value) for key, value in state["ema"].items())


def test_errors_name_the_path_and_write_nothing(run_folder, convert, tmp_path, capsys):
    assert convert([str(tmp_path / "missing.pt"), str(tmp_path / "model")]) == 2
    assert "missing.pt" in capsys.readouterr().err and not (tmp_path / "model").exists()
    (tmp_path / "taken").mkdir()
    assert convert([str(run_folder / "checkpoints" / "last.pt"), str(tmp_path / "taken")]) == 2
    assert "taken: exists already" in capsys.readouterr().err
    assert list((tmp_path / "taken").iterdir()) == []
