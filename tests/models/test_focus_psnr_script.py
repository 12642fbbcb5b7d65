"""scripts/focus_psnr.py: how sharp a model keeps the in-focus subject of synthetic scenes."""

from __future__ import annotations

import dataclasses
import runpy
from pathlib import Path

import pytest
import torch

from d2f.models import D2F
from tiny_models import TINY_LITE

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "focus_psnr.py"
#: With seed 9001, half perspective scenes, 512x768: the fifth scene has nothing in focus.
SCENES = ["--count", "5", "--seed", "9001", "--perspective-probability", "0.5"]


@pytest.fixture(scope="module")
def depth_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = D2F(dataclasses.replace(TINY_LITE, predicts="depth", working_long_side=256)).eval()
    return model.save_pretrained(tmp_path_factory.mktemp("model") / "tiny-depth")


def test_told_focus_a_scene_with_nothing_in_focus_gets_no_hint(depth_model: Path, capsys) -> None:
    main = runpy.run_path(str(SCRIPT))["main"]
    assert main(["--model", str(depth_model), *SCENES, "--focus-hint"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[4] == "000004: nan dB (0% in focus)"
    assert lines[-1].startswith("in-focus PSNR over 5 scenes: ") and "nan" not in lines[-1]


def test_a_focus_range_keeps_the_subject_sharper(capsys) -> None:
    main = runpy.run_path(str(SCRIPT))["main"]
    figures = []
    for focus_range in ("0", "0.5"):
        arguments = ["--model", "d2f-lite-2", "--count", "2", "--focus-hint", "--focus-range", focus_range]
        assert main(arguments) == 0
        figures.append(float(capsys.readouterr().out.splitlines()[-1].split(": ")[1].split()[0]))
    assert figures[1] > figures[0]
