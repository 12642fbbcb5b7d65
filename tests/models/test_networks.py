"""The three networks, their blocks and the architecture config."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from d2f.errors import ConfigError, InputError
from d2f.models import (
    D2FConfig,
    DefocusNet,
    FeatureFusionBlock,
    FusionNet,
    RadianceNet,
    ResidualConvUnit,
    initial_focus_mask,
    luminance,
)
from d2f.models.defocus_net import DefocusHead


def _reference_residual_unit(unit: ResidualConvUnit, x: torch.Tensor) -> torch.Tensor:
    """The reference's forward, with its in-place first ReLU overwriting the input the skip adds."""
    x = x.clone()
    out = torch.relu_(x)
    out = torch.relu_(unit.conv1(out))
    return unit.conv2(out) + x


def test_residual_unit_reproduces_in_place_relu():
    torch.manual_seed(0)
    unit = ResidualConvUnit(8)
    x = torch.randn(2, 8, 6, 7)
    with torch.no_grad():
        actual = unit(x)
        torch.testing.assert_close(actual, _reference_residual_unit(unit, x))
        plain_skip = unit.conv2(F.relu(unit.conv1(F.relu(x)))) + x
    assert not torch.allclose(actual, plain_skip)  # the skip really adds relu(x)


def test_fusion_block_adds_refined_lateral_then_upsamples():
    torch.manual_seed(0)
    block = FeatureFusionBlock(4)
    path, lateral = torch.randn(1, 4, 5, 6), torch.randn(1, 4, 5, 6)
    with torch.no_grad():
        fused = block(path, lateral)
        expected = block.residual2(path + block.residual1(lateral))
        expected = F.interpolate(expected, size=(10, 12), mode="bilinear", align_corners=True)
        alone = block(path)
    assert fused.shape == (1, 4, 10, 12)
    torch.testing.assert_close(fused, expected)
    assert not torch.allclose(fused, alone)


@pytest.fixture(scope="module")
def defocus_net() -> DefocusNet:
    torch.manual_seed(0)
    return DefocusNet().eval()


def test_defocus_net_keeps_the_input_resolution(defocus_net):
    with torch.no_grad():
        defocus = defocus_net(torch.rand(2, 3, 64, 96))
    assert defocus.shape == (2, 1, 64, 96)
    assert torch.isfinite(defocus).all()


def test_defocus_net_architecture_matches_the_paper(defocus_net):
    assert defocus_net.encoder.channels == (256, 512, 1024, 2048)
    assert defocus_net.encoder.layer2[0].conv2.groups == 32  # ResNeXt 32x4d
    assert defocus_net.decoder.lateral4.weight.shape == (256, 2048, 3, 3)
    assert defocus_net.decoder.lateral4.bias is None
    assert defocus_net.head.conv3.weight.shape == (1, 32, 1, 1)


@pytest.mark.parametrize("size", [(64, 80), (48, 64)])
def test_defocus_net_rejects_sizes_off_its_stride(defocus_net, size):
    with pytest.raises(InputError, match="multiples of 32"):
        defocus_net(torch.rand(1, 3, *size))


def test_radiance_net_is_per_pixel_and_in_unit_interval():
    torch.manual_seed(0)
    net = RadianceNet()
    image = torch.rand(1, 3, 8, 9)
    with torch.no_grad():
        weight = net(image)
        single_pixel = net(image[..., 3:4, 5:6])
    assert weight.shape == (1, 1, 8, 9)
    assert ((weight > 0) & (weight < 1)).all()
    torch.testing.assert_close(weight[..., 3:4, 5:6], single_pixel)


def test_fusion_net_receptive_radius_is_exact():
    torch.manual_seed(0)
    net = FusionNet()
    defocus, image = torch.rand(1, 1, 21, 21), torch.rand(1, 3, 21, 21)
    changed = defocus.clone()
    changed[..., 10, 10] += 1.0
    with torch.no_grad():
        difference = (net(changed, image) - net(defocus, image)).abs()[0, 0]
    rows, cols = torch.nonzero(difference > 0, as_tuple=True)
    radius = net.receptive_radius
    assert radius == 4
    assert rows.min() >= 10 - radius and rows.max() <= 10 + radius
    assert cols.min() >= 10 - radius and cols.max() <= 10 + radius
    assert difference[10 - radius, 10] > 0 and difference[10 + radius, 10] > 0


def test_fusion_net_input_is_inverted_defocus_and_luma():
    net = FusionNet()
    with torch.no_grad():
        for conv in net.convs:
            conv.bias.zero_()
            conv.weight.zero_()
            conv.weight[:, :, 1, 1] = 1.0 / conv.in_channels  # channel mean at the centre tap
    defocus, image = torch.rand(1, 1, 5, 6), torch.rand(1, 3, 5, 6)
    with torch.no_grad():
        mask = net(defocus, image)
    expected = ((1 - defocus) + luminance(image)) / 2
    torch.testing.assert_close(mask, expected)


def test_luminance_weights():
    image = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)
    assert luminance(image).item() == pytest.approx(0.299)
    assert luminance(torch.ones(1, 3, 2, 2)).allclose(torch.ones(1, 1, 2, 2))


def test_initial_focus_mask_uses_the_fixed_threshold_when_something_is_sharp():
    defocus = torch.tensor([0.0, 0.1, 0.124, 0.126, 0.9]).view(1, 1, 1, 5)
    mask = initial_focus_mask(defocus)
    assert mask.flatten().tolist() == [1.0, 1.0, 1.0, 0.0, 0.0]


def test_initial_focus_mask_is_relative_when_nothing_is_below_the_threshold():
    # min 0.2 >= 1/8: the cutoff becomes 0.2 + (1.0 - 0.2) / 8 = 0.3, per image.
    blurry = torch.tensor([0.2, 0.29, 0.31, 1.0]).view(1, 1, 1, 4)
    sharp = torch.tensor([0.0, 0.29, 0.31, 1.0]).view(1, 1, 1, 4)
    mask = initial_focus_mask(torch.cat([blurry, sharp]))
    assert mask[0].flatten().tolist() == [1.0, 1.0, 0.0, 0.0]
    assert mask[1].flatten().tolist() == [1.0, 0.0, 0.0, 0.0]


def test_initial_focus_mask_checks_its_arguments():
    with pytest.raises(InputError, match="threshold"):
        initial_focus_mask(torch.rand(1, 1, 4, 4), threshold=1.5)
    with pytest.raises(InputError, match="defocus"):
        initial_focus_mask(torch.rand(1, 3, 4, 4))


def test_config_round_trips_through_a_dict():
    config = D2FConfig(kernel_sizes=(3, 5, 9), alpha=50, fusion_features=[32, 8])
    values = config.to_dict()
    assert values["architecture"] == "D2F"
    assert values["kernel_sizes"] == [3, 5, 9]
    assert D2FConfig.from_dict(values) == config
    assert D2FConfig.from_dict({}) == D2FConfig()


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"architecture": "UNet"}, "architecture"),
        ({"kernel_size": [3]}, "unknown config fields: kernel_size"),
        ({"kernel_sizes": [3, 4]}, "odd"),
        ({"kernel_sizes": []}, "kernel_sizes"),
        ({"decoder_features": 0}, "decoder_features"),
        ({"alpha": -1.0}, "alpha"),
        ({"focus_threshold": 1.0}, "focus_threshold"),
        ({"head_features": [128]}, "head_features"),
    ],
)
def test_config_rejects_bad_values(values, problem):
    with pytest.raises(ConfigError, match=problem):
        D2FConfig.from_dict(values)


@pytest.mark.parametrize("encoder", ["no_such_network", "squeezenet1_0"])
def test_unknown_or_unsupported_encoder_is_a_config_error(encoder):
    with pytest.raises(ConfigError, match="encoder"):
        DefocusNet(encoder)


@pytest.mark.parametrize("strip_height", [1, 2, 5])
def test_defocus_head_strips_equal_one_piece(strip_height, monkeypatch):
    torch.manual_seed(0)
    head = DefocusHead(16, (12, 8)).eval()
    x = torch.randn(2, 16, 23, 17)
    pieces = []
    forward = head._forward
    monkeypatch.setattr(head, "_forward", lambda strip: pieces.append(strip.shape[-2]) or forward(strip))
    with torch.no_grad():
        whole = head(x, strip_height=23)
        assert pieces == [23]
        with torch.backends.nnpack.flags(enabled=False):  # the direct method: exactly equal
            assert torch.equal(head(x, strip_height=strip_height), head(x, strip_height=23))
        strips = head(x, strip_height=strip_height)  # Winograd tiles fall differently: rounding only
    assert len(pieces) > 4
    assert strips.shape == (2, 1, 46, 34)
    torch.testing.assert_close(strips, whole, rtol=0, atol=1e-5)


def _literal_head(head: DefocusHead, x: torch.Tensor) -> torch.Tensor:
    upsampled = F.interpolate(head.conv1(x), scale_factor=2, mode="bilinear", align_corners=False)
    return head.conv3(F.relu(head.conv2(upsampled)))


@pytest.mark.parametrize("size", [(9, 13), (1, 1), (1, 5), (2, 2), (16, 24)])
def test_defocus_head_equals_upsampling_then_convolving(size):
    torch.manual_seed(0)
    head = DefocusHead(16, (12, 8)).eval()
    x = torch.randn(2, 16, *size)
    with torch.no_grad():
        expected = _literal_head(head, x)
        # The phase kernels sum the same products in another order: equal up to float rounding.
        torch.testing.assert_close(head(x), expected, rtol=0, atol=1e-5)
        with torch.backends.nnpack.flags(enabled=False):
            torch.testing.assert_close(head(x), expected, rtol=0, atol=1e-5)


def test_defocus_head_gradients_match_the_literal_form():
    torch.manual_seed(0)
    head = DefocusHead(8, (6, 4))
    x = torch.randn(1, 8, 7, 10, requires_grad=True)
    inputs = [x, head.conv2.weight, head.conv2.bias]
    gradients = torch.autograd.grad(head(x).square().sum(), inputs)
    expected = torch.autograd.grad(_literal_head(head, x).square().sum(), inputs)
    for actual, wanted in zip(gradients, expected, strict=True):
        torch.testing.assert_close(actual, wanted, rtol=1e-5, atol=1e-6)


def test_fusion_net_focus_threshold_init_is_the_soft_threshold():
    torch.manual_seed(0)
    net = FusionNet((8, 8)).init_focus_threshold(0.125, slope=8.0)
    defocus = torch.rand(2, 1, 16, 20)
    image = torch.rand(2, 3, 16, 20)
    with torch.no_grad():
        mask = net(defocus, image)
    torch.testing.assert_close(mask, 0.5 + 8.0 * (0.125 - defocus), atol=1e-5, rtol=0)


def test_fusion_net_focus_threshold_init_keeps_gradients_for_every_layer():
    net = FusionNet((8, 8)).init_focus_threshold()
    net(torch.rand(1, 1, 12, 12), torch.rand(1, 3, 12, 12)).mean().backward()
    assert all(conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0 for conv in net.convs)


@pytest.mark.parametrize(("threshold", "slope"), [(0.0, 8.0), (1.0, 8.0), (0.1, 0.0)])
def test_fusion_net_focus_threshold_init_checks_its_arguments(threshold, slope):
    with pytest.raises(InputError):
        FusionNet().init_focus_threshold(threshold, slope)
