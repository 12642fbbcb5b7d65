"""Exponential moving average of a model's weights."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn


class EMA:
    """A copy of ``model`` whose weights follow ``shadow = decay * shadow + (1 - decay) * weight``.

    Buffers (batch-norm statistics) are copied as they are. ``model`` is the averaged copy, in eval mode.
    """

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for shadow, weight in zip(self.model.parameters(), model.parameters(), strict=True):
            shadow.lerp_(weight.detach(), 1 - self.decay)
        for shadow, buffer in zip(self.model.buffers(), model.buffers(), strict=True):
            shadow.copy_(buffer)

    def state_dict(self) -> dict[str, Any]:
        return self.model.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state)


__all__ = ["EMA"]
