"""Training configuration: typed dataclasses, read from YAML, with ``key.sub=value`` overrides.

Every key is checked before any work starts: an unknown key, a value of the wrong type or out of range,
or a missing data folder raises :class:`~d2f.errors.ConfigError` with a message naming the key (and the
path). See ``configs/*.yaml`` for complete examples.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from d2f.errors import ConfigError, DataError
from d2f.models.config import D2FConfig


@dataclass(frozen=True)
class ModelConfig:
    """What to train.

    Attributes:
        architecture: the :class:`~d2f.models.D2FConfig` of the model.
        init: a folder written by ``save_pretrained`` (e.g. a stage-1 run's ``model/``) to start from;
            stage 2 needs one, since it trains on top of a frozen stage 1.
        encoder_weights: a local file with torchvision weights for the encoder (e.g. ImageNet
            ``resnext50_32x4d``), loaded before training stage 1; never downloaded.
        freeze_batchnorm: keep the encoder's batch-norm statistics fixed (advisable for small batches
            on top of pretrained weights).
        fusion_from_focus_mask: stage 2 starts the fusion network as a soft version of the initial
            binary focus mask (:meth:`~d2f.models.FusionNet.init_focus_threshold` at the
            architecture's ``focus_threshold``) instead of the weights in ``init``; advisable when
            those were never trained (a stage-1 run leaves the fusion network at random weights).
    """

    architecture: D2FConfig = field(default_factory=D2FConfig)
    init: str | None = None
    encoder_weights: str | None = None
    freeze_batchnorm: bool = False
    fusion_from_focus_mask: bool = False


@dataclass(frozen=True)
class DataConfig:
    """Where the pairs come from. Images are full-resolution: stage 1 runs at half their size.

    Attributes:
        dataset: ``"synthetic"`` (scenes generated on the fly), ``"ebb"`` (an EBB! folder) or
            ``"depth"`` (the depth stage's mix: real RGB-D photos and synthetic scenes, see
            ``synthetic_share``; validation on the RGB-D held-out part).
        root: the EBB! folder (``Training/`` inside it, or ``original/`` and ``bokeh/``); for
            ``"depth"``, an RGB-D cache written by ``scripts/cache_rgbd.py`` (or ``../shared/rgbd``
            itself, read by :class:`d2f.data.RGBDBokehDataset`).
        train_split, val_split: EBB! splits (``"train"``: pairs 0-4399, ``"val294"``: 4400-4693;
            None: the whole folder).
        size: (H, W) of training images: the synthetic scene size, or the EBB! random crop size
            (None: whole images, which must then all have one size, see ``resize``).
        val_size: the same for validation images (EBB!: a crop fixed by the seed); None: ``size``.
        resize: EBB! only: resize every pair to (H, W) before cropping, or ``"match"`` the bokeh to
            its photo's size (None: pairs of different sizes are an error).
        train_count, val_count: number of synthetic scenes (training ones are reused each epoch);
            ``val_count`` also caps the EBB! and RGB-D validation pairs (None: all of the split). For
            ``"depth"``, ``train_count`` is the length of an epoch of the mix.
        synthetic_share: ``"depth"`` only: the share of synthetic scenes in the mix (the rest are
            RGB-D photos, each seen many times with new crops).
        seed: seed of the training data (synthetic scenes, EBB! crops and flips); the synthetic
            validation scenes use ``seed + 1``.
        kernel_scale: multiplies the synthetic blur range (1: background blur up to 70 px at half
            resolution, the range of D2F's kernels).
        companion_focus_probability: chance that each other object of a synthetic scene stands in
            the focus plane beside the subject (see :func:`d2f.data.synthetic.generate_scene`).
        subject_support_probability: chance that the subject of a synthetic scene stands on a pole,
            stand or stem reaching the frame edge in the focus plane (same function).
        perspective_probability: share of synthetic scenes that are perspective scenes (a camera over
            a textured ground, objects at graded depths: :func:`d2f.data.generate_perspective_scene`)
            instead of the classic layout.
        rgbd_root: a folder of real photos with measured depth (``../shared/rgbd``) whose training
            split (:class:`d2f.data.RGBDBokehDataset`, bokeh rendered from the depth, random crops of
            ``size``) is mixed into the synthetic training scenes.
        rgbd_probability: share of training items drawn from ``rgbd_root`` (each item of each epoch
            draws; a random photo of the split), the rest being the synthetic scenes.
        textures: a folder of photos for synthetic textures (None: procedural and scikit-image's).
        random_flip: flip EBB! training pairs horizontally at random.
        skip_bad: skip unreadable EBB! pairs with a warning instead of stopping.
        num_workers: data-loading processes per training process.
    """

    dataset: Literal["synthetic", "ebb", "depth"] = "synthetic"
    root: str | None = None
    train_split: Literal["train", "val294"] | None = "train"
    val_split: Literal["train", "val294"] | None = "val294"
    size: tuple[int, int] | None = (256, 384)
    val_size: tuple[int, int] | None = None
    resize: tuple[int, int] | Literal["match"] | None = None
    train_count: int = 1024
    val_count: int | None = 16
    seed: int = 0
    kernel_scale: float = 1.0
    companion_focus_probability: float = 0.0
    subject_support_probability: float = 0.0
    perspective_probability: float = 0.0
    rgbd_root: str | None = None
    rgbd_probability: float = 0.0
    synthetic_share: float = 0.5
    textures: str | None = None
    random_flip: bool = True
    skip_bad: bool = False
    num_workers: int = 2


@dataclass(frozen=True)
class OptimConfig:
    """AdamW with a linear warm-up then a cosine decay to ``lr * min_lr_ratio``; gradient clipping."""

    lr: float = 1e-4
    weight_decay: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1
    grad_clip: float | None = 1.0


@dataclass(frozen=True)
class LossConfig:
    """Loss weights. Stage 1: ``l1`` + ``ssim`` * (1 - SSIM) on the half-resolution bokeh, plus
    ``defocus_range`` * the defocus map's distance outside [0, 1], plus ``defocus`` * L1 on the
    defocus map when the data has one. Stage 2: ``l1`` + ``gradient`` * the
    gradient-domain loss on the output, plus ``mask`` * L1 of the fusion mask to the initial binary mask.
    Where the data has an in-focus mask (synthetic scenes): ``focus`` * L1 of the image (either stage)
    and ``focus_defocus`` * L1 of the defocus map (stage 1), both over the in-focus pixels alone.
    The depth stage (see :mod:`d2f.train.depth`): ``disparity`` * the scale-and-shift-invariant L1,
    ``disparity_gradient`` * multi-scale gradient matching, ``disparity_anchor`` * L1 to the
    normalised disparity, ``focus_map`` * the focus map's cross-entropy.
    """

    l1: float = 1.0
    ssim: float = 1.0
    defocus_range: float = 1.0
    defocus: float = 0.0
    gradient: float = 1.0
    mask: float = 0.1
    focus: float = 0.0
    focus_defocus: float = 0.0
    disparity: float = 1.0
    disparity_gradient: float = 0.5
    disparity_anchor: float = 0.2
    focus_map: float = 0.05


@dataclass(frozen=True)
class RunConfig:
    """How long, how big, where, and how often to validate and save.

    Attributes:
        steps: optimiser steps in total.
        batch_size: images per step and per process (under torchrun, each process takes this many).
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
        precision: ``"auto"`` (bf16 autocast on CUDA, fp32 on CPU), ``"fp32"`` or ``"bf16"``; the
            renderer always computes in float32.
        ema_decay: keep an exponential moving average of the weights with this decay (None: off);
            validation, the best checkpoint and the exported model then use the average.
        log_every: steps between rows of ``metrics.csv``.
        val_every: steps between validations (also at the last step); each saves ``checkpoints/last``.
        sample_count: images in each validation's sample sheet.
        tensorboard: also write TensorBoard logs when the ``tensorboard`` package is installed.
        time_limit: seconds of training (this session's, after a resume) after which the run
            validates, saves its checkpoint and exports the model as if it had reached ``steps``
            (None: no limit); ``--resume`` continues it.
    """

    steps: int = 10000
    batch_size: int = 4
    device: str = "auto"
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    ema_decay: float | None = None
    log_every: int = 10
    val_every: int = 500
    sample_count: int = 4
    tensorboard: bool = True
    time_limit: float | None = None


@dataclass(frozen=True)
class TrainConfig:
    """A whole training run: stage 1 (defocus and radiance networks), stage 2 (fusion network) or
    ``"depth"`` (the defocus network of a model that predicts depth, see :mod:`d2f.train.depth`)."""

    stage: Literal[1, 2, "depth"] = 1
    seed: int = 0
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (tuples as lists), as written to YAML and checkpoints."""
        return _to_plain(self)


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> TrainConfig:
    """Read a YAML config (None: all defaults), apply ``key.sub=value`` overrides, check everything.

    Override values are parsed as YAML (``run.steps=100``, ``data.size=[64,96]``,
    ``model.init=null``).
    """
    values: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: no such config file")
        try:
            loaded = yaml.safe_load(path.read_text())
        except yaml.YAMLError as error:
            raise ConfigError(f"{path}: not valid YAML ({_first_line(error)})") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping of config keys, got {type(loaded).__name__}")
        values = loaded or {}
    return config_from_dict(apply_overrides(values, overrides))


def apply_overrides(values: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A copy of the nested dict ``values`` with each ``dotted.key=value`` set (value parsed as YAML)."""
    result = _deep_copy(values)
    for override in overrides:
        key, separator, text = override.partition("=")
        if not separator or not key or any(not part for part in key.split(".")):
            raise ConfigError(f"override {override!r}: expected key=value, e.g. run.steps=1000")
        try:
            value = yaml.safe_load(text) if text else None
        except yaml.YAMLError as error:
            raise ConfigError(
                f"override {key}: value {text!r} is not valid YAML ({_first_line(error)})"
            ) from None
        node = result
        parts = key.split(".")
        for depth, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"config key {'.'.join(parts[: depth + 1])}: is a value, not a section")
            node = child
        node[parts[-1]] = value
    return result


def config_from_dict(values: Mapping[str, Any]) -> TrainConfig:
    """Build and check a :class:`TrainConfig` from a nested dict (missing keys take their defaults)."""
    config = _build(TrainConfig, values, "")
    check_config(config)
    return config


def check_config(config: TrainConfig) -> None:
    """Range checks and the data folder's existence; raises ConfigError naming the key."""
    run, optim, data = config.run, config.optim, config.data
    for key, value in (
        ("run.steps", run.steps),
        ("run.batch_size", run.batch_size),
        ("run.log_every", run.log_every),
        ("run.val_every", run.val_every),
        ("data.train_count", data.train_count),
    ):
        if value < 1:
            raise ConfigError(f"config key {key}: expected a positive integer, got {value}")
    for key, value in (("run.sample_count", run.sample_count), ("data.num_workers", data.num_workers)):
        if value < 0:
            raise ConfigError(f"config key {key}: expected a non-negative integer, got {value}")
    if data.val_count is not None and data.val_count < 1:
        raise ConfigError(
            f"config key data.val_count: expected a positive integer or null, got {data.val_count}"
        )
    if optim.warmup_steps < 0:
        raise ConfigError(
            f"config key optim.warmup_steps: expected a non-negative integer, got {optim.warmup_steps}"
        )
    if not optim.lr > 0:
        raise ConfigError(f"config key optim.lr: expected a positive number, got {optim.lr}")
    if not 0 <= optim.min_lr_ratio <= 1:
        raise ConfigError(
            f"config key optim.min_lr_ratio: expected a number in [0, 1], got {optim.min_lr_ratio}"
        )
    if optim.grad_clip is not None and not optim.grad_clip > 0:
        raise ConfigError(
            f"config key optim.grad_clip: expected a positive number or null, got {optim.grad_clip}"
        )
    if not all(0 <= beta < 1 for beta in optim.betas):
        raise ConfigError(f"config key optim.betas: expected two numbers in [0, 1), got {list(optim.betas)}")
    if run.ema_decay is not None and not 0 < run.ema_decay < 1:
        raise ConfigError(
            f"config key run.ema_decay: expected a number in (0, 1) or null, got {run.ema_decay}"
        )
    if run.device not in ("auto", "cpu", "cuda") and not run.device.startswith("cuda:"):
        raise ConfigError(f"config key run.device: expected auto, cpu or cuda, got {run.device!r}")
    for key, size in (
        ("data.size", data.size),
        ("data.val_size", data.val_size),
        ("data.resize", data.resize),
    ):
        if isinstance(size, tuple) and min(size) < 64:
            raise ConfigError(f"config key {key}: expected sides of at least 64 pixels, got {list(size)}")
    for name in (weight.name for weight in dataclasses.fields(config.loss)):
        if getattr(config.loss, name) < 0:
            raise ConfigError(
                f"config key loss.{name}: expected a non-negative weight, got {getattr(config.loss, name)}"
            )
    _check_paths(config)


def _check_paths(config: TrainConfig) -> None:
    data, model = config.data, config.model
    if data.kernel_scale < 0:
        raise ConfigError(f"config key data.kernel_scale: expected a number >= 0, got {data.kernel_scale}")
    if config.run.time_limit is not None and not config.run.time_limit > 0:
        raise ConfigError(
            f"config key run.time_limit: expected a positive number or null, got {config.run.time_limit}"
        )
    for name in ("companion_focus_probability", "subject_support_probability", "perspective_probability",
                 "rgbd_probability", "synthetic_share"):
        value = getattr(data, name)
        if not 0 <= value <= 1:
            raise ConfigError(f"config key data.{name}: expected a number in [0, 1], got {value}")
    if data.rgbd_probability > 0:
        if data.dataset != "synthetic":
            raise ConfigError(
                "config key data.rgbd_probability: RGB-D photos mix into the synthetic dataset only"
            )
        if data.rgbd_root is None or not Path(data.rgbd_root).is_dir():
            raise ConfigError(f"config key data.rgbd_root: no such RGB-D folder {data.rgbd_root}")
    if data.textures is not None and not Path(data.textures).is_dir():
        raise ConfigError(f"config key data.textures: no such folder {data.textures}")
    if data.dataset in ("synthetic", "depth") and data.size is None:
        raise ConfigError("config key data.size: synthetic scenes need a size [height, width]")
    if data.dataset == "depth":
        if data.root is None or not Path(data.root).is_dir():
            raise ConfigError(f"config key data.root: the depth mix needs an RGB-D folder, got {data.root}")
        if config.stage != "depth":
            raise ConfigError(
                "config key data.dataset: the depth mix has no bokeh; train it with stage: depth"
            )
    if config.stage == "depth" and not config.model.architecture.predicts_depth:
        raise ConfigError("config key model.architecture.predicts: the depth stage trains a model that "
                          "predicts depth; set it to depth")
    if data.dataset == "ebb":
        if data.root is None:
            raise ConfigError("config key data.root: the ebb dataset needs its folder")
        if not Path(data.root).is_dir():
            raise ConfigError(f"config key data.root: no such data folder {data.root}")
        from d2f.data.ebb import resolve_root

        try:
            resolve_root(data.root)
        except DataError as error:
            raise ConfigError(f"config key data.root: {error}") from None
    if config.stage == 2 and model.init is None:
        raise ConfigError("config key model.init: stage 2 trains on top of a stage-1 model; give its folder")
    if model.init is not None and not Path(model.init).exists():
        raise ConfigError(f"config key model.init: no such model folder {model.init}")
    if model.encoder_weights is not None and not Path(model.encoder_weights).is_file():
        raise ConfigError(f"config key model.encoder_weights: no such file {model.encoder_weights}")


# ------------------------------------------------------------------------------------- typed building


def _build(cls: type, values: Any, prefix: str) -> Any:
    section = prefix.rstrip(".") or "the config"
    if not isinstance(values, Mapping):
        raise ConfigError(f"config key {section}: expected a section (mapping), got {_describe(values)}")
    hints = typing.get_type_hints(cls)
    known = {item.name for item in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(
            f"config key {prefix}{unknown[0]}: unknown key "
            f"(known keys of {section}: {', '.join(sorted(known))})"
        )
    arguments = {name: _coerce(value, hints[name], f"{prefix}{name}") for name, value in values.items()}
    try:
        return cls(**arguments)
    except ConfigError as error:  # D2FConfig's own checks name the field without its section
        raise ConfigError(f"config key {prefix}{error}") from None


def _coerce(value: Any, hint: Any, key: str) -> Any:
    origin, arguments = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, f"{key}.")
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in arguments:
            return None
        options = [argument for argument in arguments if argument is not type(None)]
        errors = []
        for option in options:
            try:
                return _coerce(value, option, key)
            except ConfigError as error:
                errors.append(error)
        if len(options) == 1:
            raise errors[0]
        raise ConfigError(f"config key {key}: expected {_expected(hint)}, got {_describe(value)}")
    if origin is Literal:
        if value in arguments and type(value) in {type(argument) for argument in arguments}:
            return value
        raise ConfigError(
            f"config key {key}: expected one of {', '.join(map(repr, arguments))}, got {value!r}"
        )
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(
                f"config key {key}: expected a list ({_expected(hint)}), got {_describe(value)}"
            )
        if len(arguments) == 2 and arguments[1] is Ellipsis:
            item_hints = [arguments[0]] * len(value)
        elif len(value) != len(arguments):
            raise ConfigError(f"config key {key}: expected {len(arguments)} values, got {len(value)}")
        else:
            item_hints = list(arguments)
        return tuple(
            _coerce(item, item_hint, f"{key}[{index}]")
            for index, (item, item_hint) in enumerate(zip(value, item_hints, strict=True))
        )
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif hint is str:
        if isinstance(value, str):
            return value
    else:
        raise TypeError(f"unsupported config type {hint!r} for {key}")
    raise ConfigError(f"config key {key}: expected {_expected(hint)}, got {_describe(value)}")


def _expected(hint: Any) -> str:
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    if hint in names:
        return names[hint]
    origin, arguments = typing.get_origin(hint), typing.get_args(hint)
    if origin is tuple:
        if len(arguments) == 2 and arguments[1] is Ellipsis:
            return f"a list of {_expected(arguments[0]).removeprefix('an ').removeprefix('a ')}s"
        return f"a list of {len(arguments)} values"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(
            "null" if argument is type(None) else _expected(argument) for argument in arguments
        )
    if origin is Literal:
        return "one of " + ", ".join(map(repr, arguments))
    return str(hint)


def _describe(value: Any) -> str:
    if isinstance(value, Mapping):
        return "a section"
    if value is None:
        return "null"
    return f"{value!r} ({type(value).__name__})"


def _to_plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {item.name: _to_plain(getattr(value, item.name)) for item in dataclasses.fields(value)}
    if isinstance(value, (tuple, list)):
        return [_to_plain(item) for item in value]
    return value


def _deep_copy(values: Mapping[str, Any]) -> dict[str, Any]:
    return {key: _deep_copy(value) if isinstance(value, Mapping) else value for key, value in values.items()}


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


__all__ = [
    "DataConfig",
    "LossConfig",
    "ModelConfig",
    "OptimConfig",
    "RunConfig",
    "TrainConfig",
    "apply_overrides",
    "check_config",
    "config_from_dict",
    "load_config",
]
