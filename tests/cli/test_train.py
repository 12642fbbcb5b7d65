import csv
import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from d2f.cli import main

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny images: a second intra-op thread only adds overhead (and spins on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def read_metrics(run: Path) -> list[dict[str, str]]:
    with (run / "metrics.csv").open() as file:
        return list(csv.DictReader(file))


def test_smoke_training_lowers_the_validation_loss_and_exports_a_model(tmp_path, capsys):
    from d2f.models import load_pretrained
    from d2f.pipeline import render_image

    run = tmp_path / "smoke"
    assert main(["train", "--config", str(CONFIGS / "smoke.yaml"), "--out", str(run), "--no-progress"]) == 0
    assert f"wrote {run / 'model'}" in capsys.readouterr().err
    rows = read_metrics(run)
    validated = [row for row in rows if row["val_loss"]]
    assert [row["step"] for row in validated] == ["0", "20", "40"]
    first, last = float(validated[0]["val_loss"]), float(validated[-1]["val_loss"])
    assert last < 0.95 * first, f"validation loss {first:.4f} -> {last:.4f}"
    assert all(row["train_loss"] for row in rows[1:])
    assert sorted(path.name for path in (run / "samples").iterdir()) == ["step_000020.png", "step_000040.png"]
    assert {path.name for path in (run / "checkpoints").iterdir()} == {"last.pt", "best.pt"}
    model = load_pretrained(run / "model")
    assert model.config.encoder == "efficientnet_lite0"
    photo = np.random.default_rng(0).integers(0, 256, (70, 90, 3), dtype=np.uint8)
    assert render_image(photo, model, "cpu").shape == photo.shape


def write_config(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("config_text", "overrides", "message"),
    [
        ("stage: 1\n", ["run.stepz=3"], "config key run.stepz: unknown key"),
        ("run:\n  steps: many\n", [], "config key run.steps: expected an integer, got 'many'"),
        ("data:\n  size: [64]\n", [], "config key data.size: expected 2 values"),
        ("optim:\n  lr: -1\n", [], "config key optim.lr: expected a positive number"),
        (
            "stage: 1\n",
            ["data.companion_focus_probability=2"],
            "config key data.companion_focus_probability: expected a number in [0, 1]",
        ),
        (
            "stage: 1\n",
            ["data.subject_support_probability=-1"],
            "config key data.subject_support_probability: expected a number in [0, 1]",
        ),
        (
            "model:\n  architecture:\n    decoder_features: 0\n",
            [],
            "config key model.architecture.decoder_features",
        ),
        (
            "data:\n  dataset: ebb\n",
            ["data.root={missing}"],
            "config key data.root: no such data folder {missing}",
        ),
        ("stage: 2\n", [], "config key model.init: stage 2 trains on top of a stage-1 model"),
        ("run: [1, 2\n", [], "not valid YAML"),
        ("stage: 1\n", ["run.steps"], "expected key=value"),
    ],
)
def test_bad_configs_fail_before_any_work_naming_the_key(tmp_path, capsys, config_text, overrides, message):
    missing = tmp_path / "no_such_folder"
    config = write_config(tmp_path / "bad.yaml", config_text)
    overrides = [override.format(missing=missing) for override in overrides]
    run = tmp_path / "run"
    assert main(["train", "--config", str(config), "--out", str(run), *overrides]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("d2f train: error:") and "\n" not in error
    assert message.format(missing=missing) in error
    assert not run.exists()


def test_an_ebb_folder_without_pairs_names_the_path(tmp_path, capsys):
    (tmp_path / "ebb").mkdir()
    code = main(
        [
            "train",
            "--config",
            str(CONFIGS / "ebb_stage1.yaml"),
            "--out",
            str(tmp_path / "run"),
            f"data.root={tmp_path / 'ebb'}",
        ]
    )
    assert code == 2
    error = capsys.readouterr().err
    assert "config key data.root" in error and str(tmp_path / "ebb") in error and "original/" in error


@pytest.mark.parametrize(
    "name", ["ebb_stage1", "ebb_stage2", "synthetic_stage1", "synthetic_stage2", "smoke"]
)
def test_shipped_configs_load(tmp_path, name):
    from d2f.train.config import load_config

    for folder in ("ebb/original", "ebb/bokeh", "stage1"):
        (tmp_path / folder).mkdir(parents=True)
    overrides = [f"data.root={tmp_path / 'ebb'}", f"model.init={tmp_path / 'stage1'}"]
    config = load_config(CONFIGS / f"{name}.yaml", overrides if "stage2" in name else overrides[:1])
    assert config.stage == (2 if "stage2" in name else 1)
    assert config.run.steps > 0


@pytest.mark.parametrize("name", sorted(path.stem for path in CONFIGS.glob("lite_*.yaml")))
def test_lite_configs_train_exactly_the_bundled_architecture(tmp_path, name):
    from d2f.models import CONFIGS as MODEL_CONFIGS
    from d2f.train.config import load_config

    for folder in ("stage1", "ebb/original", "ebb/bokeh"):
        (tmp_path / folder).mkdir(parents=True)
    overrides = [f"data.textures={tmp_path}"]
    if name != "lite_stage1":
        overrides.append(f"model.init={tmp_path / 'stage1'}")
    if "_ebb_" in name:
        overrides.append(f"data.root={tmp_path / 'ebb'}")
    config = load_config(CONFIGS / f"{name}.yaml", overrides)
    assert config.stage == (2 if "stage2" in name else 1)
    # Training sets clamp_defocus itself (d2f.train.model.build_model): the YAML leaves it out. The
    # weights are the same whether the map is read as relative defocus (blur_scale) or not.
    bundled = MODEL_CONFIGS["d2f-lite"]
    architecture = config.model.architecture
    assert dataclasses.replace(architecture, clamp_defocus=True, blur_scale=bundled.blur_scale) == bundled


def test_the_ebb_fine_tune_starts_from_the_bundled_weights(tmp_path):
    from d2f.train.config import load_config
    from d2f.train.model import build_model, check_init_architecture

    for folder in ("ebb/original", "ebb/bokeh"):
        (tmp_path / folder).mkdir(parents=True)
    config = load_config(CONFIGS / "lite_ebb_stage1.yaml", [f"data.root={tmp_path / 'ebb'}"])
    bundle = CONFIGS.parent / "src" / "d2f" / "weights" / "d2f-lite"
    assert (CONFIGS.parent / config.model.init).resolve() == bundle.resolve()
    model_config = dataclasses.replace(config.model, init=str(bundle))
    check_init_architecture(model_config)  # raises if the YAML and the bundle's architecture differ
    model = build_model(model_config)
    assert model.training and all(parameter.dtype == torch.float32 for parameter in model.parameters())
    assert config.loss.defocus == 0  # EBB! has no ground-truth defocus


def test_resume_needs_a_run_and_its_own_config(tmp_path, capsys):
    from d2f.train.checkpoint import rng_states, save_checkpoint
    from d2f.train.config import load_config

    run = tmp_path / "run"
    assert main(["train", "--out", str(run), "--resume"]) == 2
    assert "no such checkpoint" in capsys.readouterr().err
    assert main(["train", "--out", str(run)]) == 2
    assert "--config: a config file is needed" in capsys.readouterr().err
    stored = load_config(CONFIGS / "smoke.yaml", ["run.steps=10"])
    state = {
        "model": {},
        "optimizer": {},
        "scheduler": {},
        "step": 10,
        "config": stored.to_dict(),
        "rng": rng_states(),
        "best_val_loss": 1.0,
    }
    save_checkpoint(run / "checkpoints" / "last.pt", state)
    assert main(["train", "--config", str(CONFIGS / "smoke.yaml"), "--out", str(run), "--resume"]) == 2
    error = capsys.readouterr().err
    assert "config key run.steps: " in error and "says 40 but the run being resumed has 10" in error
