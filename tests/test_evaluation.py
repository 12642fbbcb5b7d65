import csv
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from d2f.errors import DataError, InputError
from d2f.evaluation import (
    BASELINES,
    evaluate,
    find_pairs,
    gaussian_baseline,
    identity_baseline,
    summarize,
    write_report,
)

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared"
EBB_SAMPLES = SHARED / "ebb_samples"

# Published by the issue under this protocol (Pillow decoding, scikit-image metrics).
EXPECTED = {
    "identity": {"psnr": (15.93, 17.95, 22.53), "ssim": (0.412, 0.411, 0.685)},
    "gaussian": {"psnr": (18.69, 19.13, 26.36)},
}


def write_pairs(root: Path, names, size=(48, 64), with_masks=False, seed=0):
    rng = np.random.default_rng(seed)
    for folder in ("original", "bokeh", *(("subject_mask",) if with_masks else ())):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for name in names:
        image = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        Image.fromarray(image).save(root / "original" / f"{name}.png")
        Image.fromarray(gaussian_baseline(image)).save(root / "bokeh" / f"{name}.png")
        if with_masks:
            Image.fromarray(np.full(size, 255, np.uint8)).save(root / "subject_mask" / f"{name}.png")
    return root


@pytest.mark.skipif(not EBB_SAMPLES.is_dir(), reason="shared EBB! samples (../shared/ebb_samples) absent")
@pytest.mark.parametrize("baseline", ["identity", "gaussian"])
def test_baselines_reproduce_the_published_numbers(baseline):
    pairs = find_pairs(EBB_SAMPLES)
    assert [pair.name for pair in pairs] == ["2977", "2978", "2979"]
    assert all(pair.subject_mask is not None for pair in pairs)
    results = list(evaluate(pairs, BASELINES[baseline]))
    for index, result in enumerate(results):
        assert result.psnr == pytest.approx(EXPECTED[baseline]["psnr"][index], abs=0.05)
        if "ssim" in EXPECTED[baseline]:
            assert result.ssim == pytest.approx(EXPECTED[baseline]["ssim"][index], abs=0.005)
        if baseline == "identity":
            assert result.subject_sharpness == pytest.approx(1.0)
            assert result.background_blur_match > 2  # the sharp input is far sharper than the real bokeh
        else:  # the issue: a Gaussian blur keeps 0.00-0.10 of the subject's sharpness
            assert 0.0 <= result.subject_sharpness <= 0.1


def test_baselines():
    image = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    assert np.array_equal(identity_baseline(image), image)
    smooth = gaussian_baseline(image)
    assert smooth.shape == image.shape and smooth.dtype == np.uint8
    assert smooth.astype(float).std() < image.astype(float).std() / 3


def test_pairs_of_a_plain_folder_and_of_an_ebb_root_with_splits(tmp_path):
    write_pairs(tmp_path / "plain", ["10", "9", "a"], with_masks=True)
    pairs = find_pairs(tmp_path / "plain")
    assert [pair.name for pair in pairs] == ["9", "10", "a"]
    assert pairs[0].subject_mask == tmp_path / "plain" / "subject_mask" / "9.png"
    write_pairs(tmp_path / "ebb" / "Training", ["4399", "4400", "4693"])
    assert [pair.name for pair in find_pairs(tmp_path / "ebb", "val294")] == ["4400", "4693"]
    assert [pair.name for pair in find_pairs(tmp_path / "ebb", "train")] == ["4399"]
    assert find_pairs(tmp_path / "ebb")[0].subject_mask is None


def test_bad_folders_name_the_problem(tmp_path):
    with pytest.raises(DataError, match="no such data folder"):
        find_pairs(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="original/ and bokeh/"):
        find_pairs(tmp_path / "empty")
    root = write_pairs(tmp_path / "pairs", ["1", "2"])
    (root / "bokeh" / "2.png").unlink()
    with pytest.raises(DataError, match=r"2\.png: no ground truth"):
        find_pairs(root)
    with pytest.raises(DataError, match="no images of split 'val294'"):
        find_pairs(write_pairs(tmp_path / "few", ["1"]), "val294")
    with pytest.raises(InputError, match="split"):
        find_pairs(root, "test")


def test_a_pair_of_different_sizes_is_a_data_error(tmp_path):
    root = write_pairs(tmp_path, ["1"])
    Image.new("RGB", (10, 10)).save(root / "bokeh" / "1.png")
    with pytest.raises(DataError, match=r"1\.png: size 10x10 differs"):
        list(evaluate(find_pairs(root), identity_baseline))


def test_report_has_a_row_per_image_and_the_means(tmp_path):
    root = write_pairs(tmp_path / "data", ["1", "2"], with_masks=True)
    results = list(evaluate(find_pairs(root), BASELINES["gaussian"]))
    assert all(math.isinf(result.psnr) for result in results)  # the ground truth is the gaussian itself
    report = write_report(results, tmp_path / "report.csv")
    rows = list(csv.DictReader(report.open()))
    assert [row["name"] for row in rows] == ["1", "2", "mean"]
    assert set(rows[0]) == {"name", "psnr", "ssim", "seconds", "subject_sharpness", "background_blur_match"}
    assert float(rows[2]["ssim"]) == pytest.approx(summarize(results)["ssim"], rel=1e-5) == pytest.approx(1.0)
    with pytest.raises(InputError, match="already exists"):
        write_report(results, report)
    assert write_report(results[:1], report, overwrite=True) == report
    assert len(list(csv.DictReader(report.open()))) == 2
    assert list(tmp_path.glob(".*tmp")) == []
