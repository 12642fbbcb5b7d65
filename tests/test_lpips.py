import socket

import pytest
import torch
from torchvision.models import alexnet

from d2f.errors import CheckpointError
from d2f.lpips import ALEXNET_FILE, LINEAR_FILE, LPIPS, find_lpips_weights, load_lpips

CHANNELS = (64, 192, 384, 256, 256)


def save_alexnet_features(path):
    """torchvision's AlexNet checkpoint format; the classifier (unused by LPIPS, 58M weights) is left out."""
    features = alexnet(weights=None).features.state_dict()
    torch.save({f"features.{key}": value for key, value in features.items()}, path)


@pytest.fixture
def weights_folder(tmp_path):
    """Random weights in the two files' real formats: torchvision's AlexNet and the lpips package's."""
    torch.manual_seed(0)
    torch.save(alexnet(weights=None).state_dict(), tmp_path / ALEXNET_FILE)
    linear = {
        f"lin{index}.model.1.weight": torch.rand(1, channels, 1, 1) for index, channels in enumerate(CHANNELS)
    }
    torch.save(linear, tmp_path / LINEAR_FILE)
    return tmp_path


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("LPIPS tried to open a network connection")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)


def reference_distance(model, first, second):
    """LPIPS written out from its definition (v0.1): scaled inputs, unit-normalised ReLU taps."""
    shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)
    features = alexnet(weights=None).features
    features.load_state_dict(model.features.state_dict(), strict=False)
    total = 0.0
    x, y = ((2 * image - 1 - shift) / scale for image in (first, second))
    for index, layer in enumerate(features[:12]):
        x, y = layer(x), layer(y)
        if index in (1, 4, 7, 9, 11):
            tap = (1, 4, 7, 9, 11).index(index)
            nx = x / (x.norm(dim=1, keepdim=True) + 1e-10)
            ny = y / (y.norm(dim=1, keepdim=True) + 1e-10)
            weight = model.linear[tap].weight.view(1, -1, 1, 1)
            total = total + ((nx - ny) ** 2 * weight).sum(dim=1).mean(dim=(1, 2))
    return total


def test_loads_local_files_and_matches_the_definition(weights_folder, no_network):
    model, notice = load_lpips(weights_folder)
    assert model is not None and str(weights_folder) in notice
    generator = torch.Generator().manual_seed(1)
    first = torch.rand(2, 3, 64, 80, generator=generator)
    second = (first + 0.2 * torch.randn(first.shape, generator=generator)).clamp(0, 1)
    distance = model(first, second)
    assert distance.shape == (2,)
    torch.testing.assert_close(distance, reference_distance(model, first, second), rtol=1e-4, atol=1e-6)
    assert torch.all(model(first, first) == 0)
    assert torch.all(model(first, second) > 0)


def test_missing_weights_give_a_reason_and_no_download(tmp_path, monkeypatch, no_network):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    model, notice = load_lpips()
    assert model is None and ALEXNET_FILE in notice and str(tmp_path / "hub") in notice
    (tmp_path / "only_alexnet").mkdir()
    save_alexnet_features(tmp_path / "only_alexnet" / ALEXNET_FILE)
    found = find_lpips_weights(tmp_path / "only_alexnet")
    assert isinstance(found, str) and LINEAR_FILE in found


def test_wrong_files_are_checkpoint_errors(weights_folder, tmp_path):
    (tmp_path / LINEAR_FILE).write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=LINEAR_FILE):
        LPIPS().load_weights(weights_folder / ALEXNET_FILE, tmp_path / LINEAR_FILE)
    torch.save({"lin0.model.1.weight": torch.rand(1, 64, 1, 1)}, tmp_path / LINEAR_FILE)
    with pytest.raises(CheckpointError, match="not LPIPS AlexNet weights"):
        LPIPS().load_weights(weights_folder / ALEXNET_FILE, tmp_path / LINEAR_FILE)
