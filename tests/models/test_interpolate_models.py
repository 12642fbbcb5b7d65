"""scripts/interpolate_models.py: models on the line between two models of one architecture."""

import dataclasses
import runpy
from pathlib import Path

import pytest
import torch

from d2f.errors import InputError
from d2f.models import D2F, load_pretrained
from tiny_models import TINY_LITE

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "interpolate_models.py"


@pytest.fixture(scope="module")
def script():
    return runpy.run_path(str(SCRIPT))


def random_model(seed):
    torch.manual_seed(seed)
    model = D2F(TINY_LITE).eval()
    with torch.no_grad():  # every tensor differs between the two models, BatchNorm's too
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.uniform_(0.5, 1.5)
    return model


@pytest.fixture
def folders(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    random_model(0).save_pretrained(first)
    random_model(1).save_pretrained(second)
    return first, second


def states(*folders):
    return [load_pretrained(folder).state_dict() for folder in folders]


def test_weight_mixes_the_chosen_parts_and_keeps_the_rest(script, folders, tmp_path, capsys):
    first, second = folders
    output = tmp_path / "mix"
    parts = ["--parts", "defocus_net", "radiance_net"]
    assert script["main"]([str(first), str(second), str(output), "--weight", "0.25", *parts]) == 0
    assert "0.25 x" in capsys.readouterr().out
    first_state, second_state, mixed = states(first, second, output)
    mixed_keys = [key for key in mixed if not key.startswith("fusion_net.")]
    assert any(key.endswith("running_var") for key in mixed_keys)
    for key, value in mixed.items():
        if key.startswith("fusion_net.") or not value.is_floating_point():
            assert torch.equal(value, second_state[key]), key
        else:
            expected = 0.25 * first_state[key] + 0.75 * second_state[key]
            torch.testing.assert_close(value, expected, msg=key)
            assert not torch.equal(value, second_state[key]), key


@pytest.mark.parametrize("weight, source", [(0.0, 1), (1.0, 0)])
def test_ends_of_the_line_are_the_models(script, folders, weight, source):
    first, second = folders
    mixed = script["interpolate"](load_pretrained(first), load_pretrained(second), weight)
    expected = states(first, second)[source]
    for key, value in mixed.state_dict().items():
        if value.is_floating_point():
            torch.testing.assert_close(value, expected[key], rtol=0, atol=0, msg=key)


def test_errors_are_one_line_and_write_nothing(script, folders, tmp_path, capsys):
    first, second = folders
    output = tmp_path / "mix"
    assert script["main"]([str(first), str(second), str(output), "--weight", "1.5"]) == 2
    assert "weight: expected a number in [0, 1], got 1.5" in capsys.readouterr().err
    assert script["main"]([str(first), str(tmp_path / "missing"), str(output), "--weight", "0.5"]) == 2
    assert "missing: no such file or directory" in capsys.readouterr().err
    other = tmp_path / "other"
    D2F(dataclasses.replace(TINY_LITE, decoder_features=16)).save_pretrained(other)
    assert script["main"]([str(first), str(other), str(output), "--weight", "0.5"]) == 2
    assert "different architectures" in capsys.readouterr().err
    assert not output.exists()
    assert script["main"]([str(first), str(second), str(first), "--weight", "0.5"]) == 2
    assert "first: exists already" in capsys.readouterr().err
    with pytest.raises(InputError, match="parts: unknown encoder"):
        script["interpolate"](load_pretrained(first), load_pretrained(second), 0.5, ["encoder"])
