"""Conv3x3: NNPACK's Winograd path at inference, the ordinary convolution otherwise."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from d2f.models.conv import Conv3x3


@pytest.mark.parametrize("bias", [True, False])
def test_matches_the_direct_convolution(bias):
    torch.manual_seed(0)
    conv = Conv3x3(16, 8, bias=bias)
    x = torch.randn(2, 16, 33, 37)
    expected = F.conv2d(x, conv.weight, conv.bias, padding=1)
    with torch.no_grad():
        fast = conv(x)
        with torch.backends.nnpack.flags(enabled=False):
            direct = conv(x)
    assert fast.shape == (2, 8, 33, 37)
    torch.testing.assert_close(fast, expected.detach(), rtol=1e-4, atol=1e-5)
    assert torch.equal(direct, expected.detach())


def test_takes_the_winograd_path_only_when_it_applies(monkeypatch):
    calls = []
    nnpack = torch._nnpack_spatial_convolution

    def spy(*args):
        calls.append(args[0].shape)
        return nnpack(*args)

    monkeypatch.setattr(torch, "_nnpack_spatial_convolution", spy)
    conv = Conv3x3(4, 4)
    x = torch.randn(1, 4, 32, 32)
    with torch.no_grad():
        conv(x)
        conv(x[..., :16, :16].contiguous())  # too small to gain from it
        conv(x.contiguous(memory_format=torch.channels_last))
        conv.double()(x.double())
    conv.float()(x)  # the weights need gradients
    assert calls == ([torch.Size([1, 4, 32, 32])] if torch.backends.nnpack.is_available() else [])


def test_gradients_flow():
    conv = Conv3x3(3, 2)
    x = torch.randn(1, 3, 6, 6, requires_grad=True)
    conv(x).sum().backward()
    assert x.grad is not None and conv.weight.grad is not None
