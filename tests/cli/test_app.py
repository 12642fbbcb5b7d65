"""``d2f app``'s command line: its flags and its refusals (the app itself: tests/app)."""

from __future__ import annotations

import argparse

import pytest

from d2f.cli import main
from d2f.cli.app import APP_MODEL, app_model
from d2f.models import presets


def test_app_is_listed_with_its_flags(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["app", "--help"])
    help_text = capsys.readouterr().out
    for flag in ("--port", "--model", "--device", "--max-megapixels", "--preview-side"):
        assert flag in help_text
    assert "--share" not in help_text and "127.0.0.1" in help_text
    assert "default: the bundled d2f-lite-2 when installed, else d2f-lite" in help_text


def weights_args(**flags: str) -> argparse.Namespace:
    return argparse.Namespace(**{"model": None, "weights": None, "stage1": None, "stage2": None, **flags})


def test_without_weights_flags_the_app_takes_the_depth_model() -> None:
    assert app_model(weights_args()).config.predicts_depth
    assert not app_model(weights_args(model="d2f-lite")).config.predicts_depth


def test_without_the_depth_bundle_the_app_falls_back_to_the_default_model(monkeypatch) -> None:
    monkeypatch.setattr(presets, "is_bundled", lambda name=presets.DEFAULT_MODEL: name != APP_MODEL)
    assert not app_model(weights_args()).config.predicts_depth


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--port", "70000"], "--port: expected 0 to 65535, got 70000"),
        (["--max-megapixels", "0"], "--max-megapixels: expected a positive number, got 0"),
        (["--preview-side", "10"], "--preview-side: expected at least 64 pixels, got 10"),
    ],
)
def test_bad_flags_are_refused_in_one_line(capsys, arguments, message) -> None:
    assert main(["app", *arguments]) == 2
    assert capsys.readouterr().err.strip() == f"d2f app: error: {message}"
