import itertools
import random
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import Dataset

from d2f.errors import ConfigError
from d2f.train.config import load_config
from d2f.train.data import KeyedDataset, StepBatchSampler, build_datasets, collate


def batches(sampler, count):
    return list(itertools.islice(iter(sampler), count))


def test_a_step_batch_depends_only_on_the_step():
    everything = batches(StepBatchSampler(10, 3, seed=5), 9)  # three batches per epoch, one index left over
    assert [len(batch) for batch in everything] == [3] * 9
    assert {epoch for batch in everything for epoch, _ in batch} == {0, 1, 2}
    for start in (1, 4, 7):
        assert batches(StepBatchSampler(10, 3, seed=5, start_step=start), 9 - start) == everything[start:]
    first_epoch = [index for batch in everything[:3] for _, index in batch]
    assert len(set(first_epoch)) == 9 and first_epoch != sorted(first_epoch)
    assert batches(StepBatchSampler(10, 3, seed=6), 3) != everything[:3]


def test_processes_take_disjoint_shards():
    shards = [batches(StepBatchSampler(8, 2, seed=0, rank=rank, world_size=2), 2) for rank in (0, 1)]
    indices = [{index for batch in shard for _, index in batch} for shard in shards]
    assert indices[0].isdisjoint(indices[1]) and indices[0] | indices[1] == set(range(8))


def test_a_batch_larger_than_a_shard_is_a_config_error():
    with pytest.raises(ConfigError, match=r"run\.batch_size: 5 is more than the 4 training images"):
        StepBatchSampler(8, 5, seed=0, world_size=2)


class RandomItems(Dataset):
    """Items drawn from the global generators, as augmentations often are."""

    def __len__(self):
        return 4

    def __getitem__(self, index):
        return {"image": torch.rand(3, 2, 2), "value": random.random() + np.random.rand()}


def test_keyed_items_are_reproducible_and_leave_the_global_generators_alone():
    keyed = KeyedDataset(RandomItems(), seed=3)
    torch.manual_seed(0)
    random.seed(0)
    np.random.seed(0)
    state = (torch.get_rng_state(), random.getstate(), np.random.get_state()[1].copy())
    first = keyed[(1, 2)]
    assert torch.equal(torch.get_rng_state(), state[0]) and random.getstate() == state[1]
    assert np.array_equal(np.random.get_state()[1], state[2])
    again = keyed[(1, 2)]
    assert torch.equal(first["image"], again["image"]) and first["value"] == again["value"]
    assert not torch.equal(first["image"], keyed[(2, 2)]["image"])
    assert not torch.equal(first["image"], KeyedDataset(RandomItems(), seed=4)[(1, 2)]["image"])


def test_collate_keeps_the_tensors_every_sample_has():
    samples = [
        {"image": torch.zeros(3, 4, 4), "bokeh": torch.ones(3, 4, 4), "name": str(index)}
        for index in range(2)
    ]
    batch = collate(samples)
    assert set(batch) == {"image", "bokeh"} and batch["image"].shape == (2, 3, 4, 4)


def test_ebb_crops_change_with_the_epoch(tmp_path):
    rng = np.random.default_rng(0)
    for folder in ("original", "bokeh"):
        (tmp_path / folder).mkdir()
    for name in ("1", "2", "4400"):
        for folder in ("original", "bokeh"):
            Image.fromarray(rng.integers(0, 256, (160, 200, 3), dtype=np.uint8)).save(
                tmp_path / folder / f"{name}.png"
            )
    config = load_config(None, ["data.dataset=ebb", f"data.root={tmp_path}", "data.size=[64, 64]"])
    train, val = build_datasets(config.data)
    assert len(train) == 2 and len(val) == 1
    keyed = KeyedDataset(train, seed=0)
    crops = [keyed[(epoch, 0)]["image"] for epoch in range(4)]
    assert all(crop.shape == (3, 64, 64) for crop in crops)
    assert torch.equal(crops[0], keyed[(0, 0)]["image"])
    assert any(not torch.equal(crops[0], crop) for crop in crops[1:])
    assert torch.equal(val[0]["image"], val[0]["image"])


def test_synthetic_data_mixes_perspective_scenes_and_rgbd_photos(tmp_path):
    # Three RGB-D-D pairs (the first is held out), a near square on a far wall.
    depth = np.full((72, 96), 4000, np.uint16)
    depth[20:50, 30:60] = 1000
    for folder in ("rgb", "depth_mm"):
        (tmp_path / "rgbdd" / folder).mkdir(parents=True)
    for index in range(3):
        Image.fromarray(np.random.default_rng(index).integers(0, 255, (72, 96, 3), np.uint8)).save(
            tmp_path / "rgbdd" / "rgb" / f"{index}.jpg")
        Image.fromarray(depth).save(tmp_path / "rgbdd" / "depth_mm" / f"{index}.png")
    overrides = ["data.size=[64,64]", "data.train_count=40", "data.perspective_probability=1",
                 f"data.rgbd_root={tmp_path}", "data.rgbd_probability=0.5", "data.skip_bad=true"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train, _ = build_datasets(load_config(None, overrides).data)
    assert any("source folder 'peach' does not exist" in str(item.message) for item in caught)  # only rgbdd
    assert train.base.perspective_probability == 1 and len(train) == 40
    keyed = KeyedDataset(train, seed=0)
    names = [keyed[(1, index)]["name"] for index in range(12)]
    photos = [name for name in names if name.startswith("rgbdd/")]
    assert 0 < len(photos) < 12  # both kinds, with the same keys batched together
    batch = collate([keyed[(1, index)] for index in range(4)])
    assert batch["image"].shape == (4, 3, 64, 64)
    assert [keyed[(2, index)]["name"] for index in range(12)] != names  # each epoch draws anew
