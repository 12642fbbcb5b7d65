"""The README cannot drift from the code: its quick start runs here, on the bundled sample photo and model,
and its first code block is what ``.ci/run`` runs."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest

from d2f.cli import main
from d2f.cli.demo import SAMPLE_PHOTO
from d2f.models.presets import is_bundled

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
#: The comment that marks a code block of the README as one this test runs.
MARKER = "<!-- quick-start:"


def code_blocks(text: str) -> list[tuple[str, str, bool]]:
    """(language, code, marked) of each fenced code block, in order; marked: the marker comment is the
    last non-blank line before the block."""
    blocks = []
    for match in re.finditer(r"^```(\w*)\n(.*?)^```", text, flags=re.M | re.S):
        before = [line for line in text[: match.start()].splitlines() if line.strip()]
        marked = bool(before) and before[-1].startswith(MARKER)
        blocks.append((match[1], match[2], marked))
    return blocks


def commands(code: str) -> list[list[str]]:
    """The shell commands of a bash block, each as its arguments, comments dropped."""
    return [shlex.split(line, comments=True) for line in code.splitlines() if line.split("#")[0].strip()]


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder holding what the quick start names: photo.jpg and photos/ (the bundled sample photo)."""
    if not is_bundled("d2f-lite"):
        pytest.skip("this installation of d2f has no bundled d2f-lite weights, which the quick start uses")
    shutil.copy(SAMPLE_PHOTO, tmp_path / "photo.jpg")
    (tmp_path / "photos").mkdir()
    shutil.copy(SAMPLE_PHOTO, tmp_path / "photos" / "coffee.jpg")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_readme_marks_a_shell_and_a_python_quick_start() -> None:
    languages = [language for language, _, marked in code_blocks(README.read_text()) if marked]
    assert languages == ["bash", "python"]


def test_the_quick_start_commands_run(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (code,) = [
        code for language, code, marked in code_blocks(README.read_text()) if marked and language == "bash"
    ]
    for argv in commands(code):
        assert argv[0] == "d2f", argv
        assert main(argv[1:]) == 0, argv
        written = [
            line.removeprefix("wrote ") for line in capsys.readouterr().err.splitlines() if "wrote" in line
        ]
        assert written and all((workspace / path).is_file() for path in written), (argv, written)


def test_the_python_quick_start_runs(workspace: Path) -> None:
    (code,) = [
        code for language, code, marked in code_blocks(README.read_text()) if marked and language == "python"
    ]
    exec(compile(code, str(README), "exec"), {})
    assert (workspace / "photo_soft.jpg").is_file()


def test_ci_runs_exactly_the_readme_development_commands() -> None:
    language, first, _ = code_blocks(README.read_text())[0]
    lines = [
        line for line in (REPO / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")
    ]
    assert language == "bash" and first.splitlines() == lines[-2:]
    assert first.splitlines() == ["pip install -e '.[dev]'", "ruff check . && python -m pytest -q"]
