"""The project's own format: save_pretrained / load_pretrained (d2f.load)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

import d2f
from d2f.errors import CheckpointError
from d2f.models import D2F, D2FConfig, load_pretrained


@pytest.fixture(scope="module")
def saved(parity_model, tmp_path_factory):
    return parity_model.save_pretrained(tmp_path_factory.mktemp("saved") / "d2f-parity")


def test_writes_weights_and_config_only(saved):
    assert sorted(path.name for path in saved.iterdir()) == ["config.json", "model.safetensors"]
    config = json.loads((saved / "config.json").read_text())
    assert config["architecture"] == "D2F"
    assert config["encoder"] == "resnext50_32x4d"
    assert config["kernel_sizes"] == [3, 5, 7, 11, 15, 19, 23, 27, 33, 39, 45, 53, 61, 69]


@pytest.mark.parametrize("target", ["directory", "weights_file"])
def test_round_trip_gives_identical_outputs(parity_model, saved, target):
    path = saved if target == "directory" else saved / "model.safetensors"
    loaded = d2f.load(path)
    assert not loaded.training
    assert loaded.config == parity_model.config
    for key, value in parity_model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    image = torch.rand(1, 3, 70, 90)
    with torch.no_grad():
        expected, actual = parity_model(image), loaded(image)
    for field in ("bokeh", "defocus", "bokeh_small", "fusion_mask"):
        assert torch.equal(getattr(actual, field), getattr(expected, field)), field


def test_round_trip_keeps_a_custom_architecture(tmp_path):
    config = D2FConfig(encoder="resnet18", decoder_features=32, fusion_features=(8,), kernel_sizes=(3, 7))
    torch.manual_seed(0)
    model = D2F(config).eval()
    loaded = load_pretrained(model.save_pretrained(tmp_path / "small"))
    assert loaded.config == config
    assert len(loaded.fusion_net.convs) == 2
    image = torch.rand(1, 3, 40, 40)
    with torch.no_grad():
        assert torch.equal(loaded(image).bokeh, model(image).bokeh)


def test_saving_over_a_model_replaces_it_and_leaves_no_temporary_files(parity_model, tmp_path):
    small = D2F(D2FConfig(encoder="resnet18", decoder_features=16))
    small.save_pretrained(tmp_path)
    parity_model.save_pretrained(tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["config.json", "model.safetensors"]
    assert load_pretrained(tmp_path).config == parity_model.config


def test_saving_onto_a_file_is_an_error(parity_model, tmp_path):
    target = tmp_path / "taken"
    target.write_text("not a directory")
    with pytest.raises(CheckpointError, match="exists and is not a directory"):
        parity_model.save_pretrained(target)
    assert target.read_text() == "not a directory"


def test_missing_path_or_file(saved, tmp_path):
    with pytest.raises(CheckpointError, match="no such file or directory"):
        load_pretrained(tmp_path / "nothing")
    (tmp_path / "model.safetensors").write_bytes((saved / "model.safetensors").read_bytes())
    with pytest.raises(CheckpointError, match=r"config\.json: missing"):
        load_pretrained(tmp_path)


@pytest.mark.parametrize(
    ("config_text", "problem"),
    [
        ("{not json", "not a readable JSON file"),
        ('{"architecture": "D2F", "depth": 3}', "unknown config fields: depth"),
        ('{"architecture": "D2F", "encoder": "vit_b_16"}', "encoder"),
    ],
)
def test_bad_config_is_a_checkpoint_error(saved, tmp_path, config_text, problem):
    (tmp_path / "model.safetensors").write_bytes((saved / "model.safetensors").read_bytes())
    (tmp_path / "config.json").write_text(config_text)
    with pytest.raises(CheckpointError, match=problem) as caught:
        load_pretrained(tmp_path)
    assert str(caught.value).startswith(str(tmp_path / "config.json"))


def test_weights_that_do_not_fit_the_config(saved, tmp_path):
    tensors = load_file(saved / "model.safetensors")
    del tensors["fusion_net.convs.3.bias"]
    tensors["fusion_net.convs.0.weight"] = torch.zeros(64, 2, 5, 5)
    save_file(tensors, tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text((saved / "config.json").read_text())
    with pytest.raises(CheckpointError) as caught:
        load_pretrained(tmp_path)
    message = str(caught.value)
    assert "missing keys (1): fusion_net.convs.3.bias" in message
    assert "fusion_net.convs.0.weight is (64, 2, 5, 5), expected (64, 2, 3, 3)" in message


def test_corrupt_weights_file(saved, tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"\x00garbage")
    (tmp_path / "config.json").write_text((saved / "config.json").read_text())
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_pretrained(tmp_path)
