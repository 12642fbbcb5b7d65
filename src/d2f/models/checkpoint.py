"""Checkpoints: the paper's official files, and the project's own ``save_pretrained`` format.

Official checkpoints are the reference implementation's two ``torch.save`` files: stage 1 (``BokehNet2``:
keys ``midas.pretrained.*``, ``midas.scratch.*``, ``radiance.*``) and stage 2 (``BlendNet2``: keys
``blend.*``), each a bare state dict or ``{"net": state_dict, "optimizer": ...}``.
:func:`checkpoint_filter_fn` renames their keys to :class:`D2F`'s.

The project's format is a directory with ``model.safetensors`` (the state dict under D2F's own keys) and
``config.json`` (:meth:`D2FConfig.to_dict`): no pickle, so loading it never runs code.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from d2f._version import __version__
from d2f.errors import CheckpointError, ConfigError
from d2f.models.config import D2FConfig
from d2f.models.d2f import D2F

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"

#: Reference key prefix -> D2F key prefix, for every parameter and buffer of the official checkpoints.
OFFICIAL_PREFIXES: tuple[tuple[str, str], ...] = (
    # The reference folds the ResNeXt stem (conv1, bn1, relu, maxpool) into its stage 1.
    ("midas.pretrained.layer1.0.", "defocus_net.encoder.stem.0."),
    ("midas.pretrained.layer1.1.", "defocus_net.encoder.stem.1."),
    ("midas.pretrained.layer1.4.", "defocus_net.encoder.layer1."),
    ("midas.pretrained.layer2.", "defocus_net.encoder.layer2."),
    ("midas.pretrained.layer3.", "defocus_net.encoder.layer3."),
    ("midas.pretrained.layer4.", "defocus_net.encoder.layer4."),
    ("midas.scratch.layer1_rn.", "defocus_net.decoder.lateral1."),
    ("midas.scratch.layer2_rn.", "defocus_net.decoder.lateral2."),
    ("midas.scratch.layer3_rn.", "defocus_net.decoder.lateral3."),
    ("midas.scratch.layer4_rn.", "defocus_net.decoder.lateral4."),
    ("midas.scratch.refinenet1.resConfUnit1.", "defocus_net.decoder.fusion1.residual1."),
    ("midas.scratch.refinenet1.resConfUnit2.", "defocus_net.decoder.fusion1.residual2."),
    ("midas.scratch.refinenet2.resConfUnit1.", "defocus_net.decoder.fusion2.residual1."),
    ("midas.scratch.refinenet2.resConfUnit2.", "defocus_net.decoder.fusion2.residual2."),
    ("midas.scratch.refinenet3.resConfUnit1.", "defocus_net.decoder.fusion3.residual1."),
    ("midas.scratch.refinenet3.resConfUnit2.", "defocus_net.decoder.fusion3.residual2."),
    ("midas.scratch.refinenet4.resConfUnit1.", "defocus_net.decoder.fusion4.residual1."),
    ("midas.scratch.refinenet4.resConfUnit2.", "defocus_net.decoder.fusion4.residual2."),
    # output_conv is Sequential(conv, interpolate, conv, relu, conv): modules 0, 2 and 4 hold weights.
    ("midas.scratch.output_conv.0.", "defocus_net.head.conv1."),
    ("midas.scratch.output_conv.2.", "defocus_net.head.conv2."),
    ("midas.scratch.output_conv.4.", "defocus_net.head.conv3."),
    ("radiance.", "radiance_net."),
    # blend.conv1 = Sequential(conv, relu); blend.conv2 = Sequential(conv, relu, conv, relu, conv).
    ("blend.conv1.0.", "fusion_net.convs.0."),
    ("blend.conv2.0.", "fusion_net.convs.1."),
    ("blend.conv2.2.", "fusion_net.convs.2."),
    ("blend.conv2.4.", "fusion_net.convs.3."),
)

#: Which of D2F's submodules each official file holds.
STAGE_PREFIXES = {"stage 1": ("defocus_net.", "radiance_net."), "stage 2": ("fusion_net.",)}

# Keys listed per kind of mismatch before "and N more", to keep the error on one readable line.
_MAX_LISTED = 8


def checkpoint_filter_fn(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an official (reference) state dict's keys to :class:`D2F`'s; other keys pass unchanged."""
    return {_rename(key, OFFICIAL_PREFIXES): value for key, value in state_dict.items()}


def load_official(
    stage1_path: str | os.PathLike[str],
    stage2_path: str | os.PathLike[str],
    *,
    map_location: str | torch.device = "cpu",
) -> D2F:
    """Build the paper's model from its two official checkpoint files.

    Args:
        stage1_path: the defocus hallucination checkpoint (``BokehNet2``: defocus and radiance networks).
        stage2_path: the fusion checkpoint (``BlendNet2``).
        map_location: device to load the tensors to and to put the model on.

    Returns:
        A :class:`D2F` with the default :class:`D2FConfig`, in eval mode.

    Raises:
        CheckpointError: a file is missing, is not a checkpoint, holds pickled objects other than tensors
            (refused without running anything), or its keys or shapes do not match (the message lists
            the missing and unexpected keys, under the reference's names, and the wrong shapes).
    """
    model = _empty_model(D2FConfig())
    expected = model.state_dict()
    state_dict: dict[str, torch.Tensor] = {}
    for (stage, prefixes), path in zip(STAGE_PREFIXES.items(), (stage1_path, stage2_path), strict=True):
        stage_state = checkpoint_filter_fn(_read_official(Path(path), map_location))
        stage_expected = {key: value for key, value in expected.items() if key.startswith(prefixes)}
        _check_state_dict(stage_state, stage_expected, f"{path} ({stage})", official=True)
        state_dict.update(stage_state)
    return _fill(model, state_dict, map_location)


def save_pretrained(model: D2F, directory: str | os.PathLike[str]) -> Path:
    """Write ``model.safetensors`` and ``config.json`` into ``directory`` (created if needed).

    Each file is written to a temporary name in the directory and renamed into place, so an
    interrupted save never leaves a partial file. Returns the directory.
    """
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise CheckpointError(f"{directory}: exists and is not a directory")
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()}
    config_text = json.dumps(model.config.to_dict(), indent=2) + "\n"
    with _atomic_path(directory / WEIGHTS_NAME) as temporary:
        save_file(tensors, temporary, metadata={"format": "pt", "d2f_version": __version__})
    with _atomic_path(directory / CONFIG_NAME) as temporary:
        temporary.write_text(config_text, encoding="utf-8")
    return directory


def load_pretrained(path: str | os.PathLike[str], *, map_location: str | torch.device = "cpu") -> D2F:
    """Load a model written by :meth:`D2F.save_pretrained`.

    Args:
        path: the directory, or the ``model.safetensors`` file in it (``config.json`` is read beside it).
        map_location: device to put the model on.

    Returns:
        The :class:`D2F`, in eval mode.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such file or directory")
    weights_path = path / WEIGHTS_NAME if path.is_dir() else path
    config_path = weights_path.parent / CONFIG_NAME
    for required in (weights_path, config_path):
        if not required.is_file():
            raise CheckpointError(
                f"{required}: missing; a saved D2F model needs {WEIGHTS_NAME} and {CONFIG_NAME}"
            )
    try:
        model = _empty_model(_read_config(config_path))
    except ConfigError as error:  # a config that passes its own checks but names an unusable encoder
        raise CheckpointError(f"{config_path}: {error}") from error
    try:
        state_dict = load_file(weights_path, device="cpu")
    except (SafetensorError, OSError) as error:
        raise CheckpointError(f"{weights_path}: not a readable safetensors file ({error})") from error
    _check_state_dict(state_dict, model.state_dict(), str(weights_path), official=False)
    return _fill(model, state_dict, map_location)


def _rename(key: str, prefixes: Iterable[tuple[str, str]]) -> str:
    for old, new in prefixes:
        if key.startswith(old):
            return new + key[len(old) :]
    return key


def _read_official(path: Path, map_location: str | torch.device) -> dict[str, torch.Tensor]:
    """The state dict in an official checkpoint file, loaded without running pickled code."""
    if not path.exists():
        raise CheckpointError(f"{path}: no such file")
    if path.is_dir():
        raise CheckpointError(f"{path}: is a directory, expected a checkpoint file")
    try:
        loaded = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        blocked = re.search(r"GLOBAL (\S+)", str(error))
        if blocked:
            raise CheckpointError(
                f"{path}: refused to load: it asks to import {blocked.group(1)}, which could run code; "
                "only checkpoints of plain tensors are accepted"
            ) from error
        raise CheckpointError(
            f"{path}: not a PyTorch checkpoint of plain tensors (weights-only loading refused it)"
        ) from error
    except PermissionError as error:
        raise CheckpointError(f"{path}: permission denied") from error
    except Exception as error:  # torch.load reports corrupt files with many exception types
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (unreadable or corrupt)") from error
    if isinstance(loaded, dict) and isinstance(loaded.get("net"), dict):
        loaded = loaded["net"]
    if not isinstance(loaded, dict):
        raise CheckpointError(f"{path}: expected a state dict, found a {type(loaded).__name__}")
    for key, value in loaded.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise CheckpointError(
                f"{path}: expected a state dict of tensors, key {key!r} holds a {type(value).__name__}"
            )
    return loaded


def _check_state_dict(
    state_dict: Mapping[str, torch.Tensor],
    expected: Mapping[str, torch.Tensor],
    source: str,
    *,
    official: bool,
) -> None:
    """Raise a one-line CheckpointError listing every missing and unexpected key and wrong shape."""
    inverse = tuple((new, old) for old, new in OFFICIAL_PREFIXES)

    def shown(key: str) -> str:
        return _rename(key, inverse) if official else key

    missing = [shown(key) for key in expected if key not in state_dict]
    unexpected = [shown(key) for key in state_dict if key not in expected]
    wrong_shapes = [
        f"{shown(key)} is {tuple(value.shape)}, expected {tuple(expected[key].shape)}"
        for key, value in state_dict.items()
        if key in expected and value.shape != expected[key].shape
    ]
    kinds = {"missing keys": missing, "unexpected keys": unexpected, "wrong shapes": wrong_shapes}
    problems = [f"{label} ({len(items)}): {_listing(items)}" for label, items in kinds.items() if items]
    if problems:
        raise CheckpointError(f"{source}: does not match the D2F architecture: {'; '.join(problems)}")


def _listing(items: list[str]) -> str:
    listed = ", ".join(items[:_MAX_LISTED])
    return listed if len(items) <= _MAX_LISTED else f"{listed} and {len(items) - _MAX_LISTED} more"


def _read_config(path: Path) -> D2FConfig:
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path}: not a readable JSON file ({error})") from error
    try:
        return D2FConfig.from_dict(values)
    except ConfigError as error:
        raise CheckpointError(f"{path}: {error}") from error


def _empty_model(config: D2FConfig) -> D2F:
    """A D2F without storage (on the meta device): initialising weights that get replaced costs time."""
    with torch.device("meta"):
        return D2F(config)


def _fill(model: D2F, state_dict: Mapping[str, torch.Tensor], map_location: str | torch.device) -> D2F:
    """Give an empty model the (already checked) tensors, in the dtypes it declares; eval mode."""
    expected = model.state_dict()
    state_dict = {key: value.to(expected[key].dtype) for key, value in state_dict.items()}
    model.load_state_dict(state_dict, strict=True, assign=True)
    return model.to(map_location).eval()


@contextlib.contextmanager
def _atomic_path(target: Path) -> Iterator[Path]:
    """A temporary path beside ``target``, renamed onto it when the block succeeds, removed otherwise."""
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        temporary.chmod(0o644)  # mkstemp creates files readable by their owner only
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
