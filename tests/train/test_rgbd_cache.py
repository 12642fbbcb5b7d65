import json

import numpy as np
import pytest
import torch
from tiny_run import write_tiny_cache

from d2f.errors import DataError
from d2f.train.rgbd_cache import DISPARITY_LEVELS, RGBDCacheDataset, read_cache_index, write_cache_entry


def test_cache_entries_store_the_photo_shrunk_and_the_disparity_relative_to_its_largest(tmp_path):
    image = np.full((60, 200, 3), 128, dtype=np.uint8)
    disparity = np.tile(np.linspace(0.5, 2.0, 200, dtype=np.float32), (60, 1))  # near on the right
    names = write_cache_entry(tmp_path, 7, image, disparity, long_side=100)
    assert names == {"image": "00007.jpg", "disparity": "00007.png"}
    (tmp_path / "index.json").write_text(
        json.dumps({"format": "d2f-rgbd-cache-1", "items": [{"name": "a", "split": "holdout", **names}]})
    )
    item = RGBDCacheDataset(tmp_path, "holdout", size=None, random=False)[0]
    assert item["image"].shape == (3, 30, 100) and item["disparity"].shape == (1, 30, 100)
    assert abs(float(item["image"].mean()) - 128 / 255) < 0.01
    full = torch.from_numpy(disparity)[None, None]
    shrunk = torch.nn.functional.interpolate(full, size=(30, 100), mode="area")
    assert torch.allclose(item["disparity"], shrunk[0] / shrunk.max(), atol=0.6 / DISPARITY_LEVELS)


def test_training_items_are_random_crops_drawn_from_torchs_generator_and_validation_items_fixed(tmp_path):
    root = write_tiny_cache(tmp_path)
    train = RGBDCacheDataset(root, "train", size=(64, 64))
    assert len(train) == 3 and len(RGBDCacheDataset(root, "holdout")) == 2
    torch.manual_seed(3)
    first = train[1]
    torch.manual_seed(3)
    again = train[1]
    assert all(torch.equal(first[key], again[key]) for key in ("image", "disparity", "focus_mask"))
    assert first["image"].shape == (3, 64, 64) and first["focus_mask"].shape == (1, 64, 64)
    assert 0 < float(first["focus_mask"].mean()) < 1
    assert set(first["focus_mask"].unique().tolist()) <= {0.0, 1.0}
    crops = {tuple(train[1]["image"][0, 0, :4].tolist()) for _ in range(6)}
    assert len(crops) > 1
    val = RGBDCacheDataset(root, "holdout", size=(64, 64), random=False)
    assert torch.equal(val[0]["image"], val[0]["image"])
    # The tiny cache's disparity grows down the frame; a centre crop keeps that order.
    column = val[0]["disparity"][0, :, 32]
    assert (column[1:] >= column[:-1] - 1e-6).all() and column[-1] > column[0]


def test_bad_caches_give_one_line_errors(tmp_path):
    with pytest.raises(DataError, match="no RGB-D cache index"):
        read_cache_index(tmp_path)
    (tmp_path / "index.json").write_text("{}")
    with pytest.raises(DataError, match="not an RGB-D cache index"):
        read_cache_index(tmp_path)
    write_tiny_cache(tmp_path, train=1, holdout=0)
    with pytest.raises(DataError, match="no photos in split 'holdout'"):
        read_cache_index(tmp_path, "holdout")
    (tmp_path / "00000.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="tiny/0: unreadable cache file"):
        RGBDCacheDataset(tmp_path, "train")[0]
