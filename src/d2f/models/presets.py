"""Named architectures, and the weights that ship inside the package.

``CONFIGS`` names the architectures: ``"d2f"`` is the paper's (ResNeXt-50 encoder, 256 decoder
features), ``"d2f-lite"`` the compact default model (EfficientNet-Lite0 encoder, a narrower decoder,
head and fusion network) sized to render a 1024x1536 photo in about a second on a 2-core CPU.
``"d2f-lite-2"`` is the same networks predicting depth, where to focus and how deep the scene is, with
stage 1 at a long side of 768 px whatever the photo's size: the model that takes a focus point and an
f-number. It stays
beside the default until it beats it on the real-lens development set (docs/model-card.md).

A bundle is a folder ``d2f/weights/<name>/`` in the installed package holding ``model.safetensors``
(float16, to halve its size) and ``config.json``: the format of :meth:`D2F.save_pretrained`, written by
:func:`export_bundle` (``scripts/export_bundled.py``) from a training run's output.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import torch

from d2f.errors import CheckpointError, InputError
from d2f.models.checkpoint import WEIGHTS_NAME, load_pretrained
from d2f.models.config import INFERENCE_SETTINGS, D2FConfig
from d2f.models.d2f import D2F

#: Architectures by name.
_LITE = D2FConfig(
    encoder="efficientnet_lite0",
    decoder_features=64,
    head_features=(16, 16),
    fusion_features=(8, 8),
    defocus_long_side=384,
    clamp_defocus=True,
)

CONFIGS: dict[str, D2FConfig] = {
    "d2f": D2FConfig(),
    "d2f-lite": _LITE,
    # focus_sharpness, default_f_number: chosen on the real-lens development set after training;
    # subject_depth_of_field on synthetic validation scenes (docs/model-card-lite2.md).
    "d2f-lite-2": dataclasses.replace(
        _LITE, predicts="depth", working_long_side=768, blur_range=True, focus_sharpness=16.0,
        default_f_number=2.0, subject_depth_of_field=0.3,
    ),
}

#: The model :func:`d2f.render_image` and ``d2f render`` use when given none.
DEFAULT_MODEL = "d2f-lite"

#: Where bundles live: ``d2f/weights/<name>/`` inside the package.
BUNDLE_ROOT = Path(__file__).resolve().parents[1] / "weights"


def bundle_path(name: str = DEFAULT_MODEL) -> Path:
    """The folder of the bundle ``name`` (which may not exist: d2f can be built without weights)."""
    if name not in CONFIGS:
        raise InputError(f"model: unknown model name {name!r}; known names: {', '.join(CONFIGS)}")
    return BUNDLE_ROOT / name


def is_bundled(name: str = DEFAULT_MODEL) -> bool:
    """Whether the weights of the named model ship with this installation."""
    return (bundle_path(name) / WEIGHTS_NAME).is_file()


def bundled_models() -> list[str]:
    """Names of the models whose weights ship with this installation (what :func:`load` takes by name)."""
    return [name for name in CONFIGS if is_bundled(name)]


def load(name_or_path: str | os.PathLike[str], *, map_location: str | torch.device = "cpu") -> D2F:
    """Load a model by bundled name (``"d2f-lite"``) or from a :meth:`D2F.save_pretrained` folder or file.

    A bundled name wins over a folder of the same name in the working directory (reach that one as
    ``./d2f-lite``). The paper's two checkpoint files load with :func:`d2f.models.load_official`.

    Returns:
        The :class:`D2F`, in float32 (bundles are stored in float16) and eval mode.

    Raises:
        InputError: ``name_or_path`` is neither a bundled model's name nor an existing path; the message
            lists the bundled names.
        CheckpointError: the path exists but is not a saved model, or its files are bad.
    """
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise InputError(
            f"model: expected a bundled model's name or a path, got {type(name_or_path).__name__}"
        )
    if isinstance(name_or_path, str) and name_or_path in bundled_models():
        return load_bundled(name_or_path, map_location=map_location)
    if Path(name_or_path).exists():
        return load_pretrained(name_or_path, map_location=map_location)
    raise InputError(f"{name_or_path}: {_not_a_model(str(name_or_path))}")


def _not_a_model(name: str) -> str:
    """Why ``name`` loads nothing, with the names that would (the sentence after ``NAME: ``)."""
    names = bundled_models()
    known = f"bundled models: {', '.join(names)}" if names else "this installation has no bundled models"
    if name in CONFIGS:
        return (
            f"no weights for this architecture ship with d2f ({known}); the paper's checkpoints load "
            "with --stage1/--stage2 (load_official in Python)"
        )
    return f"neither a bundled model nor an existing file or folder ({known})"


def load_bundled(name: str = DEFAULT_MODEL, *, map_location: str | torch.device = "cpu") -> D2F:
    """Load a model shipped inside the package, in float32 and eval mode.

    Reads the bundle's float16 ``model.safetensors`` into a float32 model built from its
    ``config.json``: no pickle, nothing downloaded, well under a second for d2f-lite. Nothing is
    cached: each call returns a new model.

    Raises:
        InputError: ``name`` is not a known model name.
        CheckpointError: the named model has no weights in this installation, or its files are bad.
    """
    directory = bundle_path(name)
    if not is_bundled(name):
        raise CheckpointError(
            f"{directory / WEIGHTS_NAME}: missing: this installation of d2f has no bundled weights "
            f"for {name!r}"
        )
    return load_pretrained(directory, map_location=map_location)


def export_bundle(
    source: str | os.PathLike[str] | D2F,
    destination: str | os.PathLike[str],
    *,
    label: str | None = None,
    **settings: float,
) -> Path:
    """Write a model, or one saved with :meth:`D2F.save_pretrained`, as a float16 bundle.

    Every floating-point tensor is stored in float16 (batch-norm counters stay integers);
    ``config.json`` is written unchanged but for the ``settings`` given (fields of
    :data:`d2f.models.config.INFERENCE_SETTINGS`, chosen after training). Both files are written
    atomically; a model passed in is left as it is. Errors name ``label``, by default the source's
    path (or "model"). Returns ``destination``.

    Raises:
        InputError: a setting that is not an inference setting.
        CheckpointError: ``source`` is not a saved model, or a weight does not fit in float16.
    """
    unknown = sorted(set(settings) - set(INFERENCE_SETTINGS))
    if unknown:
        raise InputError(
            f"{unknown[0]}: not an inference setting (expected among {', '.join(INFERENCE_SETTINGS)})"
        )
    if isinstance(source, D2F):
        model = D2F(source.config)
        model.load_state_dict(source.state_dict())
    elif isinstance(source, (str, os.PathLike)):
        model = load_pretrained(source)
    else:
        raise InputError(f"source: expected a D2F or a save_pretrained folder, got {type(source).__name__}")
    name = label or ("model" if isinstance(source, D2F) else str(source))
    model.config = dataclasses.replace(model.config, **settings)
    for key, value in model.state_dict().items():
        if value.is_floating_point() and not bool(torch.isfinite(value.half()).all()):
            raise CheckpointError(f"{name}: {key} has values outside the float16 range; cannot bundle it")
    return model.half().save_pretrained(destination)
