"""Data for training: the datasets a config names, and a batch order that survives interruptions.

Exact resumption needs every batch to be a function of the step alone, whatever the number of loader
processes and wherever the run was interrupted. So:

- :class:`StepBatchSampler` walks epochs of a :class:`~torch.utils.data.DistributedSampler`
  permutation (seeded, one shard per process) and yields, for step ``s`` onwards, the keys
  ``(epoch, index)`` of the images that step takes;
- :class:`KeyedDataset` runs the underlying dataset's random augmentations (crops, flips) with all
  global generators seeded from ``(seed, epoch, index)`` and restored afterwards.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset

from d2f.errors import ConfigError, DataError
from d2f.train.config import DataConfig

#: Batch entries the training loop uses; others (names, scene parameters) are left out of batches.
BATCH_KEYS = ("image", "bokeh", "defocus", "focus_mask", "disparity")


def build_datasets(config: DataConfig) -> tuple[Dataset, Dataset]:
    """(training, validation) datasets; EBB! folder problems surface here as ConfigErrors naming the path."""
    val_size = config.val_size or config.size
    if config.dataset == "depth":
        return _depth_datasets(config, val_size)
    if config.dataset == "synthetic":
        from d2f.data import SyntheticBokehDataset

        options = {
            "textures": config.textures,
            "kernel_scale": config.kernel_scale,
            "companion_focus_probability": config.companion_focus_probability,
            "subject_support_probability": config.subject_support_probability,
            "perspective_probability": config.perspective_probability,
        }
        train = SyntheticBokehDataset(config.train_count, size=config.size, seed=config.seed, **options)
        val = SyntheticBokehDataset(config.val_count or 16, size=val_size, seed=config.seed + 1, **options)
        if config.rgbd_probability > 0:
            from d2f.data import RGBDBokehDataset

            try:
                photos = RGBDBokehDataset(config.rgbd_root, "train", size=config.size, seed=config.seed,
                                          kernel_scale=config.kernel_scale, skip_bad=config.skip_bad)
            except DataError as error:
                raise ConfigError(f"config key data.rgbd_root: {error}") from None
            train = MixedDataset(train, photos, config.rgbd_probability, seed=config.seed)
        return train, val
    from d2f.data import EBBDataset

    options = {"resize": config.resize, "skip_bad": config.skip_bad, "seed": config.seed}
    try:
        train = EBBDataset(
            config.root, config.train_split, crop_size=config.size, random_flip=config.random_flip, **options
        )
        val = EBBDataset(config.root, config.val_split, crop_size=val_size, **options)
    except DataError as error:
        raise ConfigError(f"config key data.root: {error}") from None
    if config.val_count is not None and config.val_count < len(val):
        val = Subset(val, range(config.val_count))
    return train, val


class MixedDataset(Dataset):
    """``base`` with a share ``probability`` of its items replaced by random items of ``other``.

    Item ``index`` of epoch ``e`` draws from ``(seed, e, index)`` whether it comes from ``other``, and
    which; ``other`` gets the epoch too (:meth:`set_epoch`), so its random crops change as well.
    """

    def __init__(self, base: Dataset, other: Dataset, probability: float, *, seed: int = 0):
        self.base, self.other, self.probability, self.seed = base, other, float(probability), int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        if hasattr(self.other, "set_epoch"):
            self.other.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict[str, Any]:
        rng = np.random.default_rng([self.seed, self.epoch, index % len(self)])
        if rng.random() < self.probability:
            return self.other[int(rng.integers(len(self.other)))]
        return self.base[index]
def _depth_datasets(config: DataConfig, val_size: tuple[int, int] | None) -> tuple[Dataset, Dataset]:
    """The depth stage's mix (RGB-D photos and synthetic scenes) and the RGB-D held-out part."""
    from d2f.data import SyntheticBokehDataset

    try:
        photos = rgbd_dataset(config.root, "train", config.size, random=True, seed=config.seed)
        val = rgbd_dataset(config.root, "holdout", val_size, random=False, seed=config.seed + 1)
    except DataError as error:
        raise ConfigError(f"config key data.root: {error}") from None
    scenes = SyntheticBokehDataset(
        config.train_count,
        size=config.size,
        seed=config.seed,
        textures=config.textures,
        kernel_scale=config.kernel_scale,
        companion_focus_probability=config.companion_focus_probability,
        subject_support_probability=config.subject_support_probability,
        perspective_probability=config.perspective_probability,
    )
    if config.val_count is not None and config.val_count < len(val):
        val = Subset(val, range(config.val_count))
    return DepthMix(photos, scenes, config.synthetic_share, config.train_count), val


def rgbd_dataset(
    root: str, split: str, size: tuple[int, int] | None, *, random: bool, seed: int
) -> Dataset:
    """RGB-D items of ``split`` from a cache (a folder with ``index.json``, see
    :mod:`d2f.train.rgbd_cache`) or from the RGB-D folder itself (:class:`d2f.data.RGBDBokehDataset`)."""
    from d2f.train.rgbd_cache import INDEX_NAME, RGBDCacheDataset

    if (Path(root) / INDEX_NAME).is_file():
        return RGBDCacheDataset(root, split, size=size, random=random)
    try:
        from d2f.data import RGBDBokehDataset
    except ImportError:
        raise DataError(f"{root}: no {INDEX_NAME}; write an RGB-D cache with scripts/cache_rgbd.py") from None
    return RGBDBokehDataset(root, split, size=size, random_flip=random, skip_bad=True, seed=seed)


class DepthMix(Dataset):
    """``length`` items, each a synthetic scene (a share ``synthetic_share`` of the indices, spread
    evenly) or an RGB-D photo (index modulo the photos: each is seen again with new random crops)."""

    def __init__(self, photos: Dataset, scenes: Dataset, synthetic_share: float, length: int):
        self.photos, self.scenes = photos, scenes
        self.synthetic_share = synthetic_share
        self.length = length

    def __len__(self) -> int:
        return self.length

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.photos, "set_epoch"):
            self.photos.set_epoch(epoch)

    def __getitem__(self, index: int) -> dict[str, Any]:
        # Index i is synthetic when the fractional part of i * golden ratio falls below the share: a
        # low-discrepancy sequence, so every run of indices holds about the share.
        if (index * 0.6180339887498949) % 1 < self.synthetic_share:
            return self.scenes[index % len(self.scenes)]
        return self.photos[index % len(self.photos)]


class KeyedDataset(Dataset):
    """``dataset[index]`` under global generators seeded from ``(seed, epoch, index)``, keyed by the pair."""

    def __init__(self, dataset: Dataset, seed: int):
        self.dataset = dataset
        self.seed = seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, Any]:
        epoch, index = key
        if hasattr(self.dataset, "set_epoch"):  # datasets that draw their own crops per (epoch, index)
            self.dataset.set_epoch(epoch)
        sample_seed = hash((self.seed, epoch, index)) & (2**63 - 1)
        python_state, numpy_state = random.getstate(), np.random.get_state()
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(sample_seed)
                random.seed(sample_seed)
                np.random.seed(sample_seed % 2**32)
                return self.dataset[index]
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)


class StepBatchSampler:
    """Endless batches of ``(epoch, index)`` keys for this process, starting at ``start_step``.

    Each epoch is the ``DistributedSampler`` permutation of that epoch (seeded by ``seed``; one shard per
    process, padded to equal length), cut into full batches; a step's batch depends only on the step.
    """

    def __init__(
        self,
        length: int,
        batch_size: int,
        *,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        start_step: int = 0,
        shuffle: bool = True,
    ):
        self.sampler = DistributedSampler(
            range(length), num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed, drop_last=False
        )
        self.batch_size = batch_size
        self.batches_per_epoch = len(self.sampler) // batch_size
        if self.batches_per_epoch == 0:
            raise ConfigError(
                f"config key run.batch_size: {batch_size} is more than the {len(self.sampler)} "
                f"training images each of {world_size} process(es) gets"
            )
        self.start_step = start_step

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        epoch, batch = divmod(self.start_step, self.batches_per_epoch)
        while True:
            self.sampler.set_epoch(epoch)
            indices = list(self.sampler)
            for position in range(batch, self.batches_per_epoch):
                chosen = indices[position * self.batch_size : (position + 1) * self.batch_size]
                yield [(epoch, index) for index in chosen]
            epoch, batch = epoch + 1, 0


def collate(samples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Stack the entries of :data:`BATCH_KEYS` that every sample has."""
    keys = [key for key in BATCH_KEYS if all(key in sample for sample in samples)]
    return {key: torch.stack([torch.as_tensor(sample[key]) for sample in samples]) for key in keys}


def train_loader(
    dataset: Dataset,
    config: DataConfig,
    batch_size: int,
    *,
    seed: int,
    rank: int,
    world_size: int,
    start_step: int,
    pin_memory: bool,
) -> DataLoader:
    """Endless loader of training batches from ``start_step`` on (see the module docstring)."""
    sampler = StepBatchSampler(
        len(dataset), batch_size, seed=seed, rank=rank, world_size=world_size, start_step=start_step
    )
    return DataLoader(
        KeyedDataset(dataset, seed),
        batch_sampler=sampler,
        num_workers=config.num_workers,
        collate_fn=collate,
        pin_memory=pin_memory,
        persistent_workers=config.num_workers > 0,
    )


def val_loader(dataset: Dataset, config: DataConfig, batch_size: int) -> DataLoader:
    """The validation images in a fixed order (augmentation-free datasets: no seeding needed)."""
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=False, num_workers=config.num_workers, collate_fn=collate
    )


__all__ = [
    "BATCH_KEYS",
    "DepthMix",
    "KeyedDataset",
    "MixedDataset",
    "StepBatchSampler",
    "build_datasets",
    "collate",
    "rgbd_dataset",
    "train_loader",
    "val_loader",
]
