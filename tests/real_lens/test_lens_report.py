import csv
import math
from pathlib import Path

import numpy as np
import pytest

from d2f.errors import InputError
from d2f.real_lens.pairs import LensPair, RowError
from d2f.real_lens.report import (
    PAIR_COLUMNS,
    SUMMARY_COLUMNS,
    describe_hints,
    summarize,
    summary_path,
    write_pair_report,
    write_summary,
)
from d2f.real_lens.scoring import MethodScore, ScoredPair
from d2f.real_lens.sweeps import Sweep


def scored(row, name, set_name, psnr, agreement, *, hints=None, source=None, notes=()):
    pair = LensPair(row, name, set_name, Path("a.png"), Path("b.png"))
    scores = {
        "identity": MethodScore(psnr - 1, 0.5, 0.0),
        "model": MethodScore(psnr, 0.8, agreement, subject_sharpness=0.9, hints=hints or {}),
    }
    return ScoredPair(pair, scores, list(notes), source, np.ones((1, 1), bool), np.zeros((1, 1)))


@pytest.fixture
def results():
    return [
        scored(2, "a1", "a", 20.0, 0.5, hints={"focus": (1.0, 2.0), "f_number": 2.0}, source="focus mask"),
        scored(3, "a2", "a", 22.0, math.nan, hints={"focus": (3.0, 4.0)}, source="sharpest tile"),
        scored(5, "b1", "b", 30.0, 0.1, notes=["target 10x10 resized to the photo's 20x20"]),
    ]


@pytest.fixture
def sweep():
    return Sweep(
        "a", "a", ["a1", "a2"], [4.0, 2.0], "focus mask", [2.0, 4.0],
        {"identity": [1.0, 1.0], "model": [2.0, 2.0]}, 1.0, {"identity": 0.0, "model": 0.0},
        {"identity": 1.5, "model": 0.5},
    )  # fmt: skip


def test_means_per_set_and_over_all_skip_undefined_values(results, sweep):
    rows = summarize(results, [sweep], ["identity", "model"])
    assert [(row.group, row.method) for row in rows] == [
        ("a", "identity"), ("a", "model"), ("b", "identity"), ("b", "model"), ("all", "identity"),
        ("all", "model"), ("scene a", "identity"), ("scene a", "model"),
    ]  # fmt: skip
    by_key = {(row.group, row.method): row for row in rows}
    model_a = by_key["a", "model"]
    assert model_a.pairs == 2 and model_a.values["psnr"] == 21.0 and model_a.values["blur_agreement"] == 0.5
    assert model_a.values["aperture_order"] == 0.0 and model_a.values["blur_error_stops"] == 0.5
    assert by_key["all", "model"].values["blur_agreement"] == pytest.approx(0.3)
    assert by_key["all", "model"].values["subject_sharpness"] == pytest.approx(0.9)
    assert math.isnan(by_key["all", "identity"].values["subject_sharpness"])
    assert math.isnan(by_key["b", "model"].values["aperture_order"])  # no sweep in set b
    scene = by_key["scene a", "identity"]
    assert scene.pairs == 2 and math.isnan(scene.values["psnr"]) and scene.values["blur_error_stops"] == 1.5
    assert by_key["scene a", "model"].values["lens_aperture_order"] == 1.0


def test_hints_are_described_per_method(results):
    assert describe_hints(results, "identity") == "none"
    expected = "focus on 2 pairs (1 from the focus mask, 1 from the sharpest tile); f-numbers on 1 pairs"
    assert describe_hints(results, "model") == expected
    assert describe_hints(results[2:], "model") == "none"


def test_pair_report_in_row_order_with_errors_and_notes(results, sweep, tmp_path):
    errors = [RowError(4, "bad", "a", "row 4 (bad): x.png: no such file")]
    path = write_pair_report(tmp_path / "report.csv", results, errors, [sweep])
    rows = list(csv.DictReader(path.open()))
    assert list(rows[0]) == list(PAIR_COLUMNS)
    assert [(row["name"], row["method"]) for row in rows] == [
        ("a1", "identity"), ("a1", "model"), ("a2", "identity"), ("a2", "model"), ("bad", ""),
        ("b1", "identity"), ("b1", "model"),
    ]  # fmt: skip
    assert rows[1]["focus_x"] == "1" and rows[1]["focus_y"] == "2" and rows[1]["f_number"] == "2"
    assert rows[1]["background_blur"] == "2" and rows[1]["lens_background_blur"] == "2"
    assert rows[3]["blur_agreement"] == "" and rows[0]["subject_sharpness"] == ""
    assert rows[4]["error"] == "row 4 (bad): x.png: no such file" and rows[4]["psnr"] == ""
    assert rows[5]["note"] == "target 10x10 resized to the photo's 20x20" and rows[5]["background_blur"] == ""
    with pytest.raises(InputError, match="already exists"):
        write_pair_report(path, results, errors, [sweep])
    write_pair_report(path, results[:1], [], [], overwrite=True)
    assert len(list(csv.DictReader(path.open()))) == 2
    assert list(tmp_path.glob(".*")) == []


def test_summary_file_beside_the_report(results, sweep, tmp_path):
    assert summary_path(tmp_path / "report.csv") == tmp_path / "report_summary.csv"
    assert summary_path(tmp_path / "out") == tmp_path / "out_summary.csv"
    path = write_summary(summary_path(tmp_path / "r.csv"), summarize(results, [sweep], ["identity", "model"]))
    rows = list(csv.DictReader(path.open()))
    assert list(rows[0]) == list(SUMMARY_COLUMNS) and len(rows) == 8
    assert rows[1]["group"] == "a" and rows[1]["psnr"] == "21" and rows[1]["hints"].startswith("focus on 2")
