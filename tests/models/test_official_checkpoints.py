"""Official checkpoints: key mapping, strict loading, safe loading, and parity with the reference."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch
from reference_weights import PARITY_DATA

from d2f.errors import CheckpointError
from d2f.models import D2F, checkpoint_filter_fn, load_official
from d2f.render import saturation_weight

PARITY_CASES = sorted(path.stem for path in PARITY_DATA.glob("*.npz"))
TOLERANCE = 1e-3


def test_parity_cases_are_present():
    assert len(PARITY_CASES) >= 2


def test_every_official_key_maps_to_the_model(manifest):
    expected = {key: tuple(value.shape) for key, value in D2F().state_dict().items()}
    official = {**manifest["stage1"], **manifest["stage2"]}
    mapped = checkpoint_filter_fn({key: torch.empty(spec["shape"]) for key, spec in official.items()})
    assert len(mapped) == len(official)  # no two keys map to the same name
    assert set(mapped) == set(expected)
    assert {key: tuple(value.shape) for key, value in mapped.items()} == expected


def test_filter_leaves_unknown_keys_alone():
    weight = torch.zeros(1)
    assert checkpoint_filter_fn({"fusion_net.convs.0.bias": weight, "other": weight}) == {
        "fusion_net.convs.0.bias": weight,
        "other": weight,
    }


def test_loads_strictly_into_eval_mode(parity_model, reference_state_dicts):
    assert not parity_model.training
    loaded = parity_model.state_dict()
    for stage in ("stage1", "stage2"):
        for key, value in checkpoint_filter_fn(reference_state_dicts[stage]).items():
            assert torch.equal(loaded[key], value), key


@pytest.fixture(scope="module", params=["bare", "net_optimizer"])
def model_from_layout(request, reference_state_dicts, official_files, tmp_path_factory) -> D2F:
    """The parity model loaded from either official layout: a bare state dict or {"net", "optimizer"}."""
    if request.param == "bare":
        return load_official(*official_files)
    paths = []
    for stage in ("stage1", "stage2"):
        checkpoint = {
            "net": reference_state_dicts[stage],
            "optimizer": {"state": {}, "param_groups": [{"lr": 1e-4}]},
        }
        paths.append(tmp_path_factory.mktemp("net_optimizer") / f"{stage}.pth")
        torch.save(checkpoint, paths[-1])
    return load_official(*paths)


@pytest.mark.parametrize("case", PARITY_CASES)
def test_parity_with_reference(case, model_from_layout):
    model = model_from_layout
    expected = np.load(PARITY_DATA / f"{case}.npz")
    with torch.no_grad():
        output = model(torch.from_numpy(expected["image"])[None])
    for field, key in [
        ("bokeh", "output"),
        ("fusion_mask", "fusion_mask"),
        ("defocus", "defocus"),
        ("bokeh_small", "bokeh_small"),
    ]:
        actual = getattr(output, field)[0].numpy()
        assert actual.shape == expected[key].shape, field
        assert np.abs(actual - expected[key]).max() <= TOLERANCE, field


@pytest.mark.parametrize("case", PARITY_CASES)
def test_radiance_weight_matches_reference(case, parity_model):
    expected = np.load(PARITY_DATA / f"{case}.npz")
    image_small = torch.from_numpy(expected["image_small"])[None]
    with torch.no_grad():
        weight = saturation_weight(image_small, parity_model.radiance_net(image_small))
    assert np.abs(weight[0].numpy() - expected["radiance_weight"]).max() <= TOLERANCE


def test_wrong_keys_and_shapes_are_listed(reference_state_dicts, official_files, tmp_path):
    state_dict = dict(reference_state_dicts["stage1"])
    del state_dict["midas.scratch.layer1_rn.weight"]
    state_dict["midas.scratch.extra.weight"] = torch.zeros(3)
    state_dict["radiance.conv1.weight"] = torch.zeros(8, 3, 1, 1)
    path = tmp_path / "broken.pth"
    torch.save(state_dict, path)
    with pytest.raises(CheckpointError) as caught:
        load_official(path, official_files[1])
    message = str(caught.value)
    assert "\n" not in message
    assert str(path) in message
    assert "missing keys (1): midas.scratch.layer1_rn.weight" in message
    assert "unexpected keys (1): midas.scratch.extra.weight" in message
    assert "radiance.conv1.weight is (8, 3, 1, 1), expected (16, 3, 1, 1)" in message


def test_swapped_files_are_rejected(official_files):
    with pytest.raises(CheckpointError, match=r"stage 1\).*missing keys \(366\).* and 358 more"):
        load_official(official_files[1], official_files[0])


class _RunsCode:
    """Unpickling this calls ``os.system``: what a malicious checkpoint does."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("writer", ["torch_save", "plain_pickle"])
def test_code_in_a_pickle_is_refused_without_running(writer, official_files, tmp_path):
    marker = tmp_path / "code_ran"
    payload = {"net": {"radiance.conv1.weight": _RunsCode(marker)}, "optimizer": None}
    path = tmp_path / "malicious.pth"
    if writer == "torch_save":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload))
    with pytest.raises(CheckpointError) as caught:
        load_official(path, official_files[1])
    assert not marker.exists()
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert "\n" not in message
    if writer == "torch_save":
        assert "refused to load" in message and "system" in message


@pytest.mark.parametrize(
    ("contents", "problem"),
    [
        (None, "no such file"),
        ("directory", "is a directory"),
        (b"", "not a PyTorch checkpoint"),
        (b"this is a text file, not weights\n", "not a PyTorch checkpoint"),
        ("truncated", "not a PyTorch checkpoint"),
        ("list", "expected a state dict, found a list"),
        ("not_tensors", "expected a state dict of tensors"),
    ],
)
def test_unreadable_checkpoints_give_one_line_errors(contents, problem, official_files, tmp_path):
    path = tmp_path / "stage1.pth"
    if contents == "directory":
        path.mkdir()
    elif contents == "truncated":
        data = official_files[1].read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif contents == "list":
        torch.save([torch.zeros(1)], path)
    elif contents == "not_tensors":
        torch.save({"radiance.conv1.weight": 1.5}, path)
    elif contents is not None:
        path.write_bytes(contents)
    with pytest.raises(CheckpointError) as caught:
        load_official(path, official_files[1])
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert problem in message
    assert "\n" not in message
    assert caught.value.exit_code == 2
