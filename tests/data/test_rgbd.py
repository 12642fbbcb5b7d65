import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from rgbd_files import FAR, HOLES, NEAR, SQUARE, scene, write_sources

from d2f.data import RGBDBokehDataset, SyntheticBokehDataset
from d2f.data.rgbd import HOLDOUT_NAMES, SOURCES
from d2f.errors import DataError, InputError
from d2f.render import diameter_to_defocus

SHARED_RGBD = Path(__file__).resolve().parents[2] / ".." / "shared" / "rgbd"
TEST_SOURCES = ["rgbdd", "nyu_dct", "midd2003", "kitti2015", "dct_middlebury", "midd2014", "midd2001",
                "slambook_ch5", "open3d_nyu", "open3d_sun"]
METRIC = ("rgbdd/a", "nyu_dct/b", "slambook_ch5/g", "open3d_nyu/NYU", "open3d_sun/SUN")


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("rgbd")
    write_sources(folder)
    return folder


@pytest.fixture(scope="module")
def whole(root):
    """Whole photos, unflipped and without blur: every pixel where the files put it."""
    dataset = RGBDBokehDataset(root, size=None, sources=TEST_SOURCES, random_flip=False, kernel_scale=0)
    return {item["name"]: item for item in dataset}


def test_every_format_gives_near_one_far_zero(root, whole):
    formats = write_sources(root)
    assert set(whole) == set(formats) and len(formats) == 11
    inside = torch.zeros(36, 48, dtype=torch.bool)
    inside[SQUARE] = True
    for name, item in whole.items():
        if name == "kitti2015/d":
            continue  # sparse: the fill moves the square's edge by a column (see the next test)
        normalised = item["norm_disparity"][0]
        assert bool(torch.isfinite(item["disparity"]).all()), formats[name]
        # The near square is 1, the far wall 0, holes are filled from their neighbours (the wall).
        torch.testing.assert_close(normalised[inside], torch.ones(int(inside.sum())), atol=0.02, rtol=0,
                                   msg=formats[name])
        torch.testing.assert_close(normalised[~inside], torch.zeros(int((~inside).sum())), atol=0.02, rtol=0,
                                   msg=formats[name])
        for row, column in HOLES:
            assert float(normalised[row, column]) < 0.02, formats[name]


def test_metric_sources_give_disparity_in_inverse_metres(whole):
    for name in METRIC:
        disparity = whole[name]["disparity"][0]
        assert float(disparity[SQUARE].mean()) == pytest.approx(1 / NEAR, rel=0.01), name
        assert float(disparity[0, 0]) == pytest.approx(1 / FAR, rel=0.01), name


def test_sparse_sources_put_the_unmeasured_top_far_away(whole):
    # kitti2015/d is measured from row 8 down, every third column: above is sky, between is filled.
    normalised = whole["kitti2015/d"]["norm_disparity"][0]
    assert float(normalised[:8].max()) == 0
    assert float(normalised[SQUARE].min()) == 1
    assert float(normalised[8:, :12].max()) == 0 and float(normalised[8:, 36:].max()) == 0


def test_items_have_the_synthetic_keys_and_ranges(root):
    dataset = RGBDBokehDataset(root, size=(24, 32), sources=TEST_SOURCES)
    synthetic = SyntheticBokehDataset(1, (24, 32))[0]
    for index in range(len(dataset)):
        item = dataset[index]
        assert set(item) == set(synthetic)
        for key, value in item.items():
            if key == "name":
                continue
            assert value.dtype == torch.float32 and value.shape == synthetic[key].shape, key
            assert bool(torch.isfinite(value).all()), key
        for key in ("image", "bokeh", "defocus", "focus_mask", "norm_disparity"):
            assert float(item[key].min()) >= 0 and float(item[key].max()) <= 1, key
        expected = item["coc_scale"] * (item["norm_disparity"] - item["norm_focus_disparity"])
        torch.testing.assert_close(item["coc"], expected, atol=1e-3, rtol=1e-4)
        torch.testing.assert_close(item["defocus"], diameter_to_defocus(item["coc"].abs() / 2))
        torch.testing.assert_close(item["focus_mask"], (item["coc"].abs() <= 1).float())
        assert float(item["coc"].abs().max()) <= 140 + 1e-3


def test_blur_scale_zero_renders_the_photo(root):
    dataset = RGBDBokehDataset(root, size=(24, 32), sources=["rgbdd", "midd2014"], kernel_scale=0)
    for item in dataset:
        torch.testing.assert_close(item["bokeh"], item["image"], atol=1e-5, rtol=0)
        assert float(item["coc"].abs().max()) == 0


def test_focus_plane_stays_sharp_and_the_rest_blurs(root):
    dataset = RGBDBokehDataset(root, size=None, sources=["midd2003"], random_flip=False, kernel_scale=0.2)
    for epoch in range(4):
        dataset.set_epoch(epoch)
        item = dataset[0]
        focus = item["focus_mask"][0] > 0
        if bool(focus.any()):
            # The focus layer renders its own pixels; only nearer blurred layers may spill onto its edge.
            inner = torch.from_numpy(np.pad(np.ones((12, 16), bool), ((12, 12), (16, 16))))
            sharp = focus & inner
            torch.testing.assert_close(item["bokeh"][:, sharp], item["image"][:, sharp], atol=0.03, rtol=0)
        if float(item["coc"].abs().max()) > 8:
            assert float((item["bokeh"] - item["image"]).abs().mean()) > 0.01


def test_same_seed_same_items_and_epochs_differ(root):
    first = RGBDBokehDataset(root, size=(24, 32), sources=["rgbdd", "nyu_dct"], seed=3)
    second = RGBDBokehDataset(root, size=(24, 32), sources=["rgbdd", "nyu_dct"], seed=3)
    for key in ("image", "bokeh", "coc"):
        assert torch.equal(first[1][key], second[1][key]), key
    before = first[0]["coc"].clone()
    first.set_epoch(1)
    assert not torch.equal(first[0]["coc"], before)


def test_holdout_is_every_tenth_rgbdd_pair_and_two_middlebury_scenes(tmp_path):
    photo, depth = scene()
    for folder in ("rgb", "depth_mm"):
        (tmp_path / "rgbdd" / folder).mkdir(parents=True)
    millimetres = Image.fromarray((depth * 1000).astype(np.uint16))
    for index in range(12):
        Image.fromarray(photo).save(tmp_path / "rgbdd" / "rgb" / f"{index:02d}.jpg")
        millimetres.save(tmp_path / "rgbdd" / "depth_mm" / f"{index:02d}.png")
    for scene_name in ("Motorcycle", "Piano"):
        (tmp_path / "midd2014" / scene_name).mkdir(parents=True)
        Image.fromarray(photo).save(tmp_path / "midd2014" / scene_name / "im0.png")
        Image.fromarray((40 / depth).astype(np.uint8)).save(tmp_path / "midd2014" / scene_name / "disp0.png")
    options = {"size": None, "sources": ["rgbdd", "midd2014"]}
    holdout = {pair.name for pair in RGBDBokehDataset(tmp_path, "holdout", **options).pairs}
    train = {pair.name for pair in RGBDBokehDataset(tmp_path, "train", **options).pairs}
    everything = {pair.name for pair in RGBDBokehDataset(tmp_path, **options).pairs}
    assert holdout == {"rgbdd/00", "rgbdd/10", "midd2014/Motorcycle"}
    assert train == everything - holdout and len(everything) == 14


def test_bad_arguments(root):
    with pytest.raises(InputError, match="split"):
        RGBDBokehDataset(root, "val")
    with pytest.raises(InputError, match="sources"):
        RGBDBokehDataset(root, sources=["nowhere"])
    with pytest.raises(InputError, match="size"):
        RGBDBokehDataset(root, size=(8, 8), sources=["rgbdd"])


def _one_line_data_error(match: str, *args, **kwargs) -> None:
    with pytest.raises(DataError, match=match) as caught:
        RGBDBokehDataset(*args, **kwargs)[0]
    assert "\n" not in str(caught.value)


def test_missing_root_and_source_folders(root, tmp_path):
    _one_line_data_error("does not exist", tmp_path / "nowhere")
    _one_line_data_error("peach.*does not exist", root, sources=["rgbdd", "peach"])
    (tmp_path / "lu").mkdir()
    _one_line_data_error("no photos of source 'lu'", tmp_path, sources=["lu"])
    with pytest.warns(UserWarning, match="peach"):
        dataset = RGBDBokehDataset(root, sources=["rgbdd", "peach"], skip_bad=True)
    assert [pair.name for pair in dataset.pairs] == ["rgbdd/a"]


def _copy_source(root: Path, target: Path, source: str) -> None:
    for path in (root / source).rglob("*"):
        if path.is_file():
            destination = target / path.relative_to(root)
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(path.read_bytes())


def test_photo_without_depth(root, tmp_path):
    _copy_source(root, tmp_path, "rgbdd")
    Image.fromarray(scene()[0]).save(tmp_path / "rgbdd" / "rgb" / "lonely.jpg")
    _one_line_data_error("lonely.jpg: no depth map", tmp_path, sources=["rgbdd"])
    with pytest.warns(UserWarning, match="lonely.jpg"):
        dataset = RGBDBokehDataset(tmp_path, sources=["rgbdd"], skip_bad=True)
    assert [pair.name for pair in dataset.pairs] == ["rgbdd/a"]


@pytest.mark.parametrize("problem", ["size", "unreadable", "empty map"])
def test_bad_depth_files(root, tmp_path, problem):
    _copy_source(root, tmp_path, "rgbdd")
    _copy_source(root, tmp_path, "nyu_dct")
    bad = tmp_path / "rgbdd" / "depth_mm" / "a.png"
    if problem == "size":
        Image.fromarray(np.full((10, 12), 1000, np.uint16)).save(bad)
        match = "a.png: size 12x10 differs from a.jpg's 48x36"
    elif problem == "unreadable":
        bad.write_bytes(b"not a png at all")
        match = "a.png: cannot read"
    else:
        Image.fromarray(np.zeros((36, 48), np.uint16)).save(bad)
        match = "a.png: only 0 % of the pixels have a depth"
    _one_line_data_error(match, tmp_path, sources=["rgbdd"])
    dataset = RGBDBokehDataset(tmp_path, size=(24, 32), sources=["rgbdd", "nyu_dct"], skip_bad=True)
    with pytest.warns(UserWarning, match="skipping pair 'rgbdd/a'"):
        item = dataset[0]
    assert item["name"] == "nyu_dct/b"


def test_every_source_of_the_readme_is_known():
    folders = {source.folder for source in SOURCES}
    assert folders == {"rgbdd", "dct_middlebury", "midd2006", "midd2005", "midd2003", "midd2001", "midd2014",
                       "lu", "nyu_dct", "metric3d", "kitti2015", "peach", "slambook_ch5", "open3d_other",
                       "unidepth_demo"}


@pytest.mark.skipif(not SHARED_RGBD.is_dir(), reason="../shared/rgbd is not available")
def test_the_shared_folder():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        everything = RGBDBokehDataset(SHARED_RGBD, size=(64, 96))
        holdout = RGBDBokehDataset(SHARED_RGBD, "holdout", size=(64, 96))
        train = RGBDBokehDataset(SHARED_RGBD, "train", size=(64, 96))
    names = {pair.name for pair in holdout.pairs}
    rgbdd = sorted(pair.name for pair in everything.pairs if pair.source.name == "rgbdd")
    assert names == set(rgbdd[::10]) | HOLDOUT_NAMES
    assert len(train) + len(holdout) == len(everything)
    sources = {pair.source.name for pair in everything.pairs}
    assert sources == {source.name for source in SOURCES}
    item = holdout[len(holdout) - 1]  # a Middlebury 2014 scene: PFM or 16-bit RGB PNG
    assert item["name"] in HOLDOUT_NAMES and item["image"].shape == (3, 64, 96)
