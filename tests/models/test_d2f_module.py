"""The D2F pipeline module: sizes, strips, precision and input checks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cuda_graphs import replay_and_eager
from d2f.errors import ConfigError, InputError
from d2f.models import D2F, D2FConfig, D2FOutput
from d2f.render import saturation_weight, weighted_layered_render


def _small_lite(defocus_long_side: int | None = None, clamp_defocus: bool = True) -> D2F:
    config = D2FConfig(
        encoder="efficientnet_lite0",
        decoder_features=8,
        head_features=(8, 8),
        fusion_features=(4, 4),
        defocus_long_side=defocus_long_side,
        clamp_defocus=clamp_defocus,
    )
    return D2F(config).eval()


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((256, 256), (128, 128)),
        ((192, 320), (128, 128)),  # 1.5 and 2.5 multiples of 64 round to even
        ((1024, 1536), (512, 768)),
        ((3000, 4000), (1472, 1984)),
        ((37, 53), (64, 64)),  # at least one multiple
        ((1, 1), (64, 64)),
    ],
)
def test_stage1_size(parity_model, size, expected):
    assert parity_model.stage1_size(*size) == expected


@pytest.mark.parametrize(("batch", "size"), [(2, (37, 53)), (1, (100, 150)), (1, (70, 200))])
def test_any_size_renders(parity_model, batch, size):
    image = torch.rand(batch, 3, *size)
    with torch.no_grad():
        output = parity_model(image)
    small = parity_model.stage1_size(*size)
    assert isinstance(output, D2FOutput)
    assert output.bokeh.shape == (batch, 3, *size)
    assert output.fusion_mask.shape == (batch, 1, *size)
    assert output.defocus.shape == (batch, 1, *small)
    assert output.bokeh_small.shape == (batch, 3, *small)
    for tensor in (output.bokeh, output.fusion_mask):
        assert tensor.min() >= 0 and tensor.max() <= 1
    assert output.bokeh.dtype == torch.float32


def test_forward_follows_the_pipeline_definition(parity_model):
    torch.manual_seed(1)
    image = torch.rand(1, 3, 90, 140)
    model = parity_model
    with torch.no_grad():
        output = model(image)
        small = F.interpolate(image, size=(64, 64), mode="bilinear", align_corners=False)
        defocus = model.defocus_net(small)
        weight = saturation_weight(small, model.radiance_net(small))
        bokeh_small = weighted_layered_render(small, defocus, weight)
        defocus_up = F.interpolate(defocus, size=(90, 140), mode="bilinear", align_corners=False)
        bokeh_up = F.interpolate(bokeh_small, size=(90, 140), mode="bilinear", align_corners=False)
        mask = model.fusion_net(defocus_up, image).clamp(0, 1)
        expected = (mask * image + (1 - mask) * bokeh_up).clamp(0, 1)
    torch.testing.assert_close(output.defocus, defocus)
    torch.testing.assert_close(output.bokeh_small, bokeh_small)
    torch.testing.assert_close(output.fusion_mask, mask)
    torch.testing.assert_close(output.bokeh, expected)


@pytest.mark.parametrize("strip_height", [1, 4, 7, 16])
def test_strips_give_the_same_result_as_one_piece(parity_model, strip_height):
    torch.manual_seed(2)
    image, defocus, bokeh_small = torch.rand(2, 3, 45, 61), torch.rand(2, 1, 64, 64), torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        whole = parity_model.fuse(image, defocus, bokeh_small, strip_height=45)
        strips = parity_model.fuse(image, defocus, bokeh_small, strip_height=strip_height)
    for strip_result, whole_result in zip(strips, whole, strict=True):
        torch.testing.assert_close(strip_result, whole_result, rtol=0, atol=1e-6)


def test_forward_uses_strips_without_autograd(parity_model, monkeypatch):
    strip_rows = []
    fuse_rows = parity_model._fuse_rows

    def spy(image, defocus_up, bokeh_up, top, bottom, *rest):
        strip_rows.append((top, bottom))
        return fuse_rows(image, defocus_up, bokeh_up, top, bottom, *rest)

    monkeypatch.setattr(parity_model, "_fuse_rows", spy)
    with torch.no_grad():
        parity_model(torch.rand(1, 3, 40, 30), strip_height=16)
    assert strip_rows == [(0, 16), (16, 32), (32, 40)]


def test_autograd_path_matches_and_has_gradients(parity_model):
    torch.manual_seed(3)
    image = torch.rand(1, 3, 40, 50)
    with torch.no_grad():
        reference = parity_model(image, strip_height=8)
    fusion_weight = parity_model.fusion_net.convs[0].weight
    output = parity_model(image)
    # Autograd takes the direct convolutions, inference NNPACK's Winograd ones: equal up to rounding.
    torch.testing.assert_close(output.bokeh, reference.bokeh, rtol=0, atol=1e-4)
    (gradient,) = torch.autograd.grad(output.bokeh.sum(), fusion_weight)
    assert torch.isfinite(gradient).all() and gradient.abs().sum() > 0


def test_bf16_precision_is_close_to_fp32(parity_model):
    torch.manual_seed(4)
    image = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        full = parity_model(image)
        fast = parity_model(image, precision="bf16")
    assert fast.bokeh.dtype == torch.float32
    assert (fast.bokeh - full.bokeh).abs().mean() < 0.02
    assert (fast.defocus - full.defocus).abs().max() < 0.1


def test_float64_model_computes_in_float64():
    torch.manual_seed(5)
    model = D2F(D2FConfig(encoder="resnet18", decoder_features=16)).eval().double()
    with torch.no_grad():
        output = model(torch.rand(1, 3, 32, 40, dtype=torch.float32))
    assert output.bokeh.dtype == torch.float64
    assert output.defocus.dtype == torch.float64


@pytest.mark.parametrize(
    ("image", "problem"),
    [
        (torch.rand(3, 64, 64), r"image: expected shape \(N, C, H, W\)"),
        (torch.rand(1, 4, 64, 64), "image: expected 3 channels"),
        (torch.randint(0, 255, (1, 3, 64, 64), dtype=torch.uint8), "image: expected a floating-point dtype"),
        (torch.full((1, 3, 64, 64), float("nan")), "image: expected finite values"),
        (torch.rand(1, 3, 0, 64), "image: expected a non-empty tensor"),
        ([[0.5]], "image: expected a torch.Tensor"),
    ],
)
def test_bad_images_are_input_errors(parity_model, image, problem):
    with pytest.raises(InputError, match=problem):
        parity_model(image)


@pytest.mark.parametrize(
    ("options", "problem"),
    [({"precision": "fp16"}, "precision"), ({"strip_height": 0}, "strip_height")],
)
def test_bad_options_are_input_errors(parity_model, options, problem):
    with pytest.raises(InputError, match=problem):
        parity_model(torch.rand(1, 3, 32, 32), **options)


def test_image_on_another_device_is_an_input_error():
    with torch.device("meta"):
        model = D2F()
    with pytest.raises(InputError, match="image: expected the model's device"):
        model(torch.rand(1, 3, 32, 32))


def test_fuse_checks_that_stage1_results_match_the_image(parity_model):
    image = torch.rand(2, 3, 32, 32)
    with pytest.raises(InputError, match="defocus: expected a batch of 2"):
        parity_model.fuse(image, torch.rand(1, 1, 64, 64), torch.rand(2, 3, 64, 64))
    with pytest.raises(InputError, match="bokeh_small: expected batch and spatial size"):
        parity_model.fuse(image, torch.rand(2, 1, 64, 64), torch.rand(2, 3, 64, 32))


@pytest.mark.parametrize("clamp_defocus", [False, True])
def test_clamp_defocus_renders_out_of_range_maps_in_range(clamp_defocus, monkeypatch):
    # A defocus map far below 0 selects no layer: unclamped (the paper's behaviour) it renders black,
    # clamped (d2f's own models) it renders the sharp image.
    model = _small_lite(clamp_defocus=clamp_defocus)
    monkeypatch.setattr(model.defocus_net, "forward", lambda image: torch.full_like(image[:, :1], -1.0))
    image_small = torch.rand(1, 3, 64, 64) * 0.9
    with torch.no_grad():
        stage1 = model.render_stage1(image_small)
        defocus, bokeh_small = stage1.defocus, stage1.bokeh_small
    assert torch.equal(defocus, torch.full_like(defocus, -1.0))  # the raw map is returned
    if clamp_defocus:
        torch.testing.assert_close(bokeh_small, image_small, atol=1e-5, rtol=0)
    else:
        assert bokeh_small.abs().max() < 1e-6


def test_clamp_defocus_must_be_a_bool():
    with pytest.raises(ConfigError, match="clamp_defocus"):
        D2FConfig(clamp_defocus="yes")


@pytest.mark.parametrize(
    ("long_side", "size", "expected"),
    [
        (None, (512, 768), (512, 768)),
        (384, (256, 384), (256, 384)),  # not larger: unchanged
        (384, (128, 192), (128, 192)),  # smaller: never enlarged
        (384, (512, 768), (256, 384)),
        (384, (768, 512), (384, 256)),
        (384, (1472, 1984), (288, 384)),  # aspect kept, multiples of 32
        (128, (64, 4096), (32, 128)),  # at least one multiple
    ],
)
def test_defocus_network_size(long_side, size, expected):
    assert _small_lite(long_side).defocus_network_size(*size) == expected


def test_defocus_long_side_runs_the_network_small_and_returns_a_full_size_map(monkeypatch):
    model = _small_lite(96)
    seen_sizes = []
    original_forward = model.defocus_net.forward

    def recording_forward(image):
        seen_sizes.append(tuple(image.shape[-2:]))
        return original_forward(image)

    monkeypatch.setattr(model.defocus_net, "forward", recording_forward)
    image_small = torch.rand(2, 3, 128, 192)
    with torch.no_grad():
        stage1 = model.render_stage1(image_small)
        defocus, bokeh_small = stage1.defocus, stage1.bokeh_small
    assert seen_sizes == [(64, 96)]
    assert defocus.shape == (2, 1, 128, 192)
    assert bokeh_small.shape == (2, 3, 128, 192)


def test_defocus_long_side_upsamples_a_constant_map_to_the_same_constant(monkeypatch):
    model = _small_lite(64)
    monkeypatch.setattr(model.defocus_net, "forward", lambda image: torch.full_like(image[:, :1], 0.25))
    with torch.no_grad():
        defocus = model.render_stage1(torch.rand(1, 3, 128, 128)).defocus
    torch.testing.assert_close(defocus, torch.full_like(defocus, 0.25))


def test_defocus_long_side_is_differentiable():
    model = _small_lite(64).train()
    image_small = torch.rand(1, 3, 128, 128, requires_grad=True)
    stage1 = model.render_stage1(image_small)
    defocus, bokeh_small = stage1.defocus, stage1.bokeh_small
    (defocus.mean() + bokeh_small.mean()).backward()
    assert image_small.grad is not None and torch.isfinite(image_small.grad).all()
    stem = next(model.defocus_net.encoder.parameters())  # the first layer: reached through the resize
    assert stem.grad is not None and stem.grad.abs().sum() > 0


@pytest.mark.parametrize("value", [0, -64, 100, 64.0, True])
def test_defocus_long_side_must_be_a_positive_multiple_of_32(value):
    with pytest.raises(ConfigError, match="defocus_long_side"):
        D2FConfig(defocus_long_side=value)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")
def test_cuda_graph_replay_renders_a_new_photo_like_an_eager_call():
    captured, eager = replay_and_eager(_small_lite().cuda(), torch.rand(1, 3, 128, 192, device="cuda"))
    torch.testing.assert_close(captured.bokeh, eager.bokeh)
