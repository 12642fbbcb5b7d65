"""``d2f app``'s command line: its flags and its refusals (the app itself: tests/app)."""

from __future__ import annotations

import pytest

from d2f.cli import main


def test_app_is_listed_with_its_flags(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["app", "--help"])
    help_text = capsys.readouterr().out
    for flag in ("--port", "--model", "--device", "--max-megapixels", "--preview-side"):
        assert flag in help_text
    assert "--share" not in help_text and "127.0.0.1" in help_text


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
