"""Named architectures and the bundled weights: d2f-lite's size, load_bundled, export_bundle, the script.

No trained weights are needed: each test builds a tiny bundle in a temporary folder and points the
package's bundle location at it.
"""

from __future__ import annotations

import dataclasses
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import d2f
from d2f.errors import CheckpointError, InputError
from d2f.models import CONFIGS, D2F, D2FConfig, EfficientNetLite0, load_bundled, load_pretrained, presets
from d2f.pipeline import default_model

REPO = Path(__file__).resolve().parents[2]
TINY = D2FConfig(
    encoder="efficientnet_lite0",
    decoder_features=8,
    head_features=(8, 8),
    fusion_features=(4,),
    kernel_sizes=(3, 7),
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[D2F, Path]:
    """A float32 model and its save_pretrained folder, standing in for a training run's output."""
    torch.manual_seed(0)
    model = D2F(TINY).eval()
    return model, model.save_pretrained(tmp_path_factory.mktemp("run") / "model")


@pytest.fixture
def bundle_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "weights"
    monkeypatch.setattr(presets, "BUNDLE_ROOT", root)
    return root


def test_lite_preset_is_an_efficientnet_lite0_model_under_25_mb() -> None:
    model = D2F(CONFIGS["d2f-lite"])
    assert isinstance(model.defocus_net.encoder, EfficientNetLite0)
    parameters = sum(p.numel() for p in model.parameters())
    float16_bytes = sum(2 * value.numel() for value in model.state_dict().values())
    assert parameters < 5_000_000
    assert float16_bytes < 25 * 2**20
    assert CONFIGS["d2f"] == D2FConfig()


def test_lite_preset_renders_any_size() -> None:
    torch.manual_seed(0)
    model = D2F(CONFIGS["d2f-lite"]).eval()
    with torch.no_grad():
        output = model(torch.rand(1, 3, 37, 101))
    assert output.bokeh.shape == (1, 3, 37, 101)
    assert output.defocus.shape == (1, 1, 64, 64)
    assert bool(torch.isfinite(output.bokeh).all())


def test_export_writes_float16_and_loads_back_as_float32(trained, bundle_root: Path) -> None:
    model, saved = trained
    bundle = presets.export_bundle(saved, bundle_root / "d2f-lite")
    assert sorted(path.name for path in bundle.iterdir()) == ["config.json", "model.safetensors"]
    stored = load_file(bundle / "model.safetensors")
    assert {value.dtype for value in stored.values()} == {torch.float16, torch.int64}
    loaded = load_bundled("d2f-lite")
    assert not loaded.training and loaded.config == TINY
    for key, value in model.state_dict().items():
        if value.is_floating_point():
            assert loaded.state_dict()[key].dtype == torch.float32
            assert torch.equal(loaded.state_dict()[key], value.half().float()), key
    image = torch.rand(1, 3, 40, 72)
    with torch.no_grad():
        difference = (loaded(image).bokeh - model(image).bokeh).abs().max()
    assert difference < 2e-2


def test_export_refuses_weights_beyond_float16(tmp_path: Path) -> None:
    model = D2F(TINY)
    with torch.no_grad():
        model.radiance_net.conv1.weight[0, 0] = 1e6
    saved = model.save_pretrained(tmp_path / "model")
    with pytest.raises(CheckpointError, match=r"radiance_net\.conv1\.weight .*float16"):
        presets.export_bundle(saved, tmp_path / "bundle")
    assert not (tmp_path / "bundle").exists()


def test_export_names_the_label_or_the_model_and_refuses_other_sources(tmp_path: Path) -> None:
    model = D2F(TINY)
    with torch.no_grad():
        model.radiance_net.conv1.weight[0, 0] = 1e6
    with pytest.raises(CheckpointError, match=r"^runs/x: radiance_net\.conv1\.weight .*float16"):
        presets.export_bundle(model, tmp_path / "bundle", label="runs/x")
    with pytest.raises(CheckpointError, match=r"^model: radiance_net"):
        presets.export_bundle(model, tmp_path / "bundle")
    with pytest.raises(InputError, match=r"^source: expected a D2F or a save_pretrained folder, got Linear"):
        presets.export_bundle(torch.nn.Linear(2, 2), tmp_path / "bundle")
    assert not (tmp_path / "bundle").exists()


def test_unknown_and_missing_bundles(bundle_root: Path) -> None:
    with pytest.raises(InputError, match=r"unknown model name 'd2f-huge'.*d2f-lite"):
        load_bundled("d2f-huge")
    with pytest.raises(CheckpointError, match="no bundled weights for 'd2f-lite'"):
        load_bundled("d2f-lite")
    assert not presets.is_bundled("d2f-lite")


def test_default_model_is_the_bundle_and_says_so_when_it_is_missing(trained, bundle_root: Path) -> None:
    with pytest.raises(InputError, match=r"no model available.*no bundled d2f-lite weights"):
        default_model()
    presets.export_bundle(trained[1], bundle_root / "d2f-lite")
    model = default_model()
    assert isinstance(model, D2F) and model.config == TINY and not model.training
    assert next(model.parameters()).dtype == torch.float32


def test_load_takes_a_bundled_name_a_folder_or_its_file(trained, bundle_root: Path) -> None:
    presets.export_bundle(trained[1], bundle_root / "d2f-lite")
    by_name, by_folder = d2f.load("d2f-lite"), d2f.load(trained[1])
    by_file = d2f.load(str(trained[1] / "model.safetensors"))
    for model in (by_name, by_folder, by_file):
        assert isinstance(model, D2F) and model.config == TINY and not model.training
        assert next(model.parameters()).dtype == torch.float32
    assert presets.bundled_models() == ["d2f-lite"]


def test_load_error_lists_only_the_models_that_ship(trained, bundle_root: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="this installation has no bundled models") as error:
        d2f.load("d2f-lite")
    assert "\n" not in str(error.value)
    presets.export_bundle(trained[1], bundle_root / "d2f-lite")
    with pytest.raises(InputError, match=r"^d2f-huge: neither .* \(bundled models: d2f-lite\)$"):
        d2f.load("d2f-huge")
    # The paper's architecture has a name but no weights: say so, and how to load its checkpoints.
    with pytest.raises(InputError, match=r"^d2f: no weights for this architecture.*load_official") as error:
        d2f.load("d2f")
    assert "bundled models: d2f-lite)" in str(error.value)
    with pytest.raises(CheckpointError, match="missing"):
        d2f.load(tmp_path)  # an existing folder that holds no model
    with pytest.raises(InputError, match="expected a bundled model's name or a path"):
        d2f.load(3)


def test_public_namespace_is_what_is_documented() -> None:
    assert dir(d2f) == sorted(d2f.__all__)
    assert {"Any", "annotations", "importlib"}.isdisjoint(dir(d2f))
    assert not hasattr(d2f, "Any") and not hasattr(d2f, "annotations")
    for name in d2f.__all__:
        assert getattr(d2f, name) is not None
    assert d2f.load is presets.load and d2f.RenderOptions.__module__ == "d2f.options"


def test_importing_d2f_loads_no_model() -> None:
    code = "import sys, d2f; d2f.__version__; print('d2f.models' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_d2f_lite_never_imports_torchvision() -> None:
    # torchvision loads torch._dynamo, seconds on a small CPU: only the paper's ResNeXt encoder needs it.
    code = (
        "import sys, d2f.cli.render, d2f.pipeline\n"
        "from d2f.models import CONFIGS, D2F\n"
        "D2F(CONFIGS['d2f-lite'])\n"
        "print('torchvision' in sys.modules)\n"
        "D2F(CONFIGS['d2f'])\n"
        "print('torchvision' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "True"]


# ------------------------------------------------------------------------- scripts/export_bundled.py


@pytest.fixture
def export_script(monkeypatch: pytest.MonkeyPatch, bundle_root: Path):
    """The script's ``main``, writing under ``bundle_root``, with the d2f-lite preset shrunk to TINY."""
    monkeypatch.setitem(CONFIGS, "d2f-lite", TINY)
    return runpy.run_path(str(REPO / "scripts" / "export_bundled.py"))["main"]


def test_export_script_writes_the_bundle_and_reports_it(
    export_script, trained, bundle_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert export_script([str(trained[1])]) == 0
    out = capsys.readouterr().out
    parameters = sum(p.numel() for p in trained[0].parameters())
    assert f"wrote {bundle_root / 'd2f-lite'}: {parameters / 1e6:.2f} M parameters" in out
    assert "max abs difference" in out
    assert load_bundled().config == TINY
    assert export_script([str(trained[1])]) == 2  # no silent replacement
    assert "a bundle exists already" in capsys.readouterr().err
    assert export_script([str(trained[1]), "--overwrite"]) == 0


def test_export_script_refuses_another_architecture(
    export_script, tmp_path: Path, bundle_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = D2F(D2FConfig(encoder="resnet18", decoder_features=8, head_features=(8, 8), kernel_sizes=(3, 7)))
    saved = other.save_pretrained(tmp_path / "other")
    assert export_script([str(saved)]) != 0
    assert "not the d2f-lite architecture (differs in encoder" in capsys.readouterr().err
    assert not bundle_root.exists()
    assert isinstance(load_pretrained(saved), D2F)


def test_export_sets_the_inference_settings_and_nothing_else(trained, tmp_path: Path) -> None:
    _, saved = trained
    bundle = presets.export_bundle(
        saved, tmp_path / "bundle", focus_sharpness=4.0, default_f_number=2.8, subject_depth_of_field=0.2
    )
    config = load_pretrained(bundle).config
    assert (config.focus_sharpness, config.default_f_number, config.subject_depth_of_field) == (4.0, 2.8, 0.2)
    assert dataclasses.replace(
        config,
        focus_sharpness=TINY.focus_sharpness,
        default_f_number=TINY.default_f_number,
        subject_depth_of_field=TINY.subject_depth_of_field,
    ) == TINY


def test_export_refuses_a_setting_that_training_learns(trained, tmp_path: Path) -> None:
    _, saved = trained
    with pytest.raises(InputError, match=r"^alpha: not an inference setting"):
        presets.export_bundle(saved, tmp_path / "bundle", alpha=5.0)
    assert not (tmp_path / "bundle").exists()


def test_export_takes_a_loaded_model_and_leaves_it_as_it_was(trained, tmp_path: Path) -> None:
    _, saved = trained
    model = load_pretrained(saved)
    before = {key: value.clone() for key, value in model.state_dict().items()}
    bundle = presets.export_bundle(model, tmp_path / "bundle", focus_sharpness=4.0)
    assert load_pretrained(bundle).config.focus_sharpness == 4.0
    assert model.config == load_pretrained(saved).config
    after = model.state_dict()
    assert all(after[key].dtype == before[key].dtype for key in before)
    assert all(torch.equal(after[key], value) for key, value in before.items())
