"""The render options: one description that serves the Python API, the command line and the app.

Every option that shapes the picture is a field of :class:`RenderOptions`, described once by an
:class:`OptionSpec` in the field's metadata: its meaning, its valid range, its command-line flag and the
slider the app shows for it. ``d2f render`` builds its flags from these specs, ``render_image`` and
``predict`` take the fields as keywords, and the app builds its controls from them, so that a new option
appears everywhere at once.

This module is a leaf: it imports nothing of d2f but the errors, so every layer may use it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from d2f.errors import InputError

#: Valid f-numbers (the wide end covers the fastest lenses, the narrow end any lens's smallest stop).
F_NUMBER_RANGE = (0.7, 64.0)


@dataclass(frozen=True)
class OptionSpec:
    """How one render option is described, checked, spelled on the command line and shown in the app.

    Attributes:
        name: the Python keyword (``aperture_blades``); the flag is ``--aperture-blades``.
        help: one sentence for ``--help``, docstrings and the app's tooltip.
        kind: ``"number"``, ``"integer"`` or ``"point"`` (two numbers, ``X,Y`` on the command line).
        minimum, maximum: the valid closed range (None: unbounded; numbers must be finite anyway).
        needs_depth: the option acts on depth, so it needs a model that predicts depth or a depth map.
        slider: (low, high, step) of the app's slider, a sensible part of the valid range.
        metavar: the value's name in ``--help``.
        allowed: for integers, the only valid values when the range alone does not say it.
    """

    name: str
    help: str
    kind: str = "number"
    minimum: float | None = None
    maximum: float | None = None
    needs_depth: bool = False
    slider: tuple[float, float, float] | None = None
    metavar: str = "V"
    allowed: tuple[int, ...] | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def describe_range(self) -> str:
        """The valid values in words, for error messages."""
        if self.allowed is not None:
            return "one of " + ", ".join(str(value) for value in self.allowed)
        if self.kind == "point":
            return "two finite numbers x,y >= 0 (pixels of the input)"
        noun = "an integer" if self.kind == "integer" else "a finite number"
        if self.minimum is not None and self.maximum is not None:
            return f"{noun} from {self.minimum:g} to {self.maximum:g}"
        if self.minimum is not None:
            return f"{noun} >= {self.minimum:g}"
        return noun

    def problem(self, value: object) -> str | None:
        """What is wrong with ``value`` (None where it is valid); None values are always valid."""
        if value is None:
            return None
        if self.kind == "point":
            if not isinstance(value, (tuple, list)) or len(value) != 2:
                return f"expected {self.describe_range()}, got {value!r}"
            if not all(_is_number(part) and math.isfinite(part) and part >= 0 for part in value):
                return f"expected {self.describe_range()}, got {value!r}"
            return None
        if not _is_number(value) or not math.isfinite(value):
            return f"expected {self.describe_range()}, got {value!r}"
        if self.kind == "integer" and int(value) != value:
            return f"expected {self.describe_range()}, got {value!r}"
        if self.allowed is not None and value not in self.allowed:
            return f"expected {self.describe_range()}, got {value!r}"
        if (self.minimum is not None and value < self.minimum) or (
            self.maximum is not None and value > self.maximum
        ):
            return f"expected {self.describe_range()}, got {value!r}"
        return None

    def parse(self, text: str) -> Any:
        """A command-line string as a value of this option (raises InputError naming the flag)."""
        try:
            if self.kind == "point":
                parts = [float(part) for part in text.split(",")]
                value: Any = tuple(parts)
            elif self.kind == "integer":
                value = int(text)
            else:
                value = float(text)
        except ValueError:
            raise InputError(f"{self.flag}: expected {self.describe_range()}, got {text!r}") from None
        problem = self.problem(value)
        if problem is not None:
            raise InputError(f"{self.flag}: {problem}")
        return value


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _option(default: Any, spec: OptionSpec) -> Any:
    return field(default=default, metadata={"spec": spec})


@dataclass(frozen=True)
class RenderOptions:
    """How to render: blur amount, focus, aperture, lens look. Every field is optional.

    Options marked "depth" act on the scene's depth: they need a model that predicts depth (d2f-lite-2)
    or a depth map given with the photo; on another model they are an error, never ignored. Use
    :func:`render_options` to build one from keywords with errors that name the option.
    """

    strength: float = _option(1.0, OptionSpec(
        "strength", "multiplies the blur diameter: 0 gives the photo back, 0.5 half the blur, 2 twice "
        "(up to the renderer's largest disc: 69 px at its working size, 9 % of d2f-lite-2's longer side)",
        minimum=0.0, slider=(0.0, 3.0, 0.05), metavar="S"))
    focus: tuple[float, float] | None = _option(None, OptionSpec(
        "focus", "depth: focus on the surface at this point of the photo, x,y in pixels (default: the "
        "model's own choice)", kind="point", needs_depth=True, metavar="X,Y"))
    f_number: float | None = _option(None, OptionSpec(
        "f_number", "depth: the aperture to simulate, in f-stops of a 50 mm-equivalent lens (default: the "
        "model's own look: f/2 for d2f-lite-2)", minimum=F_NUMBER_RANGE[0], maximum=F_NUMBER_RANGE[1],
        needs_depth=True, slider=(1.0, 16.0, 0.1), metavar="N"))
    input_f_number: float | None = _option(None, OptionSpec(
        "input_f_number", "depth: the aperture the photo was taken at (default: everything in focus)",
        minimum=F_NUMBER_RANGE[0], maximum=F_NUMBER_RANGE[1], needs_depth=True, metavar="N"))
    focus_range: float = _option(0.0, OptionSpec(
        "focus_range", "depth: surfaces within this distance of the focus (in the normalised disparity "
        "of the photo, 0-1) stay fully sharp, and every other surface blurs as if that much nearer the "
        "focus", minimum=0.0, maximum=1.0, needs_depth=True,
        slider=(0.0, 0.5, 0.01), metavar="R"))
    aperture_blades: int = _option(0, OptionSpec(
        "aperture_blades", "the aperture's shape: 0 round, 3-12 a polygon of that many blades",
        kind="integer", minimum=0, maximum=12, allowed=(0, *range(3, 13)), slider=(0, 12, 1), metavar="N"))
    aperture_rotation: float = _option(0.0, OptionSpec(
        "aperture_rotation", "rotation of the polygonal aperture, degrees counter-clockwise (at 0 a "
        "corner points up)", minimum=-360.0, maximum=360.0,
        slider=(0.0, 180.0, 1.0), metavar="DEG"))
    aperture_curvature: float = _option(0.0, OptionSpec(
        "aperture_curvature", "curvature of the blades: 0 straight, 1 round", minimum=0.0, maximum=1.0,
        slider=(0.0, 1.0, 0.05), metavar="C"))
    cats_eye: float = _option(0.0, OptionSpec(
        "cats_eye", "optical vignetting: discs towards the corners become cat's eyes (0 off, 1 a typical "
        "fast 50 mm wide open)", minimum=0.0, maximum=2.0, slider=(0.0, 2.0, 0.05), metavar="S"))
    highlight_threshold: float | None = _option(None, OptionSpec(
        "highlight_threshold", "pixels brighter than this (0-1) count as clipped highlights (default: the "
        "model's, 0.99)", minimum=0.0, maximum=1.0, slider=(0.5, 1.0, 0.01), metavar="T"))
    highlight_gain: float | None = _option(None, OptionSpec(
        "highlight_gain", "how much clipped highlights are boosted before blurring, so they bloom into "
        "bright discs (default: the model's, 3)", minimum=0.0, maximum=100.0, slider=(0.0, 20.0, 0.5),
        metavar="G"))

    def __post_init__(self) -> None:
        for spec in option_specs():
            value = getattr(self, spec.name)
            problem = spec.problem(value)
            if problem is not None:
                raise InputError(f"{spec.name}: {problem}")
            if spec.kind == "point" and value is not None:
                object.__setattr__(self, spec.name, (float(value[0]), float(value[1])))
            elif spec.kind == "integer" and value is not None:
                object.__setattr__(self, spec.name, int(value))
            elif value is not None:
                object.__setattr__(self, spec.name, float(value))
        wide, photo = self.f_number, self.input_f_number
        if wide is not None and photo is not None and wide > photo:
            raise InputError(
                f"f_number: the simulated aperture f/{self.f_number:g} must be wider (a smaller number) than "
                f"the photo's, f/{self.input_f_number:g}"
            )

    def changed(self) -> dict[str, Any]:
        """The options that differ from their defaults, by name."""
        return {
            spec.name: getattr(self, spec.name)
            for spec, default in zip(option_specs(), _defaults(), strict=True)
            if getattr(self, spec.name) != default
        }

    def depth_options(self) -> list[str]:
        """Names of the options set here that need depth (see :attr:`OptionSpec.needs_depth`)."""
        needs_depth = {spec.name for spec in option_specs() if spec.needs_depth}
        return [name for name in self.changed() if name in needs_depth]


def option_specs() -> tuple[OptionSpec, ...]:
    """The specs of every render option, in the order of :class:`RenderOptions`."""
    return tuple(item.metadata["spec"] for item in dataclasses.fields(RenderOptions))


def _defaults() -> tuple[Any, ...]:
    return tuple(item.default for item in dataclasses.fields(RenderOptions))


def render_options(options: RenderOptions | None = None, **overrides: Any) -> RenderOptions:
    """``options`` (default: all defaults) with ``overrides`` applied, checked.

    Raises:
        InputError: an unknown option name (listing the known ones) or a value out of its range.
    """
    if options is not None and not isinstance(options, RenderOptions):
        raise InputError(f"options: expected a d2f.options.RenderOptions, got {type(options).__name__}")
    known = [spec.name for spec in option_specs()]
    unknown = sorted(set(overrides) - set(known))
    if unknown:
        raise InputError(f"{unknown[0]}: not a render option; the options are {', '.join(known)}")
    base = options if options is not None else RenderOptions()
    return dataclasses.replace(base, **overrides) if overrides else base


def options_from_flags(values: Mapping[str, Any]) -> RenderOptions:
    """Options from parsed command-line values (by Python name, None where a flag was not given).

    Range errors name the flag (``--aperture-blades: ...``) rather than the Python keyword.
    """
    given = {name: value for name, value in values.items() if value is not None}
    try:
        return render_options(**given)
    except InputError as error:
        message = str(error)
        for spec in option_specs():
            if message.startswith(f"{spec.name}: "):
                raise InputError(spec.flag + message[len(spec.name) :]) from None
        raise


__all__ = [
    "F_NUMBER_RANGE",
    "OptionSpec",
    "RenderOptions",
    "option_specs",
    "options_from_flags",
    "render_options",
]
