from pathlib import Path

import numpy as np
import pytest
import torch

from d2f.errors import InputError
from d2f.render import (
    KERNEL_SIZES,
    LayeredBlur,
    WeightedLayeredRender,
    layer_masks,
    layered_blur,
    weighted_layered_render,
)

BACKENDS = ["direct", "fft"]
PARITY_FILES = sorted((Path(__file__).resolve().parents[1] / "data" / "parity").glob("*.npz"))


def random_inputs(height, width, *, batch=1, device="cpu", dtype=torch.float32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    image = torch.rand(batch, 3, height, width, generator=generator, dtype=dtype)
    defocus = torch.rand(batch, 1, height, width, generator=generator, dtype=dtype) * 1.1 - 0.05
    weight = torch.rand(batch, 3, height, width, generator=generator, dtype=dtype) + 0.1
    return image.to(device), defocus.to(device), weight.to(device)


class TestLayerMasks:
    def test_shape_and_range(self, device, dtype):
        defocus = torch.rand(2, 1, 8, 9, device=device, dtype=dtype)
        masks = layer_masks(defocus)
        assert masks.shape == (2, 15, 8, 9) and masks.dtype == dtype
        assert masks.min() >= 0 and masks.max() <= 1

    def test_level_centres_select_their_level(self):
        defocus = torch.tensor([i / 14 for i in range(15)]).view(1, 1, 1, 15)
        masks = layer_masks(defocus)[0, :, 0]  # (level, pixel)
        diagonal = masks.diagonal()
        assert (diagonal > 0.99).all()
        far = masks[(torch.arange(15)[:, None] - torch.arange(15)[None]).abs() >= 2]
        assert far.max() < 1e-6

    def test_formula(self):
        defocus = torch.rand(1, 1, 4, 4, dtype=torch.float64)
        masks = layer_masks(defocus, num_levels=3, alpha=7.0)
        expected = torch.stack(
            [0.5 + 0.5 * torch.tanh(7.0 * (0.5 - (defocus[:, 0] - i / 2).abs())) for i in range(3)], 1
        )
        torch.testing.assert_close(masks, expected)

    def test_gradcheck(self):
        defocus = torch.rand(1, 1, 3, 4, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda d: layer_masks(d, num_levels=4, alpha=5.0), (defocus,))

    @pytest.mark.parametrize("num_levels", [1, 0, 2.5, True])
    def test_bad_num_levels(self, num_levels):
        with pytest.raises(InputError, match="num_levels"):
            layer_masks(torch.zeros(1, 1, 2, 2), num_levels=num_levels)

    def test_bad_defocus(self):
        with pytest.raises(InputError, match=r"defocus.*channels"):
            layer_masks(torch.zeros(1, 2, 4, 4))
        with pytest.raises(InputError, match=r"defocus.*finite"):
            layer_masks(torch.full((1, 1, 4, 4), float("nan")))


class TestLayeredBlur:
    @pytest.mark.parametrize("backend", BACKENDS)
    def test_zero_defocus_returns_input(self, backend, device):
        image, _, _ = random_inputs(40, 52, device=device)
        out = layered_blur(image, torch.zeros_like(image[:, :1]), backend=backend)
        torch.testing.assert_close(out, image, atol=1e-5, rtol=0)

    @pytest.mark.parametrize("backend", BACKENDS)
    def test_constant_image_stays_constant(self, backend, device):
        _, defocus, _ = random_inputs(48, 64, batch=2, device=device)
        constant = torch.full((2, 3, 48, 64), 0.37, device=device)
        out = layered_blur(constant, defocus, backend=backend)
        torch.testing.assert_close(out, constant, atol=1e-5, rtol=0)

    @pytest.mark.parametrize("backend", BACKENDS)
    @pytest.mark.parametrize("level", [5, 10, 14])
    def test_impulse_spreads_over_the_level_disk(self, backend, level):
        size = KERNEL_SIZES[level - 1]
        image = torch.zeros(1, 1, 101, 101, dtype=torch.float64)
        image[..., 50, 50] = 1.0
        out = layered_blur(image, torch.full_like(image, level / 14), backend=backend)[0, 0]
        centre_row = out[50]
        lit = (centre_row > 0.25 * centre_row.max()).nonzero().flatten()
        width = int(lit[-1] - lit[0]) + 1
        assert abs(width - size) <= 2
        torch.testing.assert_close(out.sum(), torch.tensor(1.0, dtype=torch.float64))  # energy preserved
        torch.testing.assert_close(out, out.T)  # round

    @pytest.mark.parametrize(
        ("height", "width", "batch"), [(48, 64, 2), (37, 53, 1), (80, 35, 1), (20, 30, 1), (1, 7, 2)]
    )
    def test_fft_equals_direct(self, height, width, batch, device, dtype):
        image, defocus, _ = random_inputs(height, width, batch=batch, device=device, dtype=dtype)
        direct = layered_blur(image, defocus, backend="direct")
        fft = layered_blur(image, defocus, backend="fft")
        tolerance = 1e-5 if dtype == torch.float32 else 1e-10
        torch.testing.assert_close(fft, direct, atol=tolerance, rtol=0)

    def test_smooth_defocus_fft_equals_direct(self):
        # A depth-like map: levels occupy bands of the frame, so the FFT backend crops to them.
        rows = torch.linspace(0, 1, 90).view(1, 1, 90, 1).expand(1, 1, 90, 120).contiguous()
        image = torch.rand(1, 3, 90, 120)
        direct = layered_blur(image, rows, backend="direct")
        torch.testing.assert_close(layered_blur(image, rows, backend="fft"), direct, atol=1e-5, rtol=0)

    def test_defocus_outside_levels_gives_zero(self):
        # Every mask is exactly zero: nothing covers the pixel, as in the reference.
        image = torch.rand(1, 3, 40, 40)
        out = layered_blur(image, torch.full((1, 1, 40, 40), -1.0), backend="fft")
        assert torch.equal(out, torch.zeros_like(out))

    @pytest.mark.parametrize("backend", BACKENDS)
    def test_gradcheck(self, backend):
        image, defocus, _ = random_inputs(9, 11, dtype=torch.float64)
        image.requires_grad_(True)
        defocus = (defocus * 0.5 + 0.25).detach().requires_grad_(True)

        def blur(x, d):
            return layered_blur(x, d, kernel_sizes=(3, 5), alpha=5.0, backend=backend)

        assert torch.autograd.gradcheck(blur, (image, defocus), fast_mode=True)

    def test_promotes_half_and_ignores_autocast(self):
        image, defocus, _ = random_inputs(24, 24)
        expected = layered_blur(image, defocus)
        out = layered_blur(image.bfloat16(), defocus.bfloat16())
        assert out.dtype == torch.float32
        with torch.autocast("cpu", dtype=torch.bfloat16):
            autocast_out = layered_blur(image, defocus)
        assert autocast_out.dtype == torch.float32
        torch.testing.assert_close(autocast_out, expected)

    def test_module_equals_function(self):
        image, defocus, _ = random_inputs(30, 40)
        module = LayeredBlur(kernel_sizes=(3, 7, 11), alpha=50.0, backend="fft")
        torch.testing.assert_close(
            module(image, defocus), layered_blur(image, defocus, kernel_sizes=(3, 7, 11), alpha=50.0)
        )
        assert "kernel_sizes=(3, 7, 11)" in repr(module)

    @pytest.mark.parametrize(
        ("x", "defocus", "match"),
        [
            (torch.zeros(3, 8, 8), torch.zeros(1, 1, 8, 8), r"x: expected shape \(N, C, H, W\)"),
            (
                torch.zeros(1, 3, 8, 8, dtype=torch.uint8),
                torch.zeros(1, 1, 8, 8),
                "x: expected a floating-point",
            ),
            (torch.zeros(1, 3, 8, 8), torch.zeros(1, 2, 8, 8), "defocus: expected 1 channels"),
            (torch.zeros(1, 3, 8, 8), torch.zeros(1, 1, 8, 9), "defocus: expected batch and spatial size"),
            (torch.zeros(1, 3, 8, 8), torch.zeros(2, 1, 8, 8), "defocus: expected batch and spatial size"),
            (torch.zeros(1, 3, 8, 8), torch.full((1, 1, 8, 8), float("inf")), "defocus: expected finite"),
            (torch.full((1, 3, 8, 8), float("nan")), torch.zeros(1, 1, 8, 8), "x: expected finite"),
            (torch.zeros(1, 3, 0, 8), torch.zeros(1, 1, 0, 8), "x: expected a non-empty"),
            ([[0.0]], torch.zeros(1, 1, 8, 8), "x: expected a torch.Tensor"),
        ],
    )
    def test_bad_input(self, x, defocus, match):
        with pytest.raises(InputError, match=match):
            layered_blur(x, defocus)

    def test_bad_backend_and_kernels(self):
        image, defocus, _ = random_inputs(8, 8)
        with pytest.raises(InputError, match="backend"):
            layered_blur(image, defocus, backend="cuda")
        with pytest.raises(InputError, match="kernel_sizes"):
            layered_blur(image, defocus, kernel_sizes=(3, 4))
        with pytest.raises(InputError, match="backend"):
            LayeredBlur(backend="magic")


class TestWeightedLayeredRender:
    @pytest.mark.parametrize("backend", BACKENDS)
    @pytest.mark.parametrize("path", PARITY_FILES, ids=lambda path: path.stem)
    def test_parity_with_reference(self, path, backend):
        data = {key: torch.from_numpy(value)[None] for key, value in np.load(path).items()}
        out = weighted_layered_render(
            data["image_small"], data["defocus"], data["radiance_weight"], backend=backend
        )
        assert (out - data["bokeh_small"]).abs().max() <= 1e-4

    def test_parity_files_present(self):
        assert len(PARITY_FILES) >= 2

    def test_equals_ratio_of_layered_blurs(self, device, dtype):
        image, defocus, weight = random_inputs(36, 45, batch=2, device=device, dtype=dtype)
        expected = layered_blur(image * weight, defocus) / (layered_blur(weight, defocus) + 1e-10)
        torch.testing.assert_close(weighted_layered_render(image, defocus, weight), expected)

    def test_single_channel_weight_broadcasts(self):
        image, defocus, weight = random_inputs(32, 32)
        single = weight[:, :1]
        torch.testing.assert_close(
            weighted_layered_render(image, defocus, single),
            weighted_layered_render(image, defocus, single.expand(-1, 3, -1, -1)),
        )

    def test_uniform_weight_equals_layered_blur(self):
        image, defocus, _ = random_inputs(36, 44)
        out = weighted_layered_render(image, defocus, torch.ones_like(image))
        torch.testing.assert_close(out, layered_blur(image, defocus), atol=1e-5, rtol=0)

    def test_heavy_weight_dominates_the_blur(self):
        # A bright pixel with a large radiance weight spreads as a disc of nearly its own colour.
        image = torch.full((1, 3, 64, 64), 0.2)
        image[..., 32, 32] = 1.0
        weight = torch.ones(1, 1, 64, 64)
        defocus = torch.full((1, 1, 64, 64), 6 / 14)
        plain = weighted_layered_render(image, defocus, weight)
        weight[..., 32, 32] = 10000.0
        boosted = weighted_layered_render(image, defocus, weight)
        assert boosted[0, 0, 32, 36] > 0.9 > plain[0, 0, 32, 36]

    @pytest.mark.parametrize("backend", BACKENDS)
    def test_gradcheck(self, backend):
        image, defocus, weight = random_inputs(7, 9, dtype=torch.float64)
        defocus = defocus * 0.5 + 0.25
        inputs = tuple(t.detach().requires_grad_(True) for t in (image, defocus, weight))

        def render(x, d, w):
            return weighted_layered_render(x, d, w, kernel_sizes=(3, 5), alpha=5.0, backend=backend)

        assert torch.autograd.gradcheck(render, inputs, fast_mode=True)

    def test_gradcheck_through_transforms(self):
        # A 13 px kernel is above DIRECT_MAX_SIZE: the CPU fft backend blurs it by FFT.
        image, defocus, weight = random_inputs(14, 16, dtype=torch.float64)
        defocus = defocus * 0.5 + 0.25
        inputs = tuple(t.detach().requires_grad_(True) for t in (image, defocus, weight))

        def render(x, d, w):
            return weighted_layered_render(x, d, w, kernel_sizes=(3, 13), alpha=5.0, backend="fft")

        assert torch.autograd.gradcheck(render, inputs, fast_mode=True)

    def test_gradients_do_not_change_the_result(self):
        # With gradients the FFT backend composites out of place; without, in place.
        image, defocus, weight = random_inputs(48, 60)
        with torch.no_grad():
            expected = weighted_layered_render(image, defocus, weight, backend="fft")
        out = weighted_layered_render(image.requires_grad_(True), defocus, weight, backend="fft")
        torch.testing.assert_close(out.detach(), expected)
        out.mean().backward()
        assert torch.isfinite(image.grad).all() and image.grad.abs().sum() > 0

    def test_module_equals_function(self):
        image, defocus, weight = random_inputs(30, 40)
        module = WeightedLayeredRender(backend="direct")
        torch.testing.assert_close(
            module(image, defocus, weight), weighted_layered_render(image, defocus, weight)
        )

    @pytest.mark.parametrize(
        ("image", "weight", "match"),
        [
            (torch.rand(1, 1, 8, 8), torch.ones(1, 1, 8, 8), "image: expected 3 channels"),
            (torch.rand(1, 3, 8, 8), torch.ones(1, 2, 8, 8), "weight: expected 1 or 3 channels"),
            (torch.rand(1, 3, 8, 8), torch.ones(1, 1, 4, 8), "weight: expected batch and spatial size"),
            (torch.rand(1, 3, 8, 8), -torch.ones(1, 1, 8, 8), "weight: expected non-negative"),
            (torch.rand(1, 3, 8, 8), torch.full((1, 1, 8, 8), float("nan")), "weight: expected finite"),
            (
                torch.rand(1, 3, 8, 8),
                torch.ones(1, 1, 8, 8, dtype=torch.int64),
                "weight: expected a floating-point",
            ),
        ],
    )
    def test_bad_input(self, image, weight, match):
        with pytest.raises(InputError, match=match):
            weighted_layered_render(image, torch.zeros(1, 1, 8, 8), weight)

    def test_errors_are_value_errors(self):
        with pytest.raises(ValueError):
            weighted_layered_render(torch.rand(1, 3, 8, 8), torch.zeros(1, 1, 8, 8), -torch.ones(1, 1, 8, 8))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")
def test_cuda_graph_replay_renders_new_inputs_like_an_eager_call():
    image, defocus, weight = (torch.rand(1, channels, 96, 128, device="cuda") for channels in (3, 1, 3))
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # the eager call a capture needs first (and which checks the inputs)
        weighted_layered_render(image, defocus, weight)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        captured = weighted_layered_render(image, defocus, weight)
    image.copy_(torch.rand_like(image))
    defocus.copy_(torch.rand_like(defocus))
    graph.replay()
    torch.testing.assert_close(captured, weighted_layered_render(image, defocus, weight))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="TF32 exists on CUDA devices only")
@pytest.mark.parametrize("path", PARITY_FILES, ids=lambda path: path.stem)
def test_parity_with_tf32_matrix_products_enabled(path, monkeypatch):
    """A user's global TF32 setting does not round the kernel spectra of the GPU path."""
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", True)
    case = np.load(path)
    image, defocus, weight = (
        torch.from_numpy(case[key])[None].cuda() for key in ("image_small", "defocus", "radiance_weight")
    )
    bokeh = weighted_layered_render(image, defocus, weight, backend="fft")
    expected = torch.from_numpy(case["bokeh_small"])[None]
    assert float((bokeh.cpu() - expected).abs().max()) <= 1e-4
