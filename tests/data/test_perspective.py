import json
import math

import pytest
import torch

from d2f.data import SyntheticBokehDataset, generate_perspective_scene
from d2f.data.perspective import SKY_DEPTH, Camera, ground_disparity
from d2f.data.textures import TextureBank
from d2f.errors import InputError

SIZE = (48, 64)
MAP_KEYS = ("defocus", "coc", "disparity", "focus_mask")


@pytest.fixture(scope="module")
def scenes():
    textures = TextureBank.procedural_only()
    return [generate_perspective_scene(seed, SIZE, textures, kernel_scale=0.3) for seed in range(5)]


def test_outputs(scenes):
    for scene in scenes:
        assert scene["image"].shape == scene["bokeh"].shape == (3, *SIZE)
        for key in MAP_KEYS:
            assert scene[key].shape == (1, *SIZE), key
        for key in ("image", "bokeh", "defocus", "focus_mask"):
            assert float(scene[key].min()) >= 0 and float(scene[key].max()) <= 1, key
        assert float(scene["disparity"].min()) >= 1 / SKY_DEPTH - 1e-9
        assert float(scene["coc"].abs().max()) <= 0.3 * 140 + 1e-4
        json.dumps(scene["params"])


@pytest.mark.parametrize("pitch_degrees", [-5.0, 0.0, 8.0, 30.0])
def test_ground_disparity_grows_from_the_horizon_to_the_bottom(pitch_degrees):
    camera = Camera(focal=80.0, centre=(40.0, 50.0), height=1.5, pitch=math.radians(pitch_degrees))
    disparity = ground_disparity(camera, (80, 100))[0]
    torch.testing.assert_close(disparity, disparity[:, :1].expand_as(disparity))  # level camera: rows
    column = disparity[:, 0]
    below = torch.arange(80) + 0.5 > camera.horizon_row
    assert bool((column[~below] == 0).all())
    seen = column[below]
    assert bool((seen[1:] >= seen[:-1]).all())
    # Strictly increasing (linearly) once the ground is nearer than the sky.
    near = seen[seen > 1 / SKY_DEPTH]
    steps = near[1:] - near[:-1]
    assert len(near) > 10 and bool((steps > 0).all())
    torch.testing.assert_close(steps, steps[:1].expand_as(steps), rtol=1e-3, atol=1e-7)


def test_the_ground_under_the_camera_is_at_its_height():
    camera = Camera(focal=100.0, centre=(50.0, 50.0), height=2.0, pitch=math.radians(20))
    depth = 7.0
    row = camera.ground_row(depth)
    disparity = ground_disparity(camera, (100, 100))[0, :, 0]
    # The ground's disparity is linear in the row: at (fractional) row ``row`` it is 1 / depth.
    below = math.floor(row)
    value = disparity[below] + (row - below) * (disparity[below + 1] - disparity[below])
    assert float(value) == pytest.approx(1 / depth, rel=1e-4)


def test_objects_stand_on_the_ground_with_their_size_proportional_to_disparity(scenes):
    checked = 0
    for scene in scenes:
        params = scene["params"]
        focal = params["camera"]["focal"]
        margin, (height, width) = params["margin"], params["size"]
        camera = Camera(focal, (margin + height / 2, margin + width / 2), params["camera"]["height"],
                        math.radians(params["camera"]["pitch_degrees"]))
        for item in params["objects"]:
            top, _, box_height, box_width = item["box"]
            # The box's last row is where the ground lies at the object's depth.
            assert top + margin + box_height - 1 == round(camera.ground_row(item["depth"]))
            metres_high, metres_wide = item["metres"]
            # Pixel size = focal * metres * disparity (rounded to whole pixels, at least 2).
            assert abs(box_height - max(2, focal * metres_high / item["depth"])) <= 0.5
            assert abs(box_width - max(2, focal * metres_wide / item["depth"])) <= 0.5
            checked += 1
    assert checked >= 10


def test_focus_is_on_the_subject_or_the_ground(scenes):
    for scene in scenes:
        params = scene["params"]
        assert params["focus_on"] in ("subject", "ground", "scene")
        if params["focus_on"] == "subject":
            subject = next(item for item in params["objects"] if item["subject"])
            assert params["focus_depth"] == pytest.approx(subject["depth"])
        coc = params["strength"] * (scene["disparity"] - 1 / params["focus_depth"])
        torch.testing.assert_close(scene["coc"], coc.clamp(-params["largest_coc"], params["largest_coc"]),
                                   atol=1e-3, rtol=1e-4)


def test_same_seed_same_scene():
    textures = TextureBank.builtin()
    first = generate_perspective_scene([4, 2], SIZE, textures, kernel_scale=0.3)
    second = generate_perspective_scene([4, 2], SIZE, textures, kernel_scale=0.3)
    for key in ("image", "bokeh", *MAP_KEYS):
        assert torch.equal(first[key], second[key]), key
    assert first["params"] == second["params"]
    other = generate_perspective_scene([4, 3], SIZE, textures, kernel_scale=0.3)
    assert not torch.equal(first["image"], other["image"])


def test_blur_scale_zero_renders_the_image():
    for seed in range(3):
        scene = generate_perspective_scene(seed, SIZE, TextureBank.procedural_only(), kernel_scale=0)
        torch.testing.assert_close(scene["bokeh"], scene["image"], atol=1e-5, rtol=0)
        assert float(scene["coc"].abs().max()) == 0 and float(scene["focus_mask"].min()) == 1


def test_bad_arguments():
    with pytest.raises(InputError, match="size"):
        generate_perspective_scene(0, (8, 8))
    with pytest.raises(InputError, match="kernel_scale"):
        generate_perspective_scene(0, SIZE, kernel_scale=-1)
    with pytest.raises(InputError, match="perspective_probability"):
        SyntheticBokehDataset(2, SIZE, perspective_probability=1.5)


def test_dataset_mixes_perspective_scenes_in():
    textures = TextureBank.procedural_only()
    perspective = SyntheticBokehDataset(2, SIZE, seed=6, textures=textures, kernel_scale=0.3,
                                        perspective_probability=1.0)
    scene = generate_perspective_scene([6, 1], SIZE, textures, kernel_scale=0.3)
    item = perspective[1]
    for key in ("image", "bokeh", *MAP_KEYS):
        assert torch.equal(item[key], scene[key]), key
    expected = item["coc_scale"] * (item["norm_disparity"] - item["norm_focus_disparity"])
    torch.testing.assert_close(item["coc"], expected, atol=1e-3, rtol=1e-4)
    mixed = SyntheticBokehDataset(200, SIZE, seed=6, perspective_probability=0.3)
    share = sum(mixed.is_perspective(index) for index in range(200)) / 200
    assert 0.2 < share < 0.4
