"""A depth model with a blur-range head: its predicted disparity range (1/m) sets how much it blurs."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from cuda_graphs import replay_and_eager
from d2f.cli.demo import SAMPLE_PHOTO
from d2f.errors import ConfigError, InputError
from d2f.io import read_image
from d2f.models import D2F, D2FConfig, NetworkOutputs, load_bundled, load_pretrained
from d2f.models.d2f import DISPARITY_RANGE_LIMITS
from d2f.models.defocus_net import DefocusNet
from d2f.render import defocus_to_diameter
from tiny_models import TINY_LITE

RANGED = dataclasses.replace(TINY_LITE, predicts="depth", working_long_side=256, blur_range=True)


def ranged_model(log_range: float, device: torch.device | str = "cpu") -> D2F:
    """A tiny ranged model whose head predicts ``log_range`` for every photo (zero weights, that bias)."""
    torch.manual_seed(0)
    model = D2F(RANGED).to(device).eval()
    with torch.no_grad():
        model.defocus_net.range_head.linear.bias.fill_(log_range)
    return model


def assert_blur_doubles_with_the_range(image: torch.Tensor, **call) -> None:
    """Rendered with ``call`` by models predicting ranges of 1 and 2 1/m, every pixel's blur diameter
    doubles (away from the 1-pixel floor and below the largest kernel, where diameters are clipped)."""
    diameters = []
    for log_range in (math.log(1.0), math.log(2.0)):
        with torch.no_grad():
            output = ranged_model(log_range)(image, **call)
        diameters.append(defocus_to_diameter(output.defocus, RANGED.kernel_sizes))
    blurred = (diameters[0] > 2) & (diameters[1] < max(RANGED.kernel_sizes) - 0.5)
    assert int(blurred.sum()) > 100
    ratio = diameters[1][blurred] / diameters[0][blurred]
    torch.testing.assert_close(ratio, torch.full_like(ratio, 2.0), rtol=0.02, atol=0.0)


class TestBlurRangeConfig:
    def test_needs_a_depth_model(self) -> None:
        with pytest.raises(ConfigError, match=r"^blur_range: only a model that predicts depth"):
            dataclasses.replace(TINY_LITE, blur_range=True)

    def test_must_be_a_boolean(self) -> None:
        with pytest.raises(ConfigError, match=r"^blur_range: expected true or false"):
            dataclasses.replace(RANGED, blur_range="yes")

    def test_round_trips_through_a_dict(self) -> None:
        assert D2FConfig.from_dict(RANGED.to_dict()) == RANGED


class TestDefocusNetRange:
    def test_predict_gives_the_map_of_forward_and_one_log_range_per_image(self) -> None:
        torch.manual_seed(0)
        network = DefocusNet("efficientnet_lite0", 8, (8, 8), out_channels=2, blur_range=True).eval()
        image = torch.rand(2, 3, 64, 96)
        with torch.no_grad():
            prediction, log_range = network.predict(image)
            torch.testing.assert_close(prediction, network(image))
        assert log_range.shape == (2,) and log_range.dtype == torch.float32
        assert network.pooled(image).shape == (2, network.pooled_size) == (2, 24 + 40 + 112 + 320 + 8)

    def test_without_a_head_the_range_is_none(self) -> None:
        network = DefocusNet("efficientnet_lite0", 8, (8, 8)).eval()
        with torch.no_grad():
            assert network.predict(torch.rand(1, 3, 32, 32))[1] is None


class TestRangedModel:
    def test_output_carries_the_predicted_range(self, device) -> None:
        with torch.no_grad():
            output = ranged_model(math.log(0.5), device)(torch.rand(1, 3, 96, 128, device=device))
        torch.testing.assert_close(output.disparity_range.cpu(), torch.tensor([0.5]))

    def test_blur_diameter_follows_the_range(self) -> None:
        image = torch.rand(1, 3, 96, 128, generator=torch.Generator().manual_seed(3))
        assert_blur_doubles_with_the_range(image, f_number=2.0)

    def test_range_is_kept_within_limits(self) -> None:
        with torch.no_grad():
            output = ranged_model(100.0)(torch.rand(1, 3, 64, 64))
        assert float(output.disparity_range) == pytest.approx(DISPARITY_RANGE_LIMITS[1])

    def test_network_outputs_carry_the_range(self) -> None:
        model = ranged_model(math.log(3.0))
        image = torch.rand(1, 3, 64, 96)
        with torch.no_grad():
            network = model.network_outputs(image)
            again = model(image, network=network, f_number=2.8)
            direct = model(image, f_number=2.8)
        torch.testing.assert_close(network.disparity_range, torch.tensor([3.0]))
        torch.testing.assert_close(again.bokeh, direct.bokeh)

    def test_head_survives_save_and_load(self, tmp_path) -> None:
        model = ranged_model(0.7)
        with torch.no_grad():
            model.defocus_net.range_head.linear.weight.normal_(0, 0.01)
        model.save_pretrained(tmp_path)
        loaded = load_pretrained(tmp_path)
        image = torch.rand(1, 3, 64, 96)
        with torch.no_grad():
            torch.testing.assert_close(loaded(image).disparity_range, model(image).disparity_range)

    def test_a_given_depth_map_is_blurred_by_the_predicted_range_too(self) -> None:
        image = torch.rand(1, 3, 96, 128, generator=torch.Generator().manual_seed(4))
        ramp = torch.linspace(0, 1, 96).reshape(1, 1, 96, 1).expand(1, 1, 96, 128).contiguous()
        assert_blur_doubles_with_the_range(image, disparity=ramp, focus=(64.0, 0.0), f_number=2.0)

    def test_a_measured_range_given_with_the_map_replaces_the_predicted_one(self) -> None:
        image = torch.rand(1, 3, 96, 128, generator=torch.Generator().manual_seed(4))
        ramp = torch.linspace(0, 1, 96).reshape(1, 1, 96, 1).expand(1, 1, 96, 128).contiguous()
        options = {"disparity": ramp, "focus": (64.0, 0.0), "f_number": 2.0}
        with torch.no_grad():
            measured = ranged_model(math.log(2.0))(image, disparity_range=1.0, **options)
            predicted = ranged_model(math.log(1.0))(image, **options)
        assert float(measured.disparity_range[0]) == 1.0
        torch.testing.assert_close(measured.defocus, predicted.defocus)

    def test_default_f_number_is_the_model_s_own_look(self) -> None:
        image = torch.rand(1, 3, 96, 128, generator=torch.Generator().manual_seed(5))
        model = ranged_model(0.0)
        with torch.no_grad():
            own = model(image).defocus
            model.config = dataclasses.replace(RANGED, default_f_number=4.0)
            wider = model(image).defocus
            told = model(image, f_number=2.0).defocus
        torch.testing.assert_close(told, own)  # RANGED's own look is f/2
        assert float(defocus_to_diameter(wider, RANGED.kernel_sizes).mean()) < float(
            defocus_to_diameter(own, RANGED.kernel_sizes).mean()
        )

    def test_network_outputs_without_the_range_are_refused(self) -> None:
        model = ranged_model(0.0)
        image = torch.rand(1, 3, 64, 96)
        with torch.no_grad():
            network = model.network_outputs(image)
            stripped = NetworkOutputs(network.radiance, network.prediction)
            with pytest.raises(InputError, match=r"^network: has no disparity_range"):
                model(image, network=stripped)

    def test_float64_model_computes_the_range_in_float64(self) -> None:
        model = ranged_model(math.log(0.5)).double()
        with torch.no_grad():
            output = model(torch.rand(1, 3, 64, 96, dtype=torch.float64))
        assert output.disparity_range.dtype == torch.float64
        torch.testing.assert_close(output.disparity_range, torch.tensor([0.5], dtype=torch.float64))

    @pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")
    def test_cuda_graph_replay_of_a_ranged_model_renders_like_an_eager_call(self) -> None:
        model = ranged_model(0.3, "cuda")
        with torch.no_grad():
            model.defocus_net.range_head.linear.weight.normal_(0, 0.01)
        captured, eager = replay_and_eager(model, torch.rand(1, 3, 128, 192, device="cuda"))
        torch.testing.assert_close(captured.disparity_range, eager.disparity_range)
        torch.testing.assert_close(captured.bokeh, eager.bokeh)

    @pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")
    def test_cuda_graph_capture_takes_a_measured_range_too(self) -> None:
        model = ranged_model(0.3, "cuda")
        ramp = torch.linspace(0, 1, 128, device="cuda").reshape(1, 1, 128, 1).expand(1, 1, 128, 192)
        measured = {"disparity": ramp.contiguous(), "disparity_range": torch.tensor([0.7], device="cuda")}
        captured, eager = replay_and_eager(model, torch.rand(1, 3, 128, 192, device="cuda"), **measured)
        assert captured.disparity_range.tolist() == [pytest.approx(0.7)]
        torch.testing.assert_close(captured.bokeh, eager.bokeh)


def test_bundled_d2f_lite_2_reads_the_sample_as_a_table_top_scene() -> None:
    model = load_bundled("d2f-lite-2")
    assert model.config.blur_range  # its settings are the preset's: test_bundled_weights.py
    with torch.no_grad():
        disparity_range = float(model.network_outputs(read_image(SAMPLE_PHOTO)[None]).disparity_range)
    assert 0.3 < disparity_range < 3.0  # a cup on a table, about 0.5 to 1.5 m away: 0.84 1/m
