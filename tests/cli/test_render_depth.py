"""``d2f render --depth``: one photo rendered from its own depth map, with the depth options."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import d2f.pipeline
from d2f.cli import main
from d2f.models import D2F
from tiny_models import TINY_LITE


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, D2F]:
    torch.manual_seed(0)
    model = D2F(TINY_LITE).eval()
    return model.save_pretrained(tmp_path_factory.mktemp("weights")), model


def test_render_with_a_depth_map(capsys, tmp_path: Path, weights) -> None:
    folder, model = weights
    pixels = np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "photo.png")
    depth = np.repeat(np.linspace(10.0, 1.0, 20)[:, None], 30, axis=1).astype(np.float32)
    depth[2, 3] = -1.0  # the stated invalid value
    np.save(tmp_path / "depth.npy", depth)
    argv = ["render", str(tmp_path / "photo.png"), "-o", str(tmp_path / "out.png"), "--weights", str(folder),
            "--device", "cpu", "--depth", str(tmp_path / "depth.npy"), "--depth-kind", "depth",
            "--depth-invalid", "-1", "--focus", "30,35", "--f-number", "1.4", "--aperture-blades", "6"]
    assert main(argv) == 0
    expected = d2f.pipeline.render_image(
        pixels, model, "cpu", depth=depth, depth_kind="depth", depth_invalid=-1.0, focus=(30.0, 35.0),
        f_number=1.4, aperture_blades=6,
    )
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out.png")), expected)


def test_depth_errors_are_one_line(capsys, tmp_path: Path, weights) -> None:
    folder, _ = weights
    for name in ("a.png", "b.png"):
        Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(tmp_path / name)
    (tmp_path / "bad.png").write_bytes(b"garbage")
    base = ["render", "-o", str(tmp_path / "out"), "--weights", str(folder)]
    two_photos = [str(tmp_path / "a.png"), str(tmp_path / "b.png")]
    assert main([*base, *two_photos, "--depth", str(tmp_path / "a.png")]) == 2
    assert "--depth: give exactly one input photo" in capsys.readouterr().err
    assert main([*base, str(tmp_path / "a.png"), "--depth", str(tmp_path / "bad.png")]) == 2
    err = capsys.readouterr().err
    assert "bad.png: cannot read the depth map" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_a_focus_point_outside_the_photo_names_the_photo_and_writes_nothing(capsys, tmp_path: Path, weights):
    folder, _ = weights
    Image.fromarray(np.zeros((40, 60, 3), dtype=np.uint8)).save(tmp_path / "photo.png")
    np.save(tmp_path / "depth.npy", np.ones((40, 60), np.float32))
    argv = ["render", str(tmp_path / "photo.png"), "-o", str(tmp_path / "out" / "o.png"), "--weights",
            str(folder), "--depth", str(tmp_path / "depth.npy"), "--focus", "61,10"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    photo = tmp_path / "photo.png"
    assert err == [
        f"d2f render: error: {photo}: focus: (61, 10) is outside the photo (60x40 pixels; x from 0 to 60, y "
        "from 0 to 40)"
    ]
    assert not (tmp_path / "out").exists()


def test_depth_scale_makes_the_map_metric(capsys, tmp_path: Path, weights) -> None:
    folder, model = weights
    pixels = np.random.default_rng(1).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "photo.png")
    depth_mm = np.repeat(np.linspace(4000.0, 1000.0, 20)[:, None], 30, axis=1).astype(np.float32)
    np.save(tmp_path / "depth.npy", depth_mm)
    base = ["render", str(tmp_path / "photo.png"), "--weights", str(folder), "--depth",
            str(tmp_path / "depth.npy"), "--depth-kind", "depth", "--focus", "30,39"]
    assert main([*base, "-o", str(tmp_path / "metric.png"), "--depth-scale", "0.001"]) == 0
    expected = d2f.pipeline.render_image(
        pixels, model, "cpu", depth=depth_mm, depth_kind="depth", depth_scale=0.001, focus=(30.0, 39.0)
    )
    assert np.array_equal(np.asarray(Image.open(tmp_path / "metric.png")), expected)
    assert main([*base, "-o", str(tmp_path / "plain.png")]) == 0  # one range for every photo instead
    assert not np.array_equal(np.asarray(Image.open(tmp_path / "plain.png")), expected)
    capsys.readouterr()
    no_map = ["render", str(tmp_path / "photo.png"), "--weights", str(folder), "--depth-scale", "0.001"]
    assert main(no_map) == 2
    error = capsys.readouterr().err.strip()
    assert error == "d2f render: error: --depth-scale: only with --depth, the map whose units it gives"
    assert main([*base, "-o", str(tmp_path / "bad.png"), "--depth-scale", "0"]) == 2
    error = capsys.readouterr().err.strip()
    assert error == "d2f render: error: --depth-scale: expected a finite number > 0, got 0"
    assert not (tmp_path / "bad.png").exists()
