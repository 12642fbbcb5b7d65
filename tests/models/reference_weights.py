"""The deterministic weights behind the parity files, rebuilt from the manifest.

Re-implements the rule of ``shared/parity/deterministic_weights.py``: every tensor is a pure function of
its reference key, shape and kind, so the checkpoints that made the parity files can be rebuilt exactly
without the reference code. Used by the model tests and by ``benchmarks/pipeline.py``.
"""

from __future__ import annotations

import json
import math
import zlib
from pathlib import Path

import torch

PARITY_DATA = Path(__file__).resolve().parents[1] / "data" / "parity"


def reference_tensor(key: str, shape: list[int], kind: str) -> torch.Tensor:
    generator = torch.Generator().manual_seed(zlib.crc32(key.encode()))
    shape = tuple(shape)
    if kind == "count":
        return torch.tensor(0, dtype=torch.int64)
    if kind == "bn_weight":
        return 1.0 + 0.1 * torch.randn(shape, generator=generator)
    if kind in ("bn_bias", "bn_mean"):
        return 0.05 * torch.randn(shape, generator=generator)
    if kind == "bn_var":
        return 0.75 + 0.5 * torch.rand(shape, generator=generator)
    if kind == "bias":
        return 0.01 * torch.randn(shape, generator=generator)
    if kind == "conv_weight":
        return torch.randn(shape, generator=generator) * (1.0 / math.prod(shape[1:])) ** 0.5
    raise ValueError(f"unknown kind {kind!r}")


def reference_state_dict(section: dict) -> dict[str, torch.Tensor]:
    """One manifest section ("stage1" or "stage2") -> a state dict under the reference's keys."""
    state_dict = {}
    for key, spec in section.items():
        tensor = reference_tensor(key, spec["shape"], spec["kind"])
        if "scale" in spec:
            tensor = tensor * spec["scale"]
        if "fill" in spec:
            tensor = torch.full_like(tensor, spec["fill"])
        state_dict[key] = tensor
    return state_dict


def reference_state_dicts(manifest_path: Path = PARITY_DATA / "manifest.json") -> dict[str, dict]:
    """{"stage1": state dict, "stage2": state dict} under the reference's keys."""
    manifest = json.loads(Path(manifest_path).read_text())
    return {stage: reference_state_dict(section) for stage, section in manifest.items()}
