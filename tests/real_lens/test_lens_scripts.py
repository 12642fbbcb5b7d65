"""The start shared by the scripts over the real-lens pairs (scripts/lens_pairs_script.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def model_and_pairs(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(REPO / "scripts"))
    monkeypatch.delitem(sys.modules, "lens_pairs_script", raising=False)
    from lens_pairs_script import model_and_pairs

    return model_and_pairs


def test_without_the_pairs_it_says_so_and_succeeds(model_and_pairs, tmp_path: Path, capsys) -> None:
    missing = tmp_path / "pairs.csv"
    assert model_and_pairs("check", "", ["--pairs", str(missing)]) == 0
    out = capsys.readouterr().out
    assert out == f"check: {missing}: no such file (the real-lens set lives in ../shared)\n"


def test_a_bad_csv_or_model_is_one_line_and_status_2(model_and_pairs, tmp_path: Path, capsys) -> None:
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("name,original\na,a.jpg\n")
    assert model_and_pairs("check", "", ["--pairs", str(pairs)]) == 2
    error = capsys.readouterr().err
    assert error == (
        f"check: error: {pairs}: no column 'bokeh' in the header (required: name, original, bokeh)\n"
    )
    pairs.write_text("name,original,bokeh\na,a.jpg,b.jpg\na,a.jpg,b.jpg\n")
    assert model_and_pairs("check", "", ["--pairs", str(pairs)]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"check: error: {pairs}: row 3") and error.count("\n") == 1
    pairs.write_text("name,original,bokeh\na,a.jpg,b.jpg\n")
    assert model_and_pairs("check", "", ["--pairs", str(pairs), "--model", "no-such-model"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("check: error: no-such-model: neither a bundled model") and error.count("\n") == 1
