import json

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

from d2f.data import SyntheticBokehDataset, generate_scene, read_scene, write_scene
from d2f.data.synthetic import MAX_BACKGROUND_BLUR
from d2f.data.textures import TextureBank
from d2f.errors import InputError
from d2f.render import diameter_to_defocus
from d2f.render.scene import linear_to_srgb, srgb_to_linear

SIZE = (64, 96)
MAP_KEYS = ("defocus", "coc", "disparity", "focus_mask")


@pytest.fixture(scope="module")
def scenes():
    """A few small scenes (built-in textures), generated once for the module."""
    return {seed: generate_scene(seed, SIZE, kernel_scale=0.3) for seed in range(6)}


def test_outputs(scenes):
    for scene in scenes.values():
        assert scene["image"].shape == scene["bokeh"].shape == (3, *SIZE)
        for key in MAP_KEYS:
            assert scene[key].shape == (1, *SIZE), key
        for key in ("image", "bokeh", "defocus", "coc", "disparity", "focus_mask"):
            assert scene[key].dtype == torch.float32
            assert bool(torch.isfinite(scene[key]).all()), key
        for key in ("image", "bokeh", "defocus", "focus_mask"):
            assert float(scene[key].min()) >= 0 and float(scene[key].max()) <= 1, key
        assert float(scene["disparity"].min()) > 0
        json.dumps(scene["params"])  # serialisable


def test_defocus_is_the_halved_coc_in_d2f_units(scenes):
    for scene in scenes.values():
        torch.testing.assert_close(scene["defocus"], diameter_to_defocus(scene["coc"].abs() / 2))


def test_focus_is_on_the_subject(scenes):
    for scene in scenes.values():
        objects = scene["params"]["objects"]
        subjects = [item for item in objects if item["subject"]]
        assert len(subjects) == 1 and subjects[0]["coc"] == 0
        assert subjects[0]["depth"] == pytest.approx(scene["params"]["focus_depth"])
        assert float(scene["focus_mask"].max()) == 1.0  # the subject is seen somewhere
        # The background is behind the subject and blurred by the scene's strength.
        background = scene["params"]["background"]
        assert background["depth"] > scene["params"]["focus_depth"]
        assert -background["coc"] / 2 == pytest.approx(scene["params"]["background_blur_half_res"])


def test_coc_follows_the_thin_lens(scenes):
    for scene in scenes.values():
        params = scene["params"]
        strength, focus = params["strength"], params["focus_depth"]
        expected = strength * (scene["disparity"] - 1 / focus)
        torch.testing.assert_close(scene["coc"], expected, atol=1e-3, rtol=1e-4)


def test_background_blur_spans_the_d2f_range():
    textures = TextureBank.procedural_only()
    scenes = [generate_scene(seed, (16, 16), textures) for seed in range(10)]
    blurs = [scene["params"]["background_blur_half_res"] for scene in scenes]
    assert all(0 <= blur <= MAX_BACKGROUND_BLUR for blur in blurs)
    assert min(blurs) < 20 and max(blurs) > 50


def test_deterministic():
    first = generate_scene([7, 3], SIZE, kernel_scale=0.3)
    second = generate_scene([7, 3], SIZE, kernel_scale=0.3)
    for key in ("image", "bokeh", *MAP_KEYS):
        assert torch.equal(first[key], second[key]), key
    assert first["params"] == second["params"]
    other = generate_scene([7, 4], SIZE, kernel_scale=0.3)
    assert not torch.equal(first["image"], other["image"])


def test_bokeh_equals_image_inside_the_focus_mask_unless_blur_spreads_over_it(scenes):
    checked = 0
    for scene in scenes.values():
        coc = scene["coc"][0].numpy()
        reach = int(np.ceil(np.abs(coc).max() / 2)) + 2
        # Pixels farther than any blur radius from every visibly blurred pixel.
        distance = ndimage.distance_transform_edt(np.abs(coc) <= 1)
        clear = torch.from_numpy(distance > reach) & (scene["focus_mask"][0] == 1)
        difference = (scene["bokeh"] - scene["image"]).abs().amax(dim=0)
        if bool(clear.any()):
            assert float(difference[clear].max()) < 1e-5
        checked += int(clear.sum())
        # Elsewhere the blur does change the picture.
        assert float(difference.max()) > 0.05
    assert checked > 200


def test_lights_are_bright_points_in_the_photo():
    checked = 0
    for seed in range(10):
        scene = generate_scene(seed, (96, 128), TextureBank.procedural_only())
        background = scene["params"]["background"]
        lights = background["lights"]
        if background["slant"] is not None:
            continue
        for light in lights:
            row, column = (round(value) for value in light["centre"])
            others = [other for other in lights if other is not light]
            isolated = all(np.hypot(*np.subtract(other["centre"], light["centre"])) > 8 for other in others)
            if not (light["radius"] >= 1.3 and isolated and 0 <= row < 96 and 0 <= column < 128):
                continue
            if float(scene["coc"][0, row, column]) != pytest.approx(background["coc"], abs=1e-3):
                continue  # hidden behind something
            # Linear radiance: the light's colour times its gain (2-10), clipped to white in the photo.
            colour = torch.tensor(light["colour"])
            expected = linear_to_srgb((srgb_to_linear(colour) * light["gain"]).clamp(max=1))
            torch.testing.assert_close(scene["image"][:, row, column], expected, atol=2e-3, rtol=0)
            checked += 1
    assert checked >= 3


def test_slanted_backgrounds_recede():
    textures, checked = TextureBank.procedural_only(), 0
    for seed in range(20):
        scene = generate_scene(seed, (32, 48), textures, kernel_scale=0.5)
        background = scene["params"]["background"]
        if background["slant"] is None:
            continue
        coc = scene["coc"][0]
        edges = {"top": (coc[0], coc[-1]), "left": (coc[:, 0], coc[:, -1]), "right": (coc[:, -1], coc[:, 0])}
        far, near = edges[background["slant"]["far_edge"]]
        # Blur decreases from the far edge to the near edge, within the plane's range of CoCs.
        assert float(far.median()) < float(near.median())
        assert float(far.median()) >= background["coc"] - 1e-3
        checked += 1
        if checked == 2:
            break
    assert checked == 2


def test_companions_can_stand_in_the_focus_plane(scenes):
    others_out_of_focus = 0
    for seed, default in scenes.items():
        zero = generate_scene(seed, SIZE, kernel_scale=0.3, companion_focus_probability=0.0)
        assert torch.equal(zero["bokeh"], default["bokeh"])  # 0 draws nothing extra: the same scenes
        others_out_of_focus += sum(item["coc"] != 0 for item in default["params"]["objects"])
        companions = generate_scene(seed, SIZE, kernel_scale=0.3, companion_focus_probability=1.0)
        assert companions["params"]["companion_focus_probability"] == 1.0
        assert all(item["coc"] == 0 for item in companions["params"]["objects"])
        # Every object is sharp, so the in-focus share can only grow.
        assert float(companions["focus_mask"].mean()) >= float(default["focus_mask"].mean()) - 1e-6
    assert others_out_of_focus > 0
    dataset = SyntheticBokehDataset(2, SIZE, seed=3, kernel_scale=0.3, companion_focus_probability=1.0)
    scene = generate_scene([3, 1], SIZE, kernel_scale=0.3, companion_focus_probability=1.0)
    assert torch.equal(dataset[1]["bokeh"], scene["bokeh"])


def test_subjects_can_stand_on_a_support(scenes):
    touching_edge = 0
    for seed, default in scenes.items():
        zero = generate_scene(seed, SIZE, kernel_scale=0.3, subject_support_probability=0.0)
        assert torch.equal(zero["bokeh"], default["bokeh"])  # 0 draws nothing extra: the same scenes
        assert all(item["shape"] != "support" for item in default["params"]["objects"])
        scene = generate_scene(seed, SIZE, kernel_scale=0.3, subject_support_probability=1.0)
        objects = scene["params"]["objects"]
        assert scene["params"]["subject_support_probability"] == 1.0
        supports = [index for index, item in enumerate(objects) if item["shape"] == "support"]
        assert len(supports) == 1
        support = objects[supports[0]]
        assert objects[supports[0] + 1]["subject"]  # drawn just behind the subject it carries
        assert support["coc"] == 0.0  # in the focus plane
        top, left, height, width = support["box"]
        assert top < 0 or top + height > SIZE[0]  # it runs past the frame's top or bottom edge
        # Unless something nearer hides it, the in-focus mask reaches that edge within its columns.
        edge_row = 0 if top < 0 else SIZE[0] - 1
        columns = slice(max(left, 0), max(left + width, 0))
        touching_edge += bool((scene["focus_mask"][0, edge_row, columns] > 0.5).any())
    assert touching_edge >= len(scenes) - 2
    dataset = SyntheticBokehDataset(2, SIZE, seed=3, kernel_scale=0.3, subject_support_probability=1.0)
    scene = generate_scene([3, 1], SIZE, kernel_scale=0.3, subject_support_probability=1.0)
    assert torch.equal(dataset[1]["bokeh"], scene["bokeh"])


def test_dataset_items_are_the_generated_scenes():
    dataset = SyntheticBokehDataset(3, (32, 48), seed=5, kernel_scale=0.2)
    assert len(dataset) == 3
    item = dataset[2]
    assert item["name"] == "000002"
    assert set(item) == {"image", "bokeh", "defocus", "coc", "disparity", "focus_mask", "norm_disparity",
                         "norm_focus_disparity", "coc_scale", "name"}
    scene = generate_scene([5, 2], (32, 48), kernel_scale=0.2)
    for key in ("image", "bokeh", *MAP_KEYS):
        assert torch.equal(item[key], scene[key])
    # The normalised disparity: near = 1, far = 0, and the CoC linear in it through the focus plane.
    assert float(item["norm_disparity"].min()) == 0 and float(item["norm_disparity"].max()) == 1
    focus = item["norm_disparity"][item["coc"].abs() < 1e-4]
    torch.testing.assert_close(focus, item["norm_focus_disparity"].expand_as(focus))
    expected = item["coc_scale"] * (item["norm_disparity"] - item["norm_focus_disparity"])
    torch.testing.assert_close(item["coc"], expected, atol=1e-3, rtol=1e-4)
    assert torch.equal(dataset[-1]["image"], item["image"])
    with pytest.raises(IndexError):
        dataset[3]
    batch = torch.utils.data.default_collate([dataset[0], dataset[1]])
    assert batch["image"].shape == (2, 3, 32, 48)


def test_write_and_read_back(scenes, tmp_path):
    scene = scenes[2]
    write_scene(scene, tmp_path, "000002")
    for folder in ("original", "bokeh", "defocus", "coc", "disparity", "focus_mask"):
        assert (tmp_path / folder / "000002.png").is_file()
    document = json.loads((tmp_path / "scene" / "000002.json").read_text())
    assert document["params"] == json.loads(json.dumps(scene["params"]))
    back = read_scene(tmp_path, "000002")
    for key in ("image", "bokeh"):
        torch.testing.assert_close(back[key], scene[key], atol=0.5 / 255 + 1e-6, rtol=0)
    for key in MAP_KEYS:
        step = document["encoding"][key]["scale"]
        torch.testing.assert_close(back[key], scene[key], atol=step, rtol=0)
    with Image.open(tmp_path / "coc" / "000002.png") as image:
        assert image.mode.startswith("I")  # 16-bit


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"size": (8, 8)}, "size"),
        ({"size": (64,)}, "size"),
        ({"seed": -1}, "seed"),
        ({"kernel_scale": -1.0}, "kernel_scale"),
        ({"companion_focus_probability": 1.5}, "companion_focus_probability"),
        ({"companion_focus_probability": "half"}, "companion_focus_probability"),
        ({"subject_support_probability": -0.1}, "subject_support_probability"),
    ],
)
def test_bad_arguments(arguments, message):
    values = {"seed": 0, "size": (32, 32)} | arguments
    with pytest.raises(InputError, match=message):
        generate_scene(values.pop("seed"), values.pop("size"), **values)


def test_cuda_matches_cpu():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    cpu = generate_scene(4, SIZE, kernel_scale=0.5)
    cuda = generate_scene(4, SIZE, kernel_scale=0.5, device="cuda")
    for key in ("image", "bokeh", *MAP_KEYS):
        assert cuda[key].device.type == "cuda"
        torch.testing.assert_close(cuda[key].cpu(), cpu[key], atol=1e-4, rtol=0)
