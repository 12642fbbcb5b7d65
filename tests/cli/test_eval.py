import csv
import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

from d2f.cli import main
from d2f.models import D2F
from lens_scenes import lens_scene, write_csv, write_lens_pairs
from tiny_models import TINY_LITE


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
        (["--baseline", "identity", "--weights", "w"], "--data evaluates one method"),
        (["--baseline", "identity", "--baseline", "gaussian"], "--data evaluates one method"),
        (["--baseline", "identity", "--focus-hint"], "--focus-hint: only with --pairs"),
        (["--baseline", "identity", "--strength", "0.5"], "--strength: applies to a model"),
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


def test_folder_default_is_the_bundled_model(pairs, capsys):
    assert main(["eval", "--data", str(pairs), "--no-lpips", "--limit", "1"]) == 0
    assert "model d2f-lite: 1 images" in capsys.readouterr().out


# ------------------------------------------------------------------------------------- real-lens pairs

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"


@pytest.fixture(scope="module")
def lens_pairs(tmp_path_factory):
    """The synthetic scene at three apertures (set "synthetic"), and one pair of set "other" whose target
    has another size."""
    folder = tmp_path_factory.mktemp("lens")
    bokeh = lens_scene()[1]
    Image.fromarray(bokeh[2.0]).resize((96, 64)).save(folder / "small.png")
    other = {"name": "other", "set": "other", "original": "f16.png", "bokeh": "small.png"}
    return write_lens_pairs(folder, extra_rows=[other])


@pytest.fixture(scope="module")
def depth_weights(tmp_path_factory):
    torch.manual_seed(0)
    model = D2F(dataclasses.replace(TINY_LITE, predicts="depth", working_long_side=256))
    return model.save_pretrained(tmp_path_factory.mktemp("depth"))


def read_rows(path):
    return list(csv.DictReader(path.open()))


def test_pairs_with_both_baselines_report_summary_sweeps_and_sheets(lens_pairs, tmp_path, capsys):
    report, sheets = tmp_path / "out" / "report.csv", tmp_path / "sheets"
    arguments = [
        "--baseline",
        "identity",
        "--baseline",
        "gaussian",
        "--out",
        str(report),
        "--sheet",
        str(sheets),
    ]
    assert main(["eval", "--pairs", str(lens_pairs), *arguments]) == 0
    out = capsys.readouterr().out
    assert "4 of 4 pairs scored" in out
    table = out.splitlines()
    header = next(line for line in table if "identity" in line)
    assert "gaussian" in header and "d2f-lite" not in header
    identity_agreement = next(line for line in table if line.startswith("synthetic (3)")).split()[4]
    assert identity_agreement == "0.000"
    assert any(line.startswith("all (4)") for line in table)
    assert any(line.startswith("scene (f/8, f/4, f/2)") and "1.00" in line for line in table)

    rows = read_rows(report)
    assert [(row["name"], row["method"]) for row in rows[:2]] == [
        ("scene-f8", "identity"),
        ("scene-f8", "gaussian"),
    ]
    assert len(rows) == 8 and all(row["error"] == "" for row in rows)
    assert rows[-1]["note"] == "target 96x64 resized to the photo's 192x128"
    assert rows[0]["background_blur"] == "1" and float(rows[0]["lens_background_blur"]) > 1
    summary = read_rows(tmp_path / "out" / "report_summary.csv")
    groups = [(row["group"], row["method"]) for row in summary]
    assert groups[:2] == [("synthetic", "identity"), ("synthetic", "gaussian")]
    assert (
        ("other", "gaussian") in groups
        and ("all", "identity") in groups
        and ("scene scene", "gaussian") in groups
    )
    all_identity = next(row for row in summary if row["group"] == "all" and row["method"] == "identity")
    assert all_identity["pairs"] == "4" and all_identity["lens_aperture_order"] == "1"
    assert all_identity["hints"] == "none"
    assert sorted(path.name for path in sheets.iterdir()) == ["other.jpg", "synthetic.jpg"]
    with Image.open(sheets / "synthetic.jpg") as sheet:
        assert sheet.format == "JPEG" and sheet.width < 1400  # input | gaussian | target

    assert main(["eval", "--pairs", str(lens_pairs), *arguments]) == 2
    assert "report.csv: already exists" in capsys.readouterr().err


def test_pairs_bad_rows_are_reported_and_the_others_scored(lens_pairs, tmp_path, capsys):
    folder = lens_pairs.parent
    (tmp_path / "broken.png").write_bytes(b"not a png")
    rows = [
        {"name": "scene-f8", "original": str(folder / "f16.png"), "bokeh": str(folder / "f8.png")},
        {"name": "gone", "original": str(folder / "f16.png"), "bokeh": str(tmp_path / "missing.png")},
        {"name": "broken", "original": str(tmp_path / "broken.png"), "bokeh": str(folder / "f2.png")},
        {"name": "", "original": "a.png", "bokeh": "b.png"},
    ]
    path = write_csv(tmp_path / "pairs.csv", rows)
    report = tmp_path / "report.csv"
    assert main(["eval", "--pairs", str(path), "--baseline", "identity", "--out", str(report)]) == 2
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.startswith("d2f eval: error:")]
    assert errors == [
        "d2f eval: error: row 5: empty name",
        f"d2f eval: error: row 3 (gone): {tmp_path / 'missing.png'}: no such file",
        f"d2f eval: error: row 4 (broken): {tmp_path / 'broken.png'}: not an image file (or not a format "
        "Pillow can read)",
    ]
    assert "3 of 4 pairs failed" in captured.err and "1 of 4 pairs scored" in captured.out
    reported = read_rows(report)
    assert [row["name"] for row in reported] == ["scene-f8", "gone", "broken", ""]
    assert reported[0]["psnr"] != "" and reported[1]["error"].startswith("row 3 (gone):")


def test_pairs_csv_without_a_required_column_is_one_error(tmp_path, capsys):
    path = write_csv(tmp_path / "pairs.csv", [{"name": "a", "original": "a.png"}], ["name", "original"])
    report = tmp_path / "report.csv"
    assert main(["eval", "--pairs", str(path), "--baseline", "identity", "--out", str(report)]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err == f"d2f eval: error: {path}: no column 'bokeh' in the header (required: name, original, bokeh)"
    )
    assert not report.exists()


def test_pairs_default_is_the_bundled_model_with_its_defocus_map(lens_pairs, tmp_path, capsys):
    sheets = tmp_path / "sheets"
    assert main(["eval", "--pairs", str(lens_pairs), "--limit", "1", "--sheet", str(sheets)]) == 0
    out = capsys.readouterr().out
    assert "1 of 1 pairs scored" in out and "d2f-lite" in out and "hints" not in out
    assert (sheets / "synthetic.jpg").is_file()


def test_pairs_hints_go_to_a_model_that_takes_them(lens_pairs, depth_weights, tmp_path, capsys):
    report = tmp_path / "report.csv"
    arguments = ["--weights", str(depth_weights), "--focus-hint", "--aperture", "--baseline", "identity"]
    assert main(["eval", "--pairs", str(lens_pairs), *arguments, "--out", str(report)]) == 0
    out = capsys.readouterr().out
    expected = "focus on 4 pairs (3 from the focus mask, 1 from the sharpest tile); f-numbers on 3 pairs"
    assert f"hints given to {depth_weights}: {expected}" in out
    rows = {(row["name"], row["method"]): row for row in read_rows(report)}
    told = rows["scene-f2", str(depth_weights)]
    assert (told["focus_x"], told["focus_y"], told["f_number"], told["input_f_number"]) == (
        "63",
        "55",
        "2",
        "16",
    )
    assert (
        rows["scene-f2", "identity"]["focus_x"] == "" and rows["other", str(depth_weights)]["f_number"] == ""
    )
    summary = read_rows(tmp_path / "report_summary.csv")
    assert (
        next(row for row in summary if row["group"] == "all" and row["method"] != "identity")["hints"]
        == expected
    )


@pytest.mark.parametrize(("flag", "option"), [("--focus-hint", "focus"), ("--aperture", "f_number")])
def test_pairs_hints_stop_a_model_that_cannot_take_them(lens_pairs, tmp_path, capsys, flag, option):
    torch.manual_seed(0)
    weights = D2F(TINY_LITE).save_pretrained(tmp_path / "defocus")
    report = tmp_path / "report.csv"
    assert (
        main(["eval", "--pairs", str(lens_pairs), "--weights", str(weights), flag, "--out", str(report)]) == 2
    )
    err = capsys.readouterr().err.strip()
    assert err.startswith(
        f"d2f eval: error: {flag}: this model predicts defocus, not depth, so it cannot take"
    )
    assert option in err and "\n" not in err and not report.exists()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--baseline", "identity", "--aperture"], "--aperture: applies to a model"),
        (["--split", "val294"], "--split: only with --data"),
        (["--lpips", "x"], "--lpips: only with --data"),
        (["--focus-hint", "--focus", "3,4"], "--focus: this model predicts defocus"),
    ],
)
def test_pairs_bad_options(lens_pairs, capsys, arguments, message):
    assert main(["eval", "--pairs", str(lens_pairs), *arguments]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("d2f eval: error:") and message in err and "\n" not in err


@pytest.mark.skipif(
    not (SHARED / "real_lens").is_dir(), reason="shared real-lens pairs (../shared/real_lens) absent"
)
def test_real_lens_pairs_with_the_baselines(capsys):
    arguments = ["--baseline", "identity", "--baseline", "gaussian", "--limit", "2"]
    assert main(["eval", "--pairs", str(SHARED / "real_lens" / "pairs.csv"), *arguments]) == 0
    out = capsys.readouterr().out
    vabd = next(line for line in out.splitlines() if line.startswith("vabd (2)")).split()
    identity_psnr, identity_agreement, gaussian_agreement = float(vabd[2]), vabd[4], float(vabd[7])
    assert 10 < identity_psnr < 30 and identity_agreement == "0.000" and -1 <= gaussian_agreement <= 1
