"""The bundled model on the command line: `d2f render` without weights, --model, --strength, `d2f demo`.

A tiny float16 bundle is built in a temporary folder and the package's bundle location pointed at it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from d2f.cli import main
from d2f.cli.demo import SAMPLE_PHOTO
from d2f.models import D2F, presets
from tiny_models import TINY_LITE


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model in d2f's own format, whose defocus map blurs visibly."""
    torch.manual_seed(0)
    model = D2F(TINY_LITE).eval()
    with torch.no_grad():
        model.defocus_net.head.conv3.bias.fill_(0.6)
    return model.save_pretrained(tmp_path_factory.mktemp("run") / "model")


@pytest.fixture(scope="module")
def bundle(saved: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return presets.export_bundle(saved, tmp_path_factory.mktemp("weights") / "d2f-lite")


@pytest.fixture
def bundled(bundle: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The tiny bundle, installed as the package's d2f-lite weights."""
    monkeypatch.setattr(presets, "BUNDLE_ROOT", bundle.parent)
    return bundle


@pytest.fixture
def no_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(presets, "BUNDLE_ROOT", tmp_path / "no-weights")


def photo(path: Path, height: int = 37, width: int = 53) -> Path:
    pixels = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str]:
    code = main([str(arg) for arg in argv])
    return code, capsys.readouterr().err


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def assert_one_line_error(stderr: str, command: str, *phrases: str) -> None:
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"d2f {command}: error:"), stderr
    for phrase in phrases:
        assert phrase in lines[0], lines[0]


# ------------------------------------------------------------------------------------------ render


def test_without_weights_options_render_uses_the_bundle(bundled: Path, tmp_path: Path, capsys) -> None:
    source = photo(tmp_path / "in.png")
    assert run(capsys, "render", source, "-o", tmp_path / "default.png")[0] == 0
    assert run(capsys, "render", source, "-o", tmp_path / "named.png", "--model", "d2f-lite")[0] == 0
    assert run(capsys, "render", source, "-o", tmp_path / "weights.png", "--weights", bundled)[0] == 0
    default = pixels(tmp_path / "default.png")
    assert default.shape == (37, 53, 3)
    assert np.array_equal(default, pixels(tmp_path / "named.png"))
    assert np.array_equal(default, pixels(tmp_path / "weights.png"))
    assert not np.array_equal(default, pixels(source))


def test_model_path_reads_d2fs_own_format(bundled: Path, saved: Path, tmp_path: Path, capsys) -> None:
    source = photo(tmp_path / "in.png")
    assert run(capsys, "render", source, "-o", tmp_path / "model.png", "--model", saved)[0] == 0
    assert run(capsys, "render", source, "-o", tmp_path / "weights.png", "--weights", saved)[0] == 0
    assert np.array_equal(pixels(tmp_path / "model.png"), pixels(tmp_path / "weights.png"))


def test_strength_zero_gives_the_input_back_and_one_is_the_default(bundled, tmp_path: Path, capsys) -> None:
    source = photo(tmp_path / "in.png")
    for name, strength in (("zero.png", "0"), ("one.png", "1"), ("default.png", None)):
        options = ["--strength", strength] if strength is not None else []
        assert run(capsys, "render", source, "-o", tmp_path / name, *options)[0] == 0
    assert np.array_equal(pixels(tmp_path / "zero.png"), pixels(source))
    assert np.array_equal(pixels(tmp_path / "one.png"), pixels(tmp_path / "default.png"))


@pytest.mark.parametrize(
    ("options", "phrases"),
    [
        # Only names whose weights ship are offered: not the paper's "d2f", which has none.
        (["--model", "d2f-huge"], ["--model: d2f-huge: neither a bundled", "(bundled models: d2f-lite)"]),
        (["--model", "d2f"], ["--model: d2f: no weights for this architecture", "--stage1/--stage2"]),
        (["--model", "d2f-lite", "--weights", "x"], ["--model and --weights cannot be combined"]),
        (["--strength", "-1"], ["--strength: expected a finite number >= 0, got -1"]),
        (["--strength", "nan"], ["--strength: expected a finite number >= 0, got nan"]),
        (["--background-blur", "-3"], ["--background-blur: expected a finite number of pixels >= 0, got -3"]),
    ],
)
def test_bad_model_options_fail_in_one_line(bundled, tmp_path: Path, capsys, options, phrases) -> None:
    code, stderr = run(capsys, "render", photo(tmp_path / "in.png"), "-o", tmp_path / "out.png", *options)
    assert code == 2
    assert_one_line_error(stderr, "render", *phrases)
    assert not (tmp_path / "out.png").exists()


@pytest.fixture(scope="module")
def relative(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model that predicts relative defocus (default blur scale 0.4), in d2f's own format."""
    torch.manual_seed(0)
    model = D2F(dataclasses.replace(TINY_LITE, clamp_defocus=True, blur_scale=0.4)).eval()
    with torch.no_grad():
        model.defocus_net.head.conv3.bias.fill_(0.8)
    return model.save_pretrained(tmp_path_factory.mktemp("relative") / "model")


def test_background_blur_sets_a_relative_models_blur_scale(relative: Path, tmp_path: Path, capsys) -> None:
    from d2f.models import load_pretrained
    from d2f.pipeline import background_blur_scale, predict

    source = photo(tmp_path / "in.png")
    for name, options in (("wide.png", ["--background-blur", "60"]), ("own.png", [])):
        code, stderr = run(capsys, "render", source, "-o", tmp_path / name, "--model", relative, *options)
        assert code == 0, stderr
    model = load_pretrained(relative)
    image = torch.from_numpy(pixels(source).copy()).permute(2, 0, 1).float().div(255).unsqueeze(0)
    scale = background_blur_scale(model, (37, 53), 60.0)
    expected = predict(model, image, blur_scale=scale).bokeh[0]
    written = torch.from_numpy(pixels(tmp_path / "wide.png").copy()).permute(2, 0, 1).float().div(255)
    torch.testing.assert_close(written, expected, atol=1 / 255 + 1e-6, rtol=0)
    assert not np.array_equal(pixels(tmp_path / "wide.png"), pixels(tmp_path / "own.png"))


def test_background_blur_needs_a_relative_model(bundled, tmp_path: Path, capsys) -> None:
    source = photo(tmp_path / "in.png")
    code, stderr = run(capsys, "render", source, "-o", tmp_path / "out.png", "--background-blur", "40")
    assert code == 2
    assert_one_line_error(stderr, "render", "--background-blur: this model predicts D2F defocus itself")
    assert not (tmp_path / "out.png").exists()


def test_without_a_bundle_render_says_what_to_pass(no_bundle, tmp_path: Path, capsys) -> None:
    code, stderr = run(capsys, "render", photo(tmp_path / "in.png"), "-o", tmp_path / "out.png")
    assert code == 2
    assert_one_line_error(stderr, "render", "no model available", "--stage1", "--weights")


# -------------------------------------------------------------------------------------------- demo


def test_sample_photo_ships_with_the_package() -> None:
    with Image.open(SAMPLE_PHOTO) as sample:
        assert sample.format == "JPEG" and sample.size == (600, 400)
    assert SAMPLE_PHOTO.stat().st_size < 200_000


def test_demo_renders_the_sample_with_the_bundle(bundled, tmp_path: Path, capsys) -> None:
    code, stderr = run(capsys, "demo", "-o", tmp_path / "demo.png", "--save-defocus")
    assert code == 0, stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "demo.png",
        "demo_defocus.png",
        "demo_defocus_color.png",
    ]
    rendered, sample = pixels(tmp_path / "demo.png"), pixels(SAMPLE_PHOTO)
    assert rendered.shape == sample.shape == (400, 600, 3)
    assert not np.array_equal(rendered, sample)
    with Image.open(tmp_path / "demo_defocus.png") as defocus:
        assert defocus.size == (600, 400) and defocus.mode.startswith("I")


def test_demo_at_strength_zero_is_the_sample_itself(bundled, tmp_path: Path, capsys) -> None:
    assert run(capsys, "demo", "-o", tmp_path / "demo.png", "--strength", "0")[0] == 0
    assert np.array_equal(pixels(tmp_path / "demo.png"), pixels(SAMPLE_PHOTO))


def test_demo_keeps_an_existing_output(bundled, tmp_path: Path, capsys) -> None:
    output = tmp_path / "demo.png"
    output.write_bytes(b"mine")
    code, stderr = run(capsys, "demo", "-o", output)
    assert code == 2
    assert_one_line_error(stderr, "demo", str(output), "already exists")
    assert output.read_bytes() == b"mine"
    assert run(capsys, "demo", "-o", output, "--overwrite")[0] == 0
    assert pixels(output).shape == (400, 600, 3)


def test_demo_without_a_bundle_says_so(no_bundle, tmp_path: Path, capsys) -> None:
    code, stderr = run(capsys, "demo", "-o", tmp_path / "demo.png")
    assert code == 2
    assert_one_line_error(stderr, "demo", "no model available")
    assert not any(tmp_path.iterdir())
