import csv

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

from d2f.cli import main


@pytest.fixture
def pairs(tmp_path):
    """Two 64x80 pairs whose ground truth is the gaussian baseline of the photo, with subject masks."""
    rng = np.random.default_rng(0)
    root = tmp_path / "pairs"
    for folder in ("original", "bokeh", "subject_mask"):
        (root / folder).mkdir(parents=True)
    for name in ("1", "2"):
        image = rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)
        Image.fromarray(image).save(root / "original" / f"{name}.png")
        Image.fromarray(image).filter(ImageFilter.GaussianBlur(6)).save(root / "bokeh" / f"{name}.png")
        Image.fromarray(np.full((64, 80), 255, np.uint8)).save(root / "subject_mask" / f"{name}.png")
    return root


def test_gaussian_baseline_table_and_report(pairs, tmp_path, capsys):
    report = tmp_path / "report.csv"
    assert main(["eval", "--data", str(pairs), "--baseline", "gaussian", "--out", str(report)]) == 0
    out, err = capsys.readouterr()
    assert "baseline gaussian: 2 images" in out and "mean" in out
    assert "LPIPS skipped" in err or "LPIPS" in out
    rows = list(csv.DictReader(report.open()))
    assert [row["name"] for row in rows] == ["1", "2", "mean"]
    assert rows[0]["psnr"] == "inf" and float(rows[0]["ssim"]) == pytest.approx(1.0)
    assert float(rows[0]["subject_sharpness"]) < 0.1


def test_identity_baseline_scores_below_the_gaussian_on_blurred_ground_truth(pairs, capsys):
    assert main(["eval", "--data", str(pairs), "--baseline", "identity", "--no-lpips"]) == 0
    out = capsys.readouterr().out
    mean_row = next(line for line in out.splitlines() if line.startswith("mean")).split()
    psnr, ssim, _, sharpness = (float(value) for value in mean_row[1:5])
    assert psnr < 30 and ssim < 0.5 and sharpness == pytest.approx(1.0)


def test_model_weights_are_evaluated(pairs, tmp_path, capsys):
    from d2f.models import D2F, D2FConfig

    torch.manual_seed(0)
    config = D2FConfig(encoder="resnet18", decoder_features=16, head_features=(8, 8), fusion_features=(8, 8))
    D2F(config).save_pretrained(tmp_path / "model")
    assert main(["eval", "--data", str(pairs), "--weights", str(tmp_path / "model"), "--no-lpips"]) == 0
    assert f"model {tmp_path / 'model'}: 2 images" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--baseline", "identity", "--weights", "w"], "exactly one of"),
        ([], "exactly one of"),
        (["--stage1", "a"], "--stage1 and --stage2 go together"),
        (["--baseline", "identity", "--limit", "0"], "--limit"),
        (["--baseline", "identity", "--lpips", "nowhere"], "--lpips"),
    ],
)
def test_bad_options_are_one_line_errors(pairs, capsys, arguments, message):
    assert main(["eval", "--data", str(pairs), *arguments]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("d2f eval: error:") and message in err and "\n" not in err


def test_missing_data_folder_and_existing_report(pairs, tmp_path, capsys):
    assert main(["eval", "--data", str(tmp_path / "none"), "--baseline", "identity"]) == 2
    assert "none: no such data folder" in capsys.readouterr().err
    report = tmp_path / "report.csv"
    report.write_text("keep")
    assert main(["eval", "--data", str(pairs), "--baseline", "identity", "--out", str(report)]) == 2
    assert "already exists" in capsys.readouterr().err and report.read_text() == "keep"


def test_lpips_column_from_a_local_weights_folder(pairs, tmp_path, capsys):
    from torchvision.models import alexnet

    from d2f.lpips import ALEXNET_FILE, LINEAR_FILE

    torch.manual_seed(0)
    features = alexnet(weights=None).features.state_dict()
    torch.save({f"features.{key}": value for key, value in features.items()}, tmp_path / ALEXNET_FILE)
    linear = {
        f"lin{index}.model.1.weight": torch.rand(1, size, 1, 1)
        for index, size in enumerate((64, 192, 384, 256, 256))
    }
    torch.save(linear, tmp_path / LINEAR_FILE)
    report = tmp_path / "report.csv"
    arguments = [
        "eval",
        "--data",
        str(pairs),
        "--baseline",
        "identity",
        "--lpips",
        str(tmp_path),
        "--out",
        str(report),
    ]
    assert main(arguments) == 0
    assert "LPIPS" in capsys.readouterr().out
    rows = list(csv.DictReader(report.open()))
    assert all(float(row["lpips"]) > 0 for row in rows)
