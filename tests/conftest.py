"""Shared fixtures: the devices and dtypes to test on, and a guard on the global autograd switch."""

from __future__ import annotations

import pytest
import torch

DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    return torch.device(request.param)


@pytest.fixture(params=[torch.float32, torch.float64], ids=["float32", "float64"])
def dtype(request) -> torch.dtype:
    return request.param


@pytest.fixture(autouse=True)
def gradients_stay_enabled():
    """Fail the test that leaves autograd off: the tests after it would fail far from the cause."""
    yield
    if not torch.is_grad_enabled():
        torch.set_grad_enabled(True)
        pytest.fail("this test left gradients disabled (torch.set_grad_enabled(False) without restoring)")
