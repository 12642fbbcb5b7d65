"""Fixtures of the model tests: the reference checkpoints rebuilt from the parity manifest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from reference_weights import PARITY_DATA, reference_state_dict

from d2f.models import D2F, load_official


@pytest.fixture(scope="session")
def manifest() -> dict:
    return json.loads((PARITY_DATA / "manifest.json").read_text())


@pytest.fixture(scope="session")
def reference_state_dicts(manifest) -> dict[str, dict[str, torch.Tensor]]:
    return {stage: reference_state_dict(section) for stage, section in manifest.items()}


@pytest.fixture(scope="session")
def official_files(tmp_path_factory, reference_state_dicts) -> tuple[Path, Path]:
    """The two reference checkpoints, saved as bare state dicts."""
    directory = tmp_path_factory.mktemp("official")
    paths = directory / "stage1.pth", directory / "stage2.pth"
    for path, stage in zip(paths, ("stage1", "stage2"), strict=True):
        torch.save(reference_state_dicts[stage], path)
    return paths


@pytest.fixture(scope="module")
def parity_model(official_files) -> D2F:
    """D2F with the parity weights, in eval mode; tests must not modify it."""
    return load_official(*official_files)
