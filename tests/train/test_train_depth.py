import csv
import dataclasses
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from tiny_run import tiny_depth_config, write_tiny_cache

from d2f.errors import ConfigError, InputError
from d2f.models import D2F, load_pretrained
from d2f.train import loop
from d2f.train.config import LossConfig
from d2f.train.depth import (
    DepthStage,
    align_scale_shift,
    depth_metrics,
    depth_stage_loss,
    focus_map_loss,
    gradient_matching_loss,
    spearman,
    ssi_disparity_loss,
    standardise_disparity,
)
from d2f.train.model import build_model, depth_model_from


def disparity_maps(generator, count=2, size=(24, 32)):
    return torch.rand(count, 1, *size, generator=generator, dtype=torch.float64) + 0.1


def test_alignment_and_invariant_losses_ignore_scale_and_shift():
    generator = torch.Generator().manual_seed(0)
    target = disparity_maps(generator)
    prediction = 3.0 * target - 0.7
    assert torch.allclose(align_scale_shift(prediction, target), target)
    assert float(ssi_disparity_loss(prediction, target)) < 1e-9
    assert float(gradient_matching_loss(prediction, target)) < 1e-9
    noisy = prediction + 0.3 * torch.rand(target.shape, generator=generator, dtype=torch.float64)
    assert float(ssi_disparity_loss(noisy, target)) > 0.01
    assert float(gradient_matching_loss(noisy, target)) > 0.01
    flat = torch.zeros_like(target)  # no information: the mean of the target, no NaN
    mean = target.mean(dim=(1, 2, 3), keepdim=True).expand_as(target)
    assert torch.allclose(align_scale_shift(flat, target), mean)
    assert torch.isfinite(ssi_disparity_loss(flat, target))


def test_invariant_losses_tell_near_from_far():
    # A least-squares fit would align the inverted map with a negative scale and score it 0.
    generator = torch.Generator().manual_seed(1)
    target = disparity_maps(generator, size=(25, 31))  # an odd count: one median pixel
    inverted = 1.0 - 2.0 * target
    assert torch.allclose(standardise_disparity(inverted), -standardise_disparity(target))
    assert float(ssi_disparity_loss(inverted, target)) > 1.0
    assert float(gradient_matching_loss(inverted, target)) > 0.1


def test_focus_loss_prefers_logits_on_the_mask_and_skips_empty_masks():
    mask = torch.zeros(2, 1, 16, 16)
    mask[0, :, 4:8, 4:8] = 1
    on_mask = mask * 8
    elsewhere = torch.roll(on_mask, shifts=8, dims=-1)
    assert float(focus_map_loss(on_mask, mask)) < float(focus_map_loss(elsewhere, mask))
    # Image 1 has no focus target: its logits do not count.
    other = on_mask.clone()
    other[1] = torch.randn(1, 16, 16)
    assert float(focus_map_loss(other, mask)) == pytest.approx(float(focus_map_loss(on_mask, mask)))
    assert float(focus_map_loss(on_mask, torch.zeros_like(mask))) == 0.0
    with pytest.raises(InputError, match="focus_mask"):
        focus_map_loss(on_mask, mask[:1])


def test_depth_metrics_of_perfect_reversed_and_noisy_predictions():
    generator = torch.Generator().manual_seed(1)
    target = disparity_maps(generator)
    perfect = depth_metrics(2 * target + 1, target)
    assert torch.allclose(perfect["absrel"], torch.zeros(2, dtype=torch.float64), atol=1e-9)
    assert torch.equal(perfect["delta1"], torch.ones(2, dtype=torch.float64))
    assert torch.allclose(perfect["spearman"], torch.ones(2, dtype=torch.float64))
    assert torch.allclose(spearman(-target, target), -torch.ones(2, dtype=torch.float64))
    noise = 0.5 * torch.rand(target.shape, generator=generator, dtype=torch.float64)
    noisy = depth_metrics(target + noise, target)
    assert (noisy["absrel"] > 0.05).all() and (noisy["delta1"] < 1).all()
    assert (noisy["spearman"] > 0).all() and (noisy["spearman"] < 0.95).all()
    with pytest.raises(InputError, match="target"):
        depth_metrics(target, target[..., :-1])


def test_depth_stage_runs_the_network_at_inference_size_with_radiance_and_fusion_frozen():
    config = tiny_depth_config(".", "data.dataset=synthetic")  # no data folder needed for the model
    model = D2F(dataclasses.replace(config.model.architecture, working_long_side=256, defocus_long_side=64))
    stage = DepthStage(model).train()
    output = stage(torch.rand(2, 3, 96, 128))
    # Stage 1 at a long side of 256 (192x256), the network at a long side of 64 (64x64 in multiples of 32).
    assert output.disparity.shape == (2, 1, 64, 64) and output.focus_logits.shape == (2, 1, 64, 64)
    assert float(output.disparity.detach().min()) > 0 and float(output.disparity.detach().max()) < 1
    assert not any(parameter.requires_grad for parameter in model.radiance_net.parameters())
    assert not any(parameter.requires_grad for parameter in model.fusion_net.parameters())
    assert not model.fusion_net.training and model.defocus_net.training
    loss, parts = depth_stage_loss(
        LossConfig(), output, torch.rand(2, 1, 96, 128), torch.ones(2, 1, 96, 128)
    )
    assert set(parts) == {"disparity", "disparity_gradient", "disparity_anchor", "focus_map"}
    assert loss.requires_grad
    with pytest.raises(InputError, match="predicts depth"):
        DepthStage(D2F(dataclasses.replace(config.model.architecture, predicts="defocus")))


def test_a_depth_model_starts_from_a_defocus_model_but_for_the_heads_last_layer(tmp_path):
    config = tiny_depth_config(".", "data.dataset=synthetic")
    torch.manual_seed(0)
    defocus_model = D2F(dataclasses.replace(config.model.architecture, predicts="defocus"))
    defocus_model.save_pretrained(tmp_path / "defocus")
    depth_model = build_model(dataclasses.replace(config.model, init=str(tmp_path / "defocus")))
    assert depth_model.config.predicts_depth
    before, after = defocus_model.state_dict(), depth_model.state_dict()
    differing = [key for key in before if before[key].shape != after[key].shape]
    assert differing == ["defocus_net.head.conv3.weight", "defocus_net.head.conv3.bias"]
    assert all(torch.equal(before[key], after[key]) for key in before if key not in differing)
    assert depth_model_from(defocus_model, 768).config.working_long_side == 768


def test_depth_stage_trains_on_the_mix_stops_at_its_time_limit_and_exports(tmp_path):
    cache = write_tiny_cache(tmp_path / "cache")
    config = tiny_depth_config(cache, "run.ema_decay=null")
    torch.manual_seed(0)
    D2F(dataclasses.replace(config.model.architecture, predicts="defocus")).save_pretrained(tmp_path / "init")
    config = tiny_depth_config(cache, "run.ema_decay=null", f"model.init={tmp_path / 'init'}")
    exported = loop.train(config, tmp_path / "run", progress=False)
    initial = load_file(tmp_path / "init" / "model.safetensors")
    trained = load_file(exported / "model.safetensors")
    changed = [key for key in initial if initial[key].shape == trained[key].shape
               and not torch.equal(initial[key], trained[key])]
    assert any(key.startswith("defocus_net.encoder") for key in changed)
    assert not any(key.startswith(("radiance_net", "fusion_net")) for key in changed)
    model = load_pretrained(exported)
    assert model.config.predicts_depth and model(torch.rand(1, 3, 64, 96)).disparity is not None
    with (tmp_path / "run" / "metrics.csv").open() as file:
        rows = [row for row in csv.DictReader(file) if row["val_loss"]]
    assert [row["step"] for row in rows] == ["0", "2", "4", "6"]
    assert all(-1 <= float(row["val_spearman"]) <= 1 and 0 <= float(row["val_delta1"]) <= 1 for row in rows)
    assert (tmp_path / "run" / "samples" / "step_000006.png").is_file()

    # A time limit ends the run early, with a checkpoint and an exported model.
    limited = loop.train(
        tiny_depth_config(cache, "run.time_limit=0.001", "run.val_every=100"),
        tmp_path / "limited",
        progress=False,
    )
    assert (limited / "model.safetensors").is_file()
    with (tmp_path / "limited" / "metrics.csv").open() as file:
        assert [row["step"] for row in csv.DictReader(file) if row["val_loss"]] == ["0", "1"]


def test_depth_configs_are_checked(tmp_path):
    cache = write_tiny_cache(tmp_path / "cache")
    with pytest.raises(ConfigError, match="stage: depth"):
        tiny_depth_config(cache, "stage=1")
    with pytest.raises(ConfigError, match=r"model\.architecture\.predicts"):
        tiny_depth_config(cache, "model.architecture.predicts=defocus")
    with pytest.raises(ConfigError, match=r"data\.root"):
        tiny_depth_config(tmp_path / "missing")
    with pytest.raises(ConfigError, match=r"run\.time_limit"):
        tiny_depth_config(cache, "run.time_limit=0")


def test_the_lite2_recipe_trains_from_the_bundle(tmp_path):
    from d2f.models.presets import bundle_path, is_bundled
    from d2f.train.config import load_config

    if not is_bundled("d2f-lite"):
        pytest.skip("this installation has no d2f-lite bundle to start from")
    recipe = Path(__file__).resolve().parents[2] / "configs" / "lite2_depth.yaml"
    cache = write_tiny_cache(tmp_path / "cache")
    config = load_config(recipe, [
        f"model.init={bundle_path('d2f-lite')}", f"data.root={cache}", "data.size=[64,96]",
        "data.num_workers=0", "data.train_count=4", "run.steps=1", "run.batch_size=2", "run.device=cpu",
        "run.sample_count=0", "model.architecture.working_long_side=96",
    ])
    exported = loop.train(config, tmp_path / "run", progress=False)
    model = load_pretrained(exported)
    assert model.config.predicts_depth and model.config.encoder == "efficientnet_lite0"
