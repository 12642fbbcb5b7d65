"""render_image with your own depth map: the depth options then work with a model that predicts defocus."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from d2f.errors import InputError
from d2f.models import D2F
from d2f.pipeline import depth_input, predict, render_image
from d2f.render import defocus_to_diameter
from d2f.render.lens import METRIC_LENS_BLUR
from tiny_models import TINY_LITE


@pytest.fixture(scope="module")
def model() -> D2F:
    torch.manual_seed(0)
    return D2F(dataclasses.replace(TINY_LITE, working_long_side=128)).eval()


def photo() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)


def ground(height: int = 24, width: int = 32) -> np.ndarray:
    """Depth in metres: 20 m at the top row, 1 m at the bottom (a receding ground)."""
    return np.repeat(np.linspace(20.0, 1.0, height)[:, None], width, axis=1).astype(np.float32)


def test_depth_array_and_file_render_alike(model: D2F, tmp_path: Path) -> None:
    np.save(tmp_path / "depth.npy", ground())
    options = {"focus": (32.0, 47.0), "f_number": 1.4}  # focused on the nearest, bottom row
    from_array = render_image(photo(), model, "cpu", depth=ground(), depth_kind="depth", **options)
    from_file = render_image(
        photo(), model, "cpu", depth=tmp_path / "depth.npy", depth_kind="depth", **options
    )
    assert from_array.shape == (48, 64, 3) and np.array_equal(from_array, from_file)
    image = torch.from_numpy(photo()).permute(2, 0, 1)[None].float() / 255
    disparity, disparity_range = depth_input(ground(), "depth")
    assert disparity_range is None  # not metric without a scale
    output = predict(model, image, device="cpu", disparity=disparity, **options)
    # The bottom (near) rows stay sharper than the far top rows.
    defocus = output.defocus[0, 0]
    assert float(defocus[-3:].mean()) < float(defocus[:3].mean())


def test_depth_options_need_a_depth_map(model: D2F) -> None:
    with pytest.raises(InputError, match=r"^f_number: this model predicts defocus"):
        render_image(photo(), model, "cpu", f_number=2.0)
    render_image(photo(), model, "cpu", f_number=2.0, depth=ground())


def test_a_map_of_another_shape_is_refused(model: D2F) -> None:
    with pytest.raises(InputError, match="depth: the map is 48x24 but the photo 64x48"):
        render_image(photo(), model, "cpu", depth=ground(24, 48))
    with pytest.raises(InputError, match="depth: expected a path"):
        render_image(photo(), model, "cpu", depth=[[1.0]])


def test_batches_of_tensors_share_the_map(model: D2F) -> None:
    batch = torch.rand(2, 3, 48, 64, generator=torch.Generator().manual_seed(1))
    bokeh = render_image(batch, model, "cpu", depth=torch.from_numpy(ground()), f_number=2.0)
    single = render_image(batch[1], model, "cpu", depth=torch.from_numpy(ground()), f_number=2.0)
    assert bokeh.shape == batch.shape
    torch.testing.assert_close(bokeh[1], single, atol=1e-5, rtol=0)


def test_depth_png_from_a_phone(model: D2F, tmp_path: Path) -> None:
    disparity = (255 * np.linspace(0.1, 1.0, 24)[:, None].repeat(32, axis=1)).astype(np.uint8)
    Image.fromarray(disparity).save(tmp_path / "portrait_depth.png")
    bokeh = render_image(photo(), model, "cpu", depth=tmp_path / "portrait_depth.png", focus=(32.0, 47.0))
    assert bokeh.shape == (48, 64, 3)


def test_a_metric_map_blurs_by_the_scenes_measured_range(model: D2F) -> None:
    # Two planes: 1 m (the bottom half) and 4 m; focused on the near one at f/2. A thin lens blurs the
    # far plane into METRIC_LENS_BLUR * (1/1 - 1/4) / 2 of the longer side, whatever the model.
    depth_mm = np.where(np.arange(24)[:, None] >= 12, 1000.0, 4000.0).repeat(32, axis=1)
    disparity, span = depth_input(depth_mm, "depth", scale=0.001)
    assert span == pytest.approx(0.75)
    image = torch.from_numpy(photo()).permute(2, 0, 1)[None].float() / 255
    options = {"focus": (32.0, 47.0), "f_number": 2.0}
    output = predict(model, image, device="cpu", disparity=disparity, disparity_range=span, **options)
    sizes = model.config.kernel_sizes
    far = float(defocus_to_diameter(output.defocus[0, 0, :8], sizes).mean())
    expected = METRIC_LENS_BLUR * 0.75 / 2 * max(output.defocus.shape[-2:])
    assert far == pytest.approx(expected, rel=0.02)
    assert float(output.disparity_range[0]) == pytest.approx(0.75)
    # The same scene twice as far away has half the disparity range, so half the blur.
    _, far_span = depth_input(depth_mm * 2, "depth", scale=0.001)
    half = predict(model, image, device="cpu", disparity=disparity, disparity_range=far_span, **options)
    half_far = float(defocus_to_diameter(half.defocus[0, 0, :8], sizes).mean())
    assert half_far == pytest.approx(expected / 2, rel=0.02)
    # render_image takes the scale and gives the same picture.
    metric = {"depth": depth_mm, "depth_kind": "depth", "depth_scale": 0.001}
    direct = render_image(photo(), model, "cpu", **metric, **options)
    from_predict = (output.bokeh[0].permute(1, 2, 0).clamp(0, 1) * 255).round().byte().numpy()
    assert np.abs(direct.astype(int) - from_predict.astype(int)).max() <= 1


def test_a_scale_or_range_without_a_map_or_a_bad_one_is_refused(model: D2F) -> None:
    with pytest.raises(InputError, match=r"^depth_scale: only with a depth map"):
        render_image(photo(), model, "cpu", depth_scale=0.001)
    with pytest.raises(InputError, match=r"^depth_scale: expected a finite number > 0, got 0"):
        render_image(photo(), model, "cpu", depth=ground(), depth_kind="depth", depth_scale=0)
    image = torch.rand(1, 3, 48, 64)
    with pytest.raises(InputError, match=r"^disparity_range: only with a depth map"):
        predict(model, image, device="cpu", disparity_range=0.5)
    disparity, _ = depth_input(ground(), "depth")
    for bad in (float("nan"), -1.0, "0.5", True):
        with pytest.raises(InputError, match=r"^disparity_range: expected a finite number >= 0 \(1/m\)"):
            predict(model, image, device="cpu", disparity=disparity, disparity_range=bad)
    with pytest.raises(InputError, match=r"^disparity_range: expected non-negative values"):
        predict(model, image, device="cpu", disparity=disparity, disparity_range=torch.tensor([-0.5]))
    with pytest.raises(InputError, match=r"^disparity_range: expected finite values"):
        predict(model, image, device="cpu", disparity=disparity, disparity_range=torch.tensor([math.inf]))
    for shape_or_type in (torch.ones(1, 2), torch.ones(3), torch.ones(1, dtype=torch.int64)):
        per_image = r"^disparity_range: expected a number or one floating-point value per image \(1,\)"
        with pytest.raises(InputError, match=per_image):
            predict(model, image, device="cpu", disparity=disparity, disparity_range=shape_or_type)


def test_a_batch_takes_one_range_per_photo(model: D2F) -> None:
    batch = torch.rand(2, 3, 48, 64, generator=torch.Generator().manual_seed(2))
    disparity, _ = depth_input(ground(), "depth")
    options = {"disparity": disparity.expand(2, -1, -1, -1), "focus": (32.0, 47.0), "f_number": 2.0}
    ranges = torch.tensor([0.5, 1.0])
    both = predict(model, batch, device="cpu", disparity_range=ranges, **options)
    assert both.disparity_range.tolist() == [0.5, 1.0]
    assert both.disparity_range.data_ptr() != ranges.data_ptr()  # a copy, not the caller's tensor
    for index, value in enumerate((0.5, 1.0)):
        options["disparity"] = disparity
        one = predict(model, batch[index : index + 1], device="cpu", disparity_range=value, **options)
        torch.testing.assert_close(both.defocus[index], one.defocus[0])
    network = model.network_outputs(batch[:1])  # cached network outputs take a given range too
    cached = predict(model, batch[:1], device="cpu", disparity_range=1.0, **options)
    with torch.no_grad():
        again = model(batch[:1], network=network, disparity_range=1.0, **options)
    torch.testing.assert_close(again.defocus, cached.defocus)
