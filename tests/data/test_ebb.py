from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from d2f.data import VAL294_IDS, EBBDataset
from d2f.errors import DataError, ImageReadError, InputError

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
EBB_SAMPLES = SHARED / "ebb_samples"


def write_image(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def make_folder(root: Path, ids=(0, 1, 4399, 4400, 4693, 4694), size=(24, 32), suffix=".png") -> Path:
    """An EBB!-style folder whose bokeh images equal the originals plus 100 (to check pairing)."""
    rng = np.random.default_rng(0)
    for number in ids:
        original = rng.integers(0, 150, (*size, 3), dtype=np.uint8)
        write_image(root / "original" / f"{number}{suffix}", original)
        write_image(root / "bokeh" / f"{number}{suffix}", original + 100)
    return root


class TestSplits:
    def test_splits_by_pair_number(self, tmp_path):
        root = make_folder(tmp_path)
        assert [name for name, *_ in EBBDataset(root).pairs] == ["0", "1", "4399", "4400", "4693", "4694"]
        assert [name for name, *_ in EBBDataset(root, "train").pairs] == ["0", "1", "4399", "4694"]
        assert [name for name, *_ in EBBDataset(root, "val294").pairs] == ["4400", "4693"]
        assert len(VAL294_IDS) == 294

    def test_training_folder_of_the_distribution_is_found(self, tmp_path):
        make_folder(tmp_path / "Training", ids=(4400,))
        assert len(EBBDataset(tmp_path, "val294")) == 1

    def test_empty_split(self, tmp_path):
        root = make_folder(tmp_path, ids=(1, 2))
        with pytest.raises(DataError, match="no image pairs in split 'val294'"):
            EBBDataset(root, "val294")

    def test_unknown_split(self, tmp_path):
        with pytest.raises(InputError, match="split"):
            EBBDataset(make_folder(tmp_path, ids=(1,)), "test")

    def test_not_a_dataset_folder(self, tmp_path):
        with pytest.raises(DataError, match="original/ and bokeh/"):
            EBBDataset(tmp_path)
        with pytest.raises(DataError, match="does not exist"):
            EBBDataset(tmp_path / "missing")


class TestItems:
    def test_item(self, tmp_path):
        item = EBBDataset(make_folder(tmp_path), "val294")[0]
        assert set(item) == {"image", "bokeh", "name"}
        assert item["name"] == "4400"
        for key in ("image", "bokeh"):
            assert item[key].shape == (3, 24, 32) and item[key].dtype == torch.float32
            assert float(item[key].min()) >= 0 and float(item[key].max()) <= 1
        torch.testing.assert_close(item["bokeh"], item["image"] + 100 / 255)

    def test_subject_mask_comes_along(self, tmp_path):
        root = make_folder(tmp_path, ids=(5, 6))
        mask = np.zeros((24, 32), dtype=np.uint8)
        mask[5:10, 5:20] = 255
        write_image(root / "subject_mask" / "5.png", mask)
        dataset = EBBDataset(root)
        assert dataset[0]["subject_mask"].shape == (1, 24, 32)
        assert float(dataset[0]["subject_mask"].sum()) == 5 * 15
        assert "subject_mask" not in dataset[1]

    def test_paired_crop_and_flip(self, tmp_path):
        root = make_folder(tmp_path, ids=(3,))
        dataset = EBBDataset(root, crop_size=(10, 12), random_flip=True, seed=4)
        items = []
        for epoch in range(6):
            dataset.set_epoch(epoch)
            item = dataset[0]
            assert item["image"].shape == item["bokeh"].shape == (3, 10, 12)
            torch.testing.assert_close(item["bokeh"], item["image"] + 100 / 255)  # same window, same flip
            items.append(item["image"])
        dataset.set_epoch(0)
        torch.testing.assert_close(dataset[0]["image"], items[0])  # a function of (seed, epoch, index)
        assert len({tuple(image.flatten()[:5].tolist()) for image in items}) > 1

    def test_crop_larger_than_the_image(self, tmp_path):
        with pytest.raises(DataError, match=r"3\.png.*larger than the image"):
            EBBDataset(make_folder(tmp_path, ids=(3,)), crop_size=64)[0]

    def test_resize_policies(self, tmp_path):
        root = make_folder(tmp_path, ids=(3,), size=(150, 260))
        assert EBBDataset(root, resize=(30, 40))[0]["image"].shape == (3, 30, 40)
        assert EBBDataset(root, resize="half")[0]["bokeh"].shape == (3, 64, 128)
        with pytest.raises(InputError, match="resize"):
            EBBDataset(root, resize="double")


class TestBadFiles:
    def test_missing_counterpart_is_an_error_naming_the_file(self, tmp_path):
        root = make_folder(tmp_path, ids=(1, 2))
        (root / "bokeh" / "2.png").unlink()
        with pytest.raises(DataError, match=r"original/2\.png: no matching image"):
            EBBDataset(root)

    def test_missing_counterpart_is_skipped_with_a_warning(self, tmp_path):
        root = make_folder(tmp_path, ids=(1, 2))
        (root / "original" / "1.png").unlink()
        with pytest.warns(UserWarning, match="unpaired"):
            dataset = EBBDataset(root, skip_bad=True)
        assert [name for name, *_ in dataset.pairs] == ["2"]

    def test_corrupt_file(self, tmp_path):
        root = make_folder(tmp_path, ids=(1, 2))
        (root / "bokeh" / "1.png").write_bytes(b"not a png at all")
        with pytest.raises(ImageReadError, match=r"bokeh/1\.png"):
            EBBDataset(root)[0]
        dataset = EBBDataset(root, skip_bad=True)
        with pytest.warns(UserWarning, match="skipping pair '1'"):
            assert dataset[0]["name"] == "2"

    def test_pair_of_different_sizes(self, tmp_path):
        root = make_folder(tmp_path, ids=(1,))
        write_image(root / "bokeh" / "1.png", np.zeros((20, 32, 3), dtype=np.uint8))
        with pytest.raises(DataError, match=r"bokeh/1\.png: size 32x20 differs"):
            EBBDataset(root)[0]
        item = EBBDataset(root, resize="match")[0]
        assert item["bokeh"].shape == item["image"].shape == (3, 24, 32)


@pytest.mark.skipif(not EBB_SAMPLES.is_dir(), reason="../shared/ebb_samples is not available")
def test_real_ebb_samples():
    dataset = EBBDataset(EBB_SAMPLES)
    assert [name for name, *_ in dataset.pairs] == ["2977", "2978", "2979"]
    assert len(EBBDataset(EBB_SAMPLES, "train")) == 3
    item = EBBDataset(EBB_SAMPLES, resize="half", crop_size=256, random_flip=True)[1]
    assert item["image"].shape == item["bokeh"].shape == (3, 256, 256)
    assert item["subject_mask"].shape == (1, 256, 256)
    full = dataset[0]
    height, width = full["image"].shape[-2:]
    assert full["subject_mask"].shape == (1, height, width)
    mask = full["subject_mask"] > 0.5
    assert 0.01 < float(mask.float().mean()) < 0.9
    # The bokeh photo is blurrier than the original outside the subject.
    def roughness(image):
        return (image[:, :, 1:] - image[:, :, :-1]).abs()[:, ~mask[0, :, 1:]].mean()

    assert float(roughness(full["bokeh"])) < float(roughness(full["image"]))
