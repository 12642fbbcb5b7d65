import pytest
import torch
import torchvision
from safetensors.torch import load_file
from tiny_run import tiny_config

from d2f.errors import CheckpointError, ConfigError
from d2f.models import D2F
from d2f.train import loop
from d2f.train.model import build_model, check_init_architecture, load_encoder_weights
from d2f.train.stages import Stage1, Stage2, scene_blur_scale, stage_loss


def weights(folder):
    return load_file(folder / "model.safetensors")


def changed(before, after, prefix):
    keys = [key for key in before if key.startswith(prefix)]
    assert keys
    return [key for key in keys if not torch.equal(before[key], after[key])]


def test_stage1_trains_the_defocus_and_radiance_networks_then_stage2_only_the_fusion(tmp_path):
    config = tiny_config("run.steps=2", "run.ema_decay=null", "run.sample_count=2")
    torch.manual_seed(0)
    D2F(config.model.architecture).save_pretrained(tmp_path / "initial")
    stage1 = loop.train(
        tiny_config("run.steps=2", "run.ema_decay=null", f"model.init={tmp_path / 'initial'}"),
        tmp_path / "stage1",
        progress=False,
    )
    initial, after1 = weights(tmp_path / "initial"), weights(stage1)
    assert changed(initial, after1, "defocus_net.") and changed(initial, after1, "radiance_net.")
    assert not changed(initial, after1, "fusion_net.")

    stage2 = loop.train(
        tiny_config("stage=2", "run.steps=2", "run.ema_decay=null", f"model.init={stage1}"),
        tmp_path / "stage2",
        progress=False,
    )
    after2 = weights(stage2)
    assert changed(after1, after2, "fusion_net.")
    assert not changed(after1, after2, "defocus_net.") and not changed(after1, after2, "radiance_net.")
    assert (tmp_path / "stage2" / "samples" / "step_000002.png").is_file()


def test_stage_outputs_and_losses():
    torch.manual_seed(0)
    config = tiny_config()
    model = D2F(config.model.architecture)
    image, target = torch.rand(2, 3, 128, 128), torch.rand(2, 3, 128, 128)
    first = Stage1(model)(image, target)
    assert first.prediction.shape == (2, 3, 64, 64) and first.target.shape == (2, 3, 64, 64)
    loss, parts = stage_loss(config.loss, first, torch.rand(2, 1, 128, 128))
    assert set(parts) == {"l1", "ssim", "defocus_range", "defocus"} and loss.requires_grad
    second = Stage2(model).train()(image, target)
    assert second.prediction.shape == (2, 3, 128, 128) and second.raw_mask.shape == (2, 1, 128, 128)
    assert set(torch.unique(second.initial_mask).tolist()) <= {0.0, 1.0}
    assert not model.defocus_net.training and model.fusion_net.training
    _, parts = stage_loss(config.loss, second)
    assert set(parts) == {"l1", "gradient", "mask"}


def test_in_focus_terms_join_the_losses_where_the_data_marks_focus():
    torch.manual_seed(0)
    config = tiny_config("loss.focus=2", "loss.focus_defocus=3")
    model = D2F(config.model.architecture)
    image, target = torch.rand(2, 3, 128, 128), torch.rand(2, 3, 128, 128)
    defocus = torch.rand(2, 1, 128, 128)
    focus_mask = torch.zeros(2, 1, 128, 128)
    focus_mask[..., 32:96, 32:96] = 1
    first = Stage1(model)(image, target)
    without_mask, plain = stage_loss(config.loss, first, defocus)
    loss, parts = stage_loss(config.loss, first, defocus, focus_mask)
    assert set(parts) == set(plain) | {"focus", "focus_defocus"}
    assert float(loss) == pytest.approx(float(without_mask) + 2 * parts["focus"] + 3 * parts["focus_defocus"])
    inside = (slice(None), slice(None), slice(16, 48), slice(16, 48))  # the mask at stage-1 size
    inside_error = (first.prediction - first.target)[inside].abs().mean()
    assert parts["focus"] == pytest.approx(float(inside_error), rel=1e-5)
    second = Stage2(model).train()(image, target)
    _, parts = stage_loss(config.loss, second, None, focus_mask)
    assert set(parts) == {"l1", "gradient", "mask", "focus"}
    _, parts = stage_loss(tiny_config().loss, first, defocus, focus_mask)
    assert "focus" not in parts and "focus_defocus" not in parts  # the weights default to 0


def test_encoder_weights_from_a_torchvision_file(tmp_path):
    torch.manual_seed(1)
    resnet = torchvision.models.resnet18(weights=None)
    torch.save(resnet.state_dict(), tmp_path / "resnet18.pth")
    model = D2F(tiny_config("model.architecture.encoder=resnet18").model.architecture)
    load_encoder_weights(model, tmp_path / "resnet18.pth")
    assert torch.equal(model.defocus_net.encoder.stem[0].weight, resnet.conv1.weight)
    assert torch.equal(model.defocus_net.encoder.layer4[1].bn2.running_var, resnet.layer4[1].bn2.running_var)
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), tmp_path / "resnet34.pth")
    with pytest.raises(
        CheckpointError, match=r"resnet34\.pth: does not fit the resnet18 encoder \(unexpected: "
    ):
        load_encoder_weights(model, tmp_path / "resnet34.pth")
    (tmp_path / "junk.pth").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="not a readable PyTorch weights file"):
        load_encoder_weights(model, tmp_path / "junk.pth")
    lite = D2F(tiny_config().model.architecture)  # d2f-lite's encoder takes its own ImageNet file
    with pytest.raises(CheckpointError, match="does not match EfficientNet-Lite0"):
        load_encoder_weights(lite, tmp_path / "resnet18.pth")


def test_init_must_match_the_declared_architecture(tmp_path):
    D2F(tiny_config().model.architecture).save_pretrained(tmp_path / "model")
    check_init_architecture(tiny_config(f"model.init={tmp_path / 'model'}").model)
    config = tiny_config(f"model.init={tmp_path / 'model'}", "model.architecture.decoder_features=48")
    with pytest.raises(
        ConfigError, match=r"config key model\.architecture\.decoder_features: 48 differs from 32"
    ):
        loop.train(config, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()
    (tmp_path / "not_a_model").mkdir()
    with pytest.raises(ConfigError, match="not a folder written by save_pretrained"):
        check_init_architecture(tiny_config(f"model.init={tmp_path / 'not_a_model'}").model)


def test_bf16_needs_cuda(tmp_path):
    with pytest.raises(ConfigError, match=r"config key run\.precision: bf16 autocast needs CUDA"):
        loop.train(tiny_config("run.precision=bf16", "run.device=cpu"), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_trained_models_render_with_the_defocus_clamp():
    # Training renders the clamped map, so the model it builds (and exports) must render that way too.
    config = tiny_config()
    assert config.model.architecture.clamp_defocus is False
    assert build_model(config.model).config.clamp_defocus is True


def test_fusion_from_focus_mask_starts_stage_2_at_the_focus_threshold():
    torch.manual_seed(0)
    plain = build_model(tiny_config().model)
    torch.manual_seed(0)
    started = build_model(tiny_config("model.fusion_from_focus_mask=true").model)
    defocus = torch.linspace(0, 1, 64).view(1, 1, 8, 8)
    image = torch.rand(1, 3, 8, 8)
    threshold = started.config.focus_threshold
    with torch.no_grad():
        mask = started.fusion_net(defocus, image).clamp(0, 1)
        plain_mask = plain.fusion_net(defocus, image).clamp(0, 1)
    sharp, blurred = defocus < threshold - 0.0625, defocus > threshold + 0.0625
    assert (mask[sharp] == 1).all() and (mask[blurred] == 0).all()
    assert not torch.equal(mask, plain_mask)
    # Only the fusion network changes.
    for name, tensor in started.state_dict().items():
        if not name.startswith("fusion_net."):
            torch.testing.assert_close(tensor, plain.state_dict()[name], msg=name)


def test_training_batches_carry_the_focus_mask_to_the_loss(tmp_path):
    def first_validation_loss(name, *overrides):
        run = loop.train(
            tiny_config("run.steps=1", "run.ema_decay=null", *overrides), tmp_path / name, progress=False
        )
        header, first = (run.parent / "metrics.csv").read_text().splitlines()[:2]
        return float(dict(zip(header.split(","), first.split(","), strict=True))["val_loss"])

    plain = first_validation_loss("plain")
    with_focus = first_validation_loss("focus", "loss.focus=1", "loss.focus_defocus=1")
    assert with_focus > plain  # the same model and scenes: only the in-focus terms differ


def test_relative_models_render_each_scene_at_its_own_blur_scale():
    torch.manual_seed(0)
    config = tiny_config("model.architecture.blur_scale=0.4")
    model = build_model(config.model)
    assert model.config.blur_scale == 0.4
    defocus = torch.rand(2, 1, 128, 128) * torch.tensor([0.3, 0.8]).view(2, 1, 1, 1)
    batch = {"image": torch.rand(2, 3, 128, 128), "defocus": defocus}
    scale = scene_blur_scale(model, batch)
    torch.testing.assert_close(scale, defocus.amax(dim=(1, 2, 3)))
    output = Stage1(model)(batch["image"], torch.rand(2, 3, 128, 128), scale)
    small = torch.nn.functional.interpolate(batch["image"], size=(64, 64), mode="bilinear")
    raw = model.predict_defocus(small)
    torch.testing.assert_close(output.defocus, raw * scale.view(2, 1, 1, 1))
    # No defocus maps (EBB! pairs) or a model that predicts defocus itself: no per-scene scale.
    assert scene_blur_scale(model, {"image": batch["image"]}) is None
    assert scene_blur_scale(build_model(tiny_config().model), batch) is None


def test_a_relative_model_can_start_from_one_that_predicts_defocus_itself(tmp_path):
    torch.manual_seed(0)
    D2F(tiny_config().model.architecture).save_pretrained(tmp_path / "absolute")
    overrides = ("run.steps=2", "run.ema_decay=null", "model.architecture.blur_scale=0.4")
    result = loop.train(
        tiny_config(*overrides, f"model.init={tmp_path / 'absolute'}"), tmp_path / "run", progress=False
    )
    from d2f.models import load_pretrained

    trained = load_pretrained(result)
    assert trained.config.blur_scale == 0.4
    assert changed(weights(tmp_path / "absolute"), weights(result), "defocus_net.")
