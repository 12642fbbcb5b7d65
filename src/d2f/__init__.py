"""d2f: photo-realistic bokeh from a single all-in-focus photo.

An implementation of "Defocus to Focus: Photo-realistic Bokeh Rendering by Fusing Defocus and Radiance
Priors" (Luo et al., Information Fusion 2023). Importing ``d2f`` is cheap: the models, pipeline and data
modules load on first use.

The public names (``dir(d2f)``) are ``__all__``: ``render_image`` and ``load`` for most uses, the model
classes, the render options and the sub-packages.
"""

import importlib as _importlib

from d2f._version import __version__
from d2f.errors import D2FError

# Public name -> module that defines it; loaded on first access (PEP 562).
_LAZY: dict[str, str] = {
    "render_image": "d2f.pipeline",
    "load": "d2f.models",
    "load_bundled": "d2f.models",
    "load_official": "d2f.models",
    "D2F": "d2f.models",
    "D2FConfig": "d2f.models",
    "D2FOutput": "d2f.models",
    "RenderOptions": "d2f.options",
    "render": "d2f.render",
    "metrics": "d2f.metrics",
    "evaluation": "d2f.evaluation",
    "train": "d2f.train",
    "data": "d2f.data",
}

__all__ = ["D2FError", "__version__", *_LAZY]


def __getattr__(name: str) -> object:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'd2f' has no attribute {name!r}")
    module = _importlib.import_module(module_name)
    value = module if module_name == f"d2f.{name}" else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
