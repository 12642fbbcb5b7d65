"""The ground-truth layered-scene renderer: exact disk blur, correct occlusion, linear radiance."""

import math

import pytest
import torch
import torch.nn.functional as F

from d2f.errors import InputError
from d2f.render.scene import (
    SceneLayer,
    composite_layers,
    disk_blur,
    disk_kernel,
    disk_radius,
    in_focus_coverage,
    layer_slices,
    linear_to_srgb,
    render_scene,
    srgb_to_linear,
    thin_lens_coc,
)


def texture(height, width, *, device="cpu", dtype=torch.float64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(3, height, width, generator=generator, dtype=dtype).to(device)


def opaque(color, coc, gain=None):
    return SceneLayer(color, torch.ones_like(color[:1]), coc, gain)


def direct_disk_convolution(image, diameter):
    """Reference: zero-padded direct convolution with the disk kernel."""
    kernel = disk_kernel(diameter, dtype=image.dtype, device=image.device)
    radius = kernel.shape[0] // 2
    weight = kernel.expand(image.shape[0], 1, *kernel.shape)
    return F.conv2d(F.pad(image[None], (radius,) * 4), weight, groups=image.shape[0])[0]


class TestOptics:
    def test_srgb_round_trip(self):
        values = torch.linspace(0, 1, 1001, dtype=torch.float64)
        torch.testing.assert_close(linear_to_srgb(srgb_to_linear(values)), values, atol=1e-12, rtol=0)
        assert float(srgb_to_linear(torch.tensor(0.5))) == pytest.approx(0.21404, abs=1e-5)

    def test_thin_lens_coc_sign_and_value(self):
        assert thin_lens_coc(2.0, 2.0, 100.0) == 0
        assert thin_lens_coc(1.0, 2.0, 100.0) == pytest.approx(50.0)  # in front: positive
        assert thin_lens_coc(4.0, 2.0, 100.0) == pytest.approx(-25.0)  # behind: negative
        depths = torch.tensor([1.0, 2.0, 4.0])
        torch.testing.assert_close(thin_lens_coc(depths, 2.0, 100.0), torch.tensor([50.0, 0.0, -25.0]))
        with pytest.raises(InputError, match="depth"):
            thin_lens_coc(0.0, 2.0, 1.0)

    @pytest.mark.parametrize("diameter", [0.0, 0.9, 1.0])
    def test_tiny_disks_are_the_identity(self, diameter):
        assert disk_radius(diameter) == 0
        assert disk_kernel(diameter).tolist() == [[1.0]]

    @pytest.mark.parametrize("diameter", [3.0, 8.5, 21.0, 40.0])
    def test_disk_kernel_is_a_normalised_disk_of_that_diameter(self, diameter):
        kernel = disk_kernel(diameter, dtype=torch.float64)
        assert kernel.shape[0] == 2 * disk_radius(diameter) + 1
        assert float(kernel.sum()) == pytest.approx(1.0)
        torch.testing.assert_close(kernel, kernel.flip(0))
        torch.testing.assert_close(kernel, kernel.T)
        # Weights are the pixels' coverage by the disk over its area: 1 / max is the covered area.
        assert 1 / float(kernel.max()) == pytest.approx(math.pi * diameter**2 / 4, rel=0.05)

    def test_bad_diameter(self):
        with pytest.raises(InputError, match="diameter"):
            disk_kernel(float("nan"))


class TestDiskBlur:
    @pytest.mark.parametrize("diameter", [1.5, 6.0, 17.3, 45.0])
    def test_equals_direct_convolution(self, diameter, device, dtype):
        image = texture(33, 47, device=device, dtype=dtype)
        tolerance = 1e-12 if dtype == torch.float64 else 2e-6
        torch.testing.assert_close(
            disk_blur(image, diameter), direct_disk_convolution(image, diameter), atol=tolerance, rtol=0
        )


class TestComposite:
    @pytest.mark.parametrize("coc", [-13.0, 7.5])
    def test_single_layer_with_constant_coc_is_a_disk_convolution(self, coc, device, dtype):
        color = texture(40, 56, device=device, dtype=dtype)
        radiance, coverage = composite_layers([opaque(color, coc)])
        tolerance = 1e-12 if dtype == torch.float64 else 2e-6
        expected = direct_disk_convolution(srgb_to_linear(color), abs(coc))
        torch.testing.assert_close(radiance, expected, atol=tolerance, rtol=0)
        torch.testing.assert_close(coverage, direct_disk_convolution(torch.ones_like(color[:1]), abs(coc)),
                                   atol=tolerance, rtol=0)

    def test_margin_crops_an_exact_blur_of_the_whole_canvas(self):
        color = texture(60, 70)
        radiance, coverage = composite_layers([opaque(color, 20.0)], margin=12)
        full = direct_disk_convolution(srgb_to_linear(color), 20.0)
        torch.testing.assert_close(radiance, full[:, 12:-12, 12:-12], atol=1e-12, rtol=0)
        # The margin is as wide as the blur radius (10), so the frame is fully covered.
        torch.testing.assert_close(coverage, torch.ones_like(coverage), atol=1e-12, rtol=0)

    def test_in_focus_layer_is_unchanged(self, device, dtype):
        color = texture(30, 40, device=device, dtype=dtype)
        tolerance = 1e-12 if dtype == torch.float64 else 1e-5
        torch.testing.assert_close(render_scene([opaque(color, 0.8)]), color, atol=tolerance, rtol=0)
        torch.testing.assert_close(render_scene([opaque(color, 30.0)], sharp=True), color, atol=tolerance,
                                   rtol=0)

    @pytest.mark.parametrize("coc", [25.0, "slanted"])
    def test_mean_linear_radiance_is_preserved_away_from_borders(self, coc):
        height, width = 140, 180
        color = texture(height, width, seed=3)
        if coc == "slanted":
            ramp = torch.linspace(-40, -2, height, dtype=torch.float64)
            coc = ramp.view(1, height, 1).expand(1, height, width)
        margin = 21
        radiance, _ = composite_layers([opaque(color, coc)], margin=margin)
        linear = srgb_to_linear(color)[:, margin:-margin, margin:-margin]
        # Interior windows: blur moves light around but does not create or destroy it.
        everything, interior = (slice(None),) * 3, (slice(None), slice(10, -10), slice(10, -10))
        for window in (interior, everything):
            assert float(radiance[window].mean()) == pytest.approx(float(linear[window].mean()), rel=0.01)

    def test_sharp_foreground_edge_has_no_halo_of_blurred_background(self):
        height, width = 64, 80
        background = torch.ones(3, height, width, dtype=torch.float64)  # white, strongly blurred
        foreground = torch.zeros(3, height, width, dtype=torch.float64)  # black square, in focus
        alpha = torch.zeros(1, height, width, dtype=torch.float64)
        alpha[:, 20:44, 30:54] = 1
        image = render_scene([opaque(background, -31.0), SceneLayer(foreground, alpha, 0.0)])
        # Right up to its edge the in-focus square shows only itself: no blurred background on top.
        assert float(image[:, 20:44, 30:54].abs().max()) == 0.0
        assert float(image[:, 20:44, 29].min()) > 0.99  # and the background next to it is untouched

    def test_blurred_foreground_spreads_over_sharp_background(self):
        height, width = 64, 80
        background = torch.zeros(3, height, width, dtype=torch.float64)  # black, in focus
        foreground = torch.ones(3, height, width, dtype=torch.float64)  # white square, blurred
        alpha = torch.zeros(1, height, width, dtype=torch.float64)
        alpha[:, 24:40, 32:48] = 1
        diameter = 15.0
        image = render_scene([opaque(background, 0.0), SceneLayer(foreground, alpha, diameter)])
        radius = disk_radius(diameter)
        # Partial occlusion: the blurred square's light reaches over the sharp background...
        assert float(image[:, 32, 48 : 48 + radius - 1].min()) > 0.01
        assert float(image[:, 32, 47].max()) < 0.99  # ...and its own edge is soft
        # ...but no further than the blur radius.
        assert float(image[:, 32, 48 + radius :].abs().max()) == 0.0
        assert float(image[:, : 24 - radius].abs().max()) == 0.0

    def test_point_light_becomes_a_disc_of_the_right_diameter(self):
        size, diameter, gain = 101, 31.0, 50.0
        color = torch.zeros(3, size, size, dtype=torch.float64)
        color[:, 50, 50] = 1.0
        light_gain = torch.ones(1, size, size, dtype=torch.float64)
        light_gain[:, 50, 50] = gain
        radiance, _ = composite_layers([opaque(color, diameter, light_gain)])
        # All the light is kept (linear radiance, no clipping before the blur)...
        assert float(radiance.sum()) == pytest.approx(3 * gain)
        disc = radiance[0] > radiance[0].max() / 2
        assert int(disc.sum()) == pytest.approx(math.pi * diameter**2 / 4, rel=0.05)
        rows = torch.nonzero(disc.any(dim=1)).flatten()
        assert int(rows[-1] - rows[0] + 1) == pytest.approx(diameter, abs=1.0)
        # ...and a bright light makes a crisp, evenly lit disc (clipped to white), not a faint blur.
        image = render_scene([opaque(color, diameter, light_gain * 100)])
        assert float(image[:, 50, 50 - 12 : 50 + 13].min()) > 0.95

    def test_slanted_layer_is_cut_into_thin_slices_that_sum_to_it(self):
        height, width = 64, 48
        coc = torch.linspace(-60, -4, height, dtype=torch.float64).view(1, height, 1).expand(1, height, width)
        alpha = torch.ones(1, height, width, dtype=torch.float64)
        alpha[:, :, :5] = 0
        layer = SceneLayer(torch.rand(3, height, width, dtype=torch.float64), alpha, coc)
        slices = layer_slices(layer)
        assert len(slices) >= 32
        cocs = [value for _, value in slices]
        assert cocs == sorted(cocs)  # far to near
        assert cocs[0] == pytest.approx(-60) and cocs[-1] == pytest.approx(-4)
        torch.testing.assert_close(sum(slice_alpha for slice_alpha, _ in slices), alpha, atol=1e-12, rtol=0)
        # Each slice is thin: it covers a few rows of the ramp only.
        assert max(int((slice_alpha.amax(dim=(0, 2)) > 0).sum()) for slice_alpha, _ in slices) <= 6

    def test_slanted_layer_blur_grows_with_its_coc(self):
        height, width = 120, 100
        coc = torch.linspace(-30, 0, height, dtype=torch.float64).view(1, height, 1).expand(1, height, width)
        stripes = torch.zeros(3, height, width, dtype=torch.float64)
        stripes[:, :, ::4] = 1
        radiance, _ = composite_layers([opaque(stripes, coc)])
        contrast = radiance[0, :, 20:-20].amax(dim=1) - radiance[0, :, 20:-20].amin(dim=1)
        assert float(contrast[-1]) > 0.99  # at the focus plane the stripes stay sharp
        assert float(contrast[20]) < 0.1  # far away they are blurred out
        assert (contrast[20:].diff() >= -0.05).all()  # contrast grows towards the focus plane

    def test_in_focus_coverage(self):
        height, width = 40, 50
        background = opaque(texture(height, width), -20.0)
        alpha = torch.zeros(1, height, width, dtype=torch.float64)
        alpha[:, 10:30, 10:30] = 1
        alpha[:, 10:30, 30] = 0.5
        subject = SceneLayer(texture(height, width, seed=1), alpha, 0.0)
        coverage = in_focus_coverage([background, subject])
        torch.testing.assert_close(coverage, alpha)
        assert float(in_focus_coverage([background]).abs().max()) == 0

    def test_bad_layers(self):
        color = torch.rand(3, 10, 12)
        with pytest.raises(InputError, match="layers"):
            composite_layers([])
        with pytest.raises(InputError, match=r"layers\[0\].alpha"):
            composite_layers([SceneLayer(color, torch.full((1, 10, 12), 1.5), 0.0)])
        with pytest.raises(InputError, match=r"layers\[0\].color"):
            composite_layers([SceneLayer(torch.rand(10, 12), torch.ones(1, 10, 12), 0.0)])
        with pytest.raises(InputError, match="finite"):
            composite_layers([SceneLayer(color, torch.ones(1, 10, 12), torch.full((1, 10, 12), math.nan))])
        with pytest.raises(InputError, match=r"layers\[1\]"):
            composite_layers([opaque(color, 0.0), opaque(torch.rand(3, 11, 12), 0.0)])
        with pytest.raises(InputError, match="margin"):
            composite_layers([opaque(color, 0.0)], margin=5)
