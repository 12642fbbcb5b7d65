"""The architecture of a D2F model as one dataclass: the single source for building and saving it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from d2f.errors import ConfigError
from d2f.render.kernels import KERNEL_SIZES

#: Name written into saved configs, so that a file of another kind is recognised.
ARCHITECTURE = "D2F"

#: What a defocus network can predict (see :attr:`D2FConfig.predicts`).
PREDICTIONS = ("defocus", "depth")

#: Fields chosen after training, on how a trained model renders (not what it learnt): a bundle takes
#: its preset's values (:func:`d2f.models.presets.export_bundle`).
INFERENCE_SETTINGS = ("focus_sharpness", "default_f_number", "subject_depth_of_field")


@dataclass(frozen=True)
class D2FConfig:
    """Everything needed to rebuild a D2F model; the defaults are the paper's architecture.

    Attributes:
        encoder: the defocus network's encoder: ``"efficientnet_lite0"`` (d2f-lite), or the name of a
            torchvision ResNet-family constructor (built with ``weights=None``, never downloaded).
        decoder_features: channels of the RefineNet decoder.
        head_features: channels of the defocus head's two 3x3 convolutions.
        radiance_features: hidden channels of the per-pixel radiance network.
        fusion_features: channels of the fusion network's hidden 3x3 convolutions.
        kernel_sizes: soft disk diameters of the renderer's blurred levels (half-resolution pixels).
        alpha: sharpness of the renderer's layer masks.
        saturation_threshold, saturation_gain, saturation_power: the near-saturated pixel rule of
            :func:`d2f.render.saturation_weight`.
        stage1_scale: stage 1 runs at the input size divided by this ...
        stage1_multiple: ... rounded to a multiple of this (at least one multiple).
        focus_threshold: threshold of the initial binary focus mask (training only).
        defocus_long_side: when set, the defocus network sees the stage-1 image shrunk so that its
            longer side is at most this many pixels (multiples of 32), and its map is upsampled back.
            Objects then keep the scale the network was trained at, whatever the photo's size, and
            large photos cost less. None (the paper) runs it at the stage-1 size.
        clamp_defocus: render with the defocus map clamped to [0, 1]. Outside that range no layer
            covers a pixel, so an unclamped map can render black holes; d2f trains with the clamp and
            its own models set it. The paper's checkpoints were made without it (False reproduces them).
        blur_scale: None (the paper): the defocus network predicts D2F defocus itself. A number: it
            predicts defocus *relative to the scene's blur scale* (0 in focus, 1 where the scene is
            blurred most), and its map is multiplied by a blur scale before rendering: the one given to
            :meth:`D2F.forward` for each image (the aperture, as the defocus of the farthest background),
            or this number when none is given. How much a lens blurs cannot be read from a sharp photo,
            so such a model learns the depth structure and leaves the amount to the caller.
        predicts: ``"defocus"`` (the paper): the network's map is D2F defocus. ``"depth"``: the network
            predicts a normalised disparity (channel 0, 0 far to 1 near, through a sigmoid) and a focus
            map (channel 1, logits of where a photographer would focus), and the defocus follows the
            thin lens from them, the focus point and the aperture (:mod:`d2f.render.lens`).
        working_long_side: when set, stage 1 runs with this longer side (multiples of
            ``stage1_multiple``) whatever the photo's size, so blur is a fraction of the image and a
            12 MP photo looks like its 1.5 MP copy. None (the paper) runs it at half the photo's size.
        focus_sharpness: a depth model's own focus point is the weighted median disparity under
            ``softmax(focus_sharpness * focus logits)``; above 1 the weight gathers on the map's peak
            (the network trained at 1 spreads it wide, and a wide median lands on the background
            around a small subject). An inference setting: training ignores it.
        default_f_number: the f-number of a depth model's own look (and of any model given a depth
            map) when the caller gives none. An inference setting: training ignores it.
        subject_depth_of_field: T in normalised disparity, >= 0: where a depth model's focus map
            outlines the subject, offsets from the focus under T shrink smoothly to ``offset**2 / T``
            (:func:`d2f.render.lens.thin_lens_defocus`), so that a subject whose predicted depth
            wavers stays sharp (a depth map given with the photo is rendered as it is); 0 (the
            default) renders the plain thin lens. An inference setting.
        blur_range: a depth model also predicts each photo's disparity range in 1/m (how far apart,
            in inverse metres, its nearest and farthest surfaces are: a close-up spans several, a
            street a fraction of one) from the defocus network's pooled features, so that the blur an
            f-number makes follows the scene's scale (see :data:`d2f.render.lens.METRIC_LENS_BLUR`).
    """

    encoder: str = "resnext50_32x4d"
    decoder_features: int = 256
    head_features: tuple[int, int] = (128, 32)
    radiance_features: int = 16
    fusion_features: tuple[int, ...] = (64, 16, 16)
    kernel_sizes: tuple[int, ...] = KERNEL_SIZES
    alpha: float = 100.0
    saturation_threshold: float = 0.99
    saturation_gain: float = 3.0
    saturation_power: float = 5.0
    stage1_scale: float = 2.0
    stage1_multiple: int = 64
    focus_threshold: float = 1 / 8
    defocus_long_side: int | None = None
    clamp_defocus: bool = False
    blur_scale: float | None = None
    predicts: str = "defocus"
    working_long_side: int | None = None
    focus_sharpness: float = 1.0
    default_f_number: float = 2.0
    subject_depth_of_field: float = 0.0
    blur_range: bool = False

    def __post_init__(self) -> None:
        for name in ("decoder_features", "radiance_features", "stage1_multiple"):
            _check_positive_int(name, getattr(self, name))
        for name in ("head_features", "fusion_features", "kernel_sizes"):
            value = getattr(self, name)
            if not isinstance(value, (tuple, list)) or not value:
                raise ConfigError(f"{name}: expected a non-empty list of integers, got {value!r}")
            for item in value:
                _check_positive_int(name, item)
            object.__setattr__(self, name, tuple(value))
        if len(self.head_features) != 2:
            raise ConfigError(f"head_features: expected two integers, got {self.head_features!r}")
        if any(size % 2 == 0 for size in self.kernel_sizes):
            raise ConfigError(f"kernel_sizes: expected odd integers, got {self.kernel_sizes!r}")
        for name in (
            "alpha", "saturation_threshold", "saturation_gain", "saturation_power", "stage1_scale",
            "focus_sharpness", "default_f_number",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ConfigError(f"{name}: expected a positive number, got {value!r}")
            object.__setattr__(self, name, float(value))
        depth_of_field = self.subject_depth_of_field
        if isinstance(depth_of_field, bool) or not isinstance(depth_of_field, (int, float)) or not (
            0 <= depth_of_field < float("inf")
        ):
            raise ConfigError(
                f"subject_depth_of_field: expected a finite number >= 0, got {depth_of_field!r}"
            )
        object.__setattr__(self, "subject_depth_of_field", float(depth_of_field))
        if not isinstance(self.encoder, str) or not self.encoder:
            raise ConfigError(f"encoder: expected a torchvision model name, got {self.encoder!r}")
        threshold = self.focus_threshold
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold < 1:
            raise ConfigError(f"focus_threshold: expected a number in (0, 1), got {threshold!r}")
        object.__setattr__(self, "focus_threshold", float(threshold))
        if self.defocus_long_side is not None:
            _check_positive_int("defocus_long_side", self.defocus_long_side)
            if self.defocus_long_side % 32:
                raise ConfigError(
                    f"defocus_long_side: expected a multiple of 32, got {self.defocus_long_side!r}"
                )
        if not isinstance(self.clamp_defocus, bool):
            raise ConfigError(f"clamp_defocus: expected true or false, got {self.clamp_defocus!r}")
        if self.blur_scale is not None:
            scale = self.blur_scale
            if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 < scale <= 1:
                raise ConfigError(f"blur_scale: expected None or a number in (0, 1], got {scale!r}")
            object.__setattr__(self, "blur_scale", float(scale))

        if self.predicts not in PREDICTIONS:
            raise ConfigError(f"predicts: expected one of {', '.join(PREDICTIONS)}, got {self.predicts!r}")
        if self.predicts == "depth" and self.blur_scale is not None:
            raise ConfigError("blur_scale: a model that predicts depth takes its blur from the aperture")
        if self.working_long_side is not None:
            _check_positive_int("working_long_side", self.working_long_side)
        if not isinstance(self.blur_range, bool):
            raise ConfigError(f"blur_range: expected true or false, got {self.blur_range!r}")
        if self.blur_range and not self.predicts_depth:
            raise ConfigError("blur_range: only a model that predicts depth can predict its disparity range")

    @property
    def predicts_depth(self) -> bool:
        return self.predicts == "depth"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: ``{"architecture": "D2F", <every field>}`` (tuples as lists)."""
        fields = {
            field.name: list(value) if isinstance(value, tuple) else value
            for field in dataclasses.fields(self)
            for value in (getattr(self, field.name),)
        }
        return {"architecture": ARCHITECTURE, **fields}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> D2FConfig:
        """Inverse of :meth:`to_dict`; missing fields take their defaults, unknown ones are an error."""
        if not isinstance(values, dict):
            raise ConfigError(f"expected a mapping of config fields, got {type(values).__name__}")
        values = dict(values)
        architecture = values.pop("architecture", ARCHITECTURE)
        if architecture != ARCHITECTURE:
            raise ConfigError(f"architecture: expected {ARCHITECTURE!r}, got {architecture!r}")
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown config fields: {', '.join(unknown)}")
        return cls(**values)


def _check_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name}: expected positive integers, got {value!r}")
