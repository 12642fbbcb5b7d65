"""``d2f synth`` through ``d2f.cli.main``: files, determinism and one-line errors for bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from d2f.cli import main
from d2f.cli.synth import parse_size
from d2f.data import EBBDataset, SyntheticBokehDataset, read_scene
from d2f.errors import InputError

FOLDERS = ("original", "bokeh", "defocus", "coc", "disparity", "focus_mask")
SMALL = ["--count", "2", "--size", "32x48", "--kernel-scale", "0.2"]


def synth(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str]:
    """Run ``d2f synth``; returns the exit code and stderr."""
    code = main(["synth", *(str(arg) for arg in argv)])
    return code, capsys.readouterr().err


def contents(root: Path) -> dict[str, bytes]:
    files = sorted(path for path in root.rglob("*") if path.is_file())
    return {str(path.relative_to(root)): path.read_bytes() for path in files}


def test_writes_complete_scenes(tmp_path, capsys):
    code, err = synth(capsys, "--out", tmp_path / "out", "--seed", "3", *SMALL)
    assert code == 0, err
    files = contents(tmp_path / "out")
    expected = {f"{folder}/{name}.png" for folder in FOLDERS for name in ("000000", "000001")}
    expected |= {"scene/000000.json", "scene/000001.json"}
    assert set(files) == expected  # and no temporary files left behind
    with Image.open(tmp_path / "out" / "defocus" / "000000.png") as image:
        assert image.mode.startswith("I") and image.size == (48, 32)
    with Image.open(tmp_path / "out" / "bokeh" / "000000.png") as image:
        assert image.mode == "RGB"


def test_files_are_the_dataset_items_and_readable_as_ebb_pairs(tmp_path, capsys):
    assert synth(capsys, "--out", tmp_path, "--seed", "3", *SMALL)[0] == 0
    item = SyntheticBokehDataset(2, (32, 48), seed=3, kernel_scale=0.2)[1]
    scene = read_scene(tmp_path, "000001")
    for key in ("image", "bokeh"):
        torch.testing.assert_close(scene[key], item[key], atol=0.5 / 255 + 1e-6, rtol=0)
    torch.testing.assert_close(scene["defocus"], item["defocus"], atol=1 / 65535, rtol=0)
    pairs = EBBDataset(tmp_path)
    assert len(pairs) == 2 and torch.equal(pairs[1]["image"], scene["image"])


def test_scene_options_reach_the_scenes(tmp_path, capsys):
    options = ["--companion-focus-probability", "1", "--subject-support-probability", "1"]
    code, err = synth(capsys, "--out", tmp_path, "--seed", "3", *SMALL, *options)
    assert code == 0, err
    probabilities = {"companion_focus_probability": 1.0, "subject_support_probability": 1.0}
    item = SyntheticBokehDataset(2, (32, 48), seed=3, kernel_scale=0.2, **probabilities)[1]
    scene = read_scene(tmp_path, "000001")
    torch.testing.assert_close(scene["bokeh"], item["bokeh"], atol=0.5 / 255 + 1e-6, rtol=0)
    objects = scene["params"]["objects"]
    assert any(entry["shape"] == "support" for entry in objects)
    assert all(entry["coc"] == 0 for entry in objects)


def test_perspective_layout(tmp_path, capsys):
    code, err = synth(capsys, "--out", tmp_path, "--seed", "3", *SMALL, "--layout", "perspective")
    assert code == 0, err
    item = SyntheticBokehDataset(2, (32, 48), seed=3, kernel_scale=0.2, perspective_probability=1)[1]
    scene = read_scene(tmp_path, "000001")
    assert scene["params"]["layout"] == "perspective"
    torch.testing.assert_close(scene["bokeh"], item["bokeh"], atol=0.5 / 255 + 1e-6, rtol=0)


def test_same_seed_same_files(tmp_path, capsys):
    assert synth(capsys, "--out", tmp_path / "a", "--seed", "9", *SMALL)[0] == 0
    assert synth(capsys, "--out", tmp_path / "b", "--seed", "9", *SMALL)[0] == 0
    assert synth(capsys, "--out", tmp_path / "c", "--seed", "10", *SMALL)[0] == 0
    assert contents(tmp_path / "a") == contents(tmp_path / "b")
    assert contents(tmp_path / "a")["bokeh/000000.png"] != contents(tmp_path / "c")["bokeh/000000.png"]


def test_workers_write_the_same_files(tmp_path, capsys):
    assert synth(capsys, "--out", tmp_path / "one", "--seed", "4", *SMALL)[0] == 0
    code, err = synth(capsys, "--out", tmp_path / "two", "--seed", "4", "--workers", "2", *SMALL)
    assert code == 0, err
    assert contents(tmp_path / "one") == contents(tmp_path / "two")


def test_real_texture_folder(tmp_path, capsys):
    textures = tmp_path / "textures"
    textures.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (80, 120, 3), dtype=np.uint8)).save(
        textures / "photo.png"
    )
    code, err = synth(capsys, "--out", tmp_path / "out", "--textures", textures, *SMALL)
    assert code == 0, err
    assert len(list((tmp_path / "out" / "scene").iterdir())) == 2


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--size", "32by48"], "--size: expected HEIGHTxWIDTH"),
        (["--size", "8x48"], "--size: expected both sides >= 16"),
        (["--count", "0"], "--count"),
        (["--workers", "0"], "--workers"),
        (["--seed", "-2"], "--seed"),
        (["--kernel-scale", "-1"], "--kernel-scale"),
        (["--companion-focus-probability", "2"], "--companion-focus-probability: expected a number in"),
        (["--subject-support-probability", "-1"], "--subject-support-probability: expected a number in"),
        (["--device", "tpu"], "--device"),
        (["--layout", "perspective", "--subject-support-probability", "1"], "applies to the classic layout"),
    ],
)
def test_bad_arguments(tmp_path, capsys, arguments, message):
    code, err = synth(capsys, "--out", tmp_path / "out", *SMALL, *arguments)
    assert code == 2
    assert err.startswith("d2f synth: error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()  # nothing written


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda folder: None, "texture folder does not exist"),
        (lambda folder: folder.mkdir(), "texture folder is empty"),
        (lambda folder: (folder.mkdir(), (folder / "notes.txt").write_text("hi")), "holds no images"),
        (lambda folder: (folder.mkdir(), (folder / "x.jpg").write_bytes(b"junk")), "no readable images"),
    ],
    ids=["missing", "empty", "no-images", "broken-images"],
)
def test_bad_texture_folders(tmp_path, capsys, make, message):
    textures = tmp_path / "textures"
    make(textures)
    code, err = synth(capsys, "--out", tmp_path / "out", "--textures", textures, *SMALL)
    assert code == 2
    assert err.startswith("d2f synth: error: ") and str(textures) in err and message in err
    assert err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_out_is_a_file(tmp_path, capsys):
    (tmp_path / "out").write_text("x")
    code, err = synth(capsys, "--out", tmp_path / "out", *SMALL)
    assert code == 2 and "exists and is not a folder" in err


def test_parse_size():
    assert parse_size("512x768") == (512, 768)
    assert parse_size(" 64 X 96 ") == (64, 96)
    with pytest.raises(InputError):
        parse_size("512")
