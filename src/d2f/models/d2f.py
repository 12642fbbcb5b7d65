"""The D2F pipeline as one module: image in, bokeh out (with its intermediate maps)."""

from __future__ import annotations

import contextlib
import math
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from d2f.errors import InputError
from d2f.models.config import D2FConfig
from d2f.models.defocus_net import DefocusNet
from d2f.models.fusion_net import FusionNet
from d2f.models.radiance_net import RadianceNet
from d2f.options import RenderOptions, option_specs, render_options
from d2f.render.checks import check_finite, check_per_image, check_same_size, check_tensor
from d2f.render.kernels import Aperture, defocus_to_diameter, diameter_to_defocus
from d2f.render.layered import weighted_layered_render
from d2f.render.lens import (
    central_focus,
    check_focus_point,
    coc_fraction,
    disparity_at,
    subject_weight,
    thin_lens_defocus,
    weighted_median,
)
from d2f.render.radiance import saturation_weight

PRECISIONS = ("fp32", "bf16")

#: A predicted disparity range (1/m) is kept within these: from a 20 m deep street to a 10 cm close-up.
DISPARITY_RANGE_LIMITS = (0.05, 10.0)

#: The quantiles of a predicted disparity that :func:`stretch_per_image` takes to 0 and 1; the
#: disparity range a model predicts spans the same quantiles of the true disparity.
STRETCH_QUANTILES = (0.01, 0.99)

# Pixels per strip of the full-resolution fusion without autograd: bounds its working set (the fusion
# network's widest activation is 64 floats per pixel, 256 MiB per 2**20 pixels).
_STRIP_PIXELS = {"cpu": 2**20, "default": 2**23}


@dataclass
class D2FOutput:
    """What :class:`D2F` computes for a batch of N images of size (H, W), stage 1 running at (h, w).

    Attributes:
        bokeh: (N, 3, H, W) the rendered photo, in [0, 1].
        defocus: (N, 1, h, w) the defocus map that was rendered (0 in focus; nominally in [0, 1]).
        bokeh_small: (N, 3, h, w) the weighted layered rendering at stage-1 resolution.
        fusion_mask: (N, 1, H, W) in [0, 1]: 1 keeps the sharp input, 0 takes the rendered bokeh.
        disparity: (N, 1, h, w) the normalised disparity the defocus came from (0 far, 1 near), for
            models that predict depth or when a depth map was given; else None.
        focus_disparity: (N,) the disparity that was in focus, where ``disparity`` is set; else None.
        disparity_range: (N,) the span of ``disparity`` in 1/m: the one given with a metric depth
            map, else the prediction of a model that makes one (``D2FConfig.blur_range``); else None.
    """

    bokeh: torch.Tensor
    defocus: torch.Tensor
    bokeh_small: torch.Tensor
    fusion_mask: torch.Tensor
    disparity: torch.Tensor | None = None
    focus_disparity: torch.Tensor | None = None
    disparity_range: torch.Tensor | None = None


@dataclass
class NetworkOutputs:
    """What the stage-1 networks compute for a batch at stage-1 size (h, w): all a render needs of them.

    Computed once by :meth:`D2F.network_outputs` and passed back as ``network=`` to :meth:`D2F.forward`,
    so that changing only the render options costs a render, not a network pass (the app's sliders).

    Attributes:
        radiance: (N, 1, h, w) the radiance network's map (before the saturation weight).
        prediction: (N, C, h, w) the defocus network's raw map (C = 2 for models that predict depth:
            logit disparity and focus map), or None where a given depth map made it unnecessary.
        disparity_range: (N,) the photo's disparity range in 1/m, for models that predict it
            (``D2FConfig.blur_range``) where ``prediction`` is set; else None.
    """

    radiance: torch.Tensor
    prediction: torch.Tensor | None
    disparity_range: torch.Tensor | None = None


@dataclass
class Stage1Output:
    """What stage 1 computes at its own size (h, w); see :class:`D2FOutput` for each field."""

    defocus: torch.Tensor
    bokeh_small: torch.Tensor
    disparity: torch.Tensor | None = None
    focus_disparity: torch.Tensor | None = None
    disparity_range: torch.Tensor | None = None


class D2F(nn.Module):
    """Defocus to Focus: photo-realistic bokeh from one all-in-focus image.

    1. ``I_s``: the image resized (bilinear, ``align_corners=False``, no antialiasing) to
       :meth:`stage1_size`;
    2. ``D = defocus_net(I_s)``; ``W = saturation_weight(I_s, radiance_net(I_s))``;
       ``B_s = weighted_layered_render(I_s, D, W)``;
    3. ``B`` = ``B_s`` and ``D_up`` = ``D`` bilinearly upsampled to (H, W);
       ``M = clamp(fusion_net(D_up, I), 0, 1)`` (the network sees ``1 - D_up`` and the luma of ``I``);
       ``bokeh = clamp(M * I + (1 - M) * B, 0, 1)``.

    A model whose config predicts depth (``D2FConfig.predicts == "depth"``), or any model given a
    disparity map, takes ``D`` from the thin lens instead (:mod:`d2f.render.lens`): the disparity, the
    focus (a point of the photo, or the network's own focus map) and the aperture; its fusion mask is
    then bounded by the defocus, so that nothing the lens blurs keeps sharp input pixels.

    Without autograd (``torch.no_grad`` or ``torch.inference_mode``) step 3 runs on horizontal strips
    that overlap by the fusion network's receptive radius, so memory stays bounded on large photos and
    the result equals the one-piece computation.

    Build it from a :class:`D2FConfig`, or load weights with :func:`d2f.load_official` or
    :func:`d2f.load`; call ``.eval()`` before inference (the loaders do).
    """

    def __init__(self, config: D2FConfig | None = None):
        super().__init__()
        self.config = config or D2FConfig()
        self.defocus_net = DefocusNet(
            self.config.encoder,
            self.config.decoder_features,
            self.config.head_features,
            out_channels=2 if self.config.predicts_depth else 1,
            blur_range=self.config.blur_range,
        )
        self.radiance_net = RadianceNet(self.config.radiance_features)
        self.fusion_net = FusionNet(self.config.fusion_features)

    def stage1_size(self, height: int, width: int) -> tuple[int, int]:
        """Size (h, w) of stage 1 for an (H, W) image.

        ``round(H / scale / multiple) * multiple`` (rounding halves to even, like the reference's numpy)
        and at least ``multiple``; with the defaults, half the size in multiples of 64. With
        ``config.working_long_side`` set, the scale is the one that brings the longer side to it.
        """
        scale, multiple = self.config.stage1_scale, self.config.stage1_multiple
        if self.config.working_long_side is not None:
            scale = max(height, width) / self.config.working_long_side
        return tuple(max(multiple, round(side / scale / multiple) * multiple) for side in (height, width))

    def supported_options(self, *, with_depth: bool = False) -> set[str]:
        """Names of the render options this model honours (``with_depth``: given a depth map)."""
        depth_options = {spec.name for spec in option_specs() if spec.needs_depth}
        names = {spec.name for spec in option_specs()}
        return names if with_depth or self.config.predicts_depth else names - depth_options

    def forward(
        self,
        image: torch.Tensor,
        options: RenderOptions | None = None,
        *,
        disparity: torch.Tensor | None = None,
        disparity_range: float | torch.Tensor | None = None,
        precision: str = "fp32",
        strip_height: int | None = None,
        blur_scale: float | torch.Tensor | None = None,
        network: NetworkOutputs | None = None,
        kernel_scale: float = 1.0,
        **overrides: Any,
    ) -> D2FOutput:
        """Render bokeh for a batch of images.

        Args:
            image: (N, 3, H, W) floating point, values in [0, 1], on the model's device; any size.
            options: how to render (:class:`d2f.options.RenderOptions`); keywords named like its fields
                (``strength=0.5``, ``focus=(x, y)``, ``f_number=2.8``, ...) override it. ``strength``
                multiplies the blur diameter: 1 (the default) is the model's own, 0 gives ``bokeh`` =
                the input, exactly.
            disparity: (N, 1, H', W') a normalised disparity map (0 far, 1 near, any size: it is
                resized) to render from instead of the network's defocus.
            disparity_range: with ``disparity`` only: what its 1 stands for in 1/m (a number or one per
                image (N,), >= 0; :func:`d2f.depth_maps.disparity_span` of a metric depth map), so the
                blur follows the scene's measured depth (``METRIC_LENS_BLUR``) instead of the model's
                estimate or one range for every photo.
            precision: ``"fp32"``, or ``"bf16"`` to run the three networks under bfloat16 autocast with
                channels-last tensors (faster on recent GPUs); the renderer and the final blend stay
                float32 either way.
            strip_height: rows per strip of the full-resolution fusion without autograd (default:
                about a megapixel per strip on the CPU); results do not depend on it.
            blur_scale: models with ``config.blur_scale`` only: the scene's blur scale, a number or one
                per image (N,), in D2F defocus units >= 0 (the defocus of the farthest background; 0.44
                is about a 20 px blur at half resolution). None uses ``config.blur_scale``.
            network: the stage-1 networks' outputs for this very ``image`` (:meth:`network_outputs`),
                to render without running them again; the result is the same.
            kernel_scale: draw the blur kernels this many times their size (rounded to odd pixels),
                the defocus map unchanged: a preview of a photo shrunk by this factor then looks like
                the photo's full-size render shrunk (the app's previews).

        Returns:
            :class:`D2FOutput`, in the model's dtype.

        Raises:
            InputError: bad image or options, or an option this model cannot honour (see
                :meth:`supported_options`).
        """
        image = self._check_image(image)
        _check_options(precision, strip_height)
        options = render_options(options, **overrides)
        if disparity_range is not None:
            if disparity is None:
                raise InputError("disparity_range: only with a depth map (disparity=) whose range it gives")
            disparity_range = _given_range(disparity_range, image)
        self.check_supported(options, with_depth=disparity is not None)
        image_small = self.stage1_image(image)
        focus = None
        if options.focus is not None:
            height, width = image.shape[-2:]
            check_focus_point(options.focus, width, height)
            focus = (
                options.focus[0] * image_small.shape[-1] / width,
                options.focus[1] * image_small.shape[-2] / height,
            )
        stage1 = self.render_stage1(
            image_small,
            options,
            focus=focus,
            disparity=disparity,
            disparity_range=disparity_range,
            precision=precision,
            blur_scale=blur_scale,
            network=network,
            kernel_scale=kernel_scale,
        )
        if options.strength == 0:
            # Everything is in focus: every pixel keeps the sharp input (not its resampled rendering).
            bokeh, fusion_mask = image.clone(), torch.ones_like(image[:, :1])
        else:
            bound = stage1.disparity is not None
            bokeh, fusion_mask = self._fuse(
                image, stage1.defocus, stage1.bokeh_small, precision, strip_height, bound
            )
        return D2FOutput(
            bokeh=bokeh,
            defocus=stage1.defocus,
            bokeh_small=stage1.bokeh_small,
            fusion_mask=fusion_mask,
            disparity=stage1.disparity,
            focus_disparity=stage1.focus_disparity,
            disparity_range=stage1.disparity_range,
        )

    def check_supported(self, options: RenderOptions, *, with_depth: bool = False) -> None:
        """Raise InputError naming the first option set in ``options`` that this model cannot honour."""
        unsupported = [name for name in options.changed() if name not in self.supported_options(
            with_depth=with_depth
        )]
        if unsupported:
            raise InputError(
                f"{unsupported[0]}: this model predicts defocus, not depth, so it cannot take "
                f"{', '.join(unsupported)}; give a depth map or use a model that predicts depth"
            )

    def render_stage1(
        self,
        image_small: torch.Tensor,
        options: RenderOptions | None = None,
        *,
        focus: tuple[float, float] | None = None,
        disparity: torch.Tensor | None = None,
        disparity_range: torch.Tensor | None = None,
        precision: str = "fp32",
        blur_scale: float | torch.Tensor | None = None,
        network: NetworkOutputs | None = None,
        kernel_scale: float = 1.0,
    ) -> Stage1Output:
        """Steps 1-2 on an image already at stage-1 size; ``focus`` is a point in its pixels.

        The renderer runs in float32 (or wider) whatever ``precision`` says. A relative model's map
        (``config.blur_scale`` set) is first multiplied by the blur scale (see :meth:`forward`).
        ``strength`` scales the blur diameter (see :meth:`forward`).
        ``network`` (from :meth:`network_outputs`, for this image) skips the networks; ``kernel_scale``
        scales the kernels the renderer draws, and ``disparity_range`` (N,), used with ``disparity``
        only, replaces the model's own (see :meth:`forward`).
        """
        config = self.config
        options = options if options is not None else RenderOptions()
        with_prediction = disparity is None or config.predicts_depth
        if network is None:
            network = self._run_networks(image_small, precision, with_prediction=with_prediction)
        else:
            self._check_network(network, image_small, needs_prediction=with_prediction)
        radiance = network.radiance
        prediction = network.prediction if with_prediction else None
        focus_disparity = None
        if disparity_range is None and with_prediction:
            disparity_range = network.disparity_range
        if disparity is not None or config.predicts_depth:
            disparity, focus_disparity, defocus = self._depth_defocus(
                image_small, prediction, disparity, focus, options, disparity_range
            )
        else:
            defocus = prediction
            scale = self._blur_scale(blur_scale, image_small)
            if scale is not None:
                defocus = defocus * scale
            if options.strength != 1:
                defocus = scale_blur(defocus, options.strength, config.kernel_sizes)
        weight = saturation_weight(
            image_small,
            radiance,
            threshold=_or(options.highlight_threshold, config.saturation_threshold),
            gain=_or(options.highlight_gain, config.saturation_gain),
            power=config.saturation_power,
        )
        rendered_defocus = defocus.clamp(0, 1) if config.clamp_defocus else defocus
        kernel_sizes = scale_kernels(config.kernel_sizes, kernel_scale)
        aperture = Aperture(options.aperture_blades, options.aperture_rotation, options.aperture_curvature)
        bokeh_small = weighted_layered_render(
            image_small,
            rendered_defocus,
            weight,
            kernel_sizes=kernel_sizes,
            alpha=config.alpha,
            aperture=aperture,
            cats_eye=options.cats_eye,
        ).to(image_small.dtype)
        return Stage1Output(defocus, bokeh_small, disparity, focus_disparity, disparity_range)

    def network_outputs(self, image: torch.Tensor, *, precision: str = "fp32") -> NetworkOutputs:
        """Run the stage-1 networks once for ``image`` (N, 3, H, W) in [0, 1], at :meth:`stage1_size`.

        Pass the result as ``network=`` to :meth:`forward` with the same image to render it with any
        options without running the networks again.
        """
        image = self._check_image(image)
        _check_options(precision, None)
        return self._run_networks(self.stage1_image(image), precision, with_prediction=True)

    def stage1_image(self, image: torch.Tensor) -> torch.Tensor:
        """An image (N, 3, H, W) resized as step 1 does: bilinear, to :meth:`stage1_size`."""
        size = self.stage1_size(*image.shape[-2:])
        return F.interpolate(image, size=size, mode="bilinear", align_corners=False)

    def _run_networks(
        self, image_small: torch.Tensor, precision: str, *, with_prediction: bool
    ) -> NetworkOutputs:
        with self._network_precision(image_small, precision):
            network_input = _memory_format(image_small, precision)
            radiance = self.radiance_net(network_input).to(image_small.dtype).contiguous()
            prediction = disparity_range = None
            if with_prediction:
                prediction, log_range = self._predict(network_input)
                prediction = prediction.to(image_small.dtype).contiguous()
                if log_range is not None:
                    disparity_range = log_range.exp().clamp(*DISPARITY_RANGE_LIMITS)
        return NetworkOutputs(radiance, prediction, disparity_range)

    def _check_network(self, network: object, image_small: torch.Tensor, *, needs_prediction: bool) -> None:
        if not isinstance(network, NetworkOutputs):
            raise InputError(f"network: expected D2F.network_outputs(image), got {type(network).__name__}")
        expected = (image_small.shape[0], *image_small.shape[-2:])
        tensors = [network.radiance] + ([network.prediction] if network.prediction is not None else [])
        for tensor in tensors:
            if (tensor.shape[0], *tensor.shape[-2:]) != expected or tensor.device != image_small.device:
                raise InputError(
                    f"network: computed for a batch of shape {tuple(tensor.shape)} on {tensor.device}, not "
                    f"for this image (stage-1 batch and size {expected} on {image_small.device})"
                )
        if network.prediction is None and needs_prediction:
            raise InputError("network: has no defocus prediction, which this render needs")
        if needs_prediction and self.config.blur_range and network.disparity_range is None:
            raise InputError("network: has no disparity_range, which this model's blur needs")

    def _depth_defocus(
        self,
        image_small: torch.Tensor,
        prediction: torch.Tensor | None,
        disparity: torch.Tensor | None,
        focus: tuple[float, float] | None,
        options: RenderOptions,
        disparity_range: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(disparity, focus_disparity, defocus)`` at stage-1 size, by the thin lens; a predicted
        ``disparity_range`` (N,) in 1/m sets the blur per unit of disparity (see :func:`coc_fraction`)."""
        size = tuple(image_small.shape[-2:])
        focus_map = None
        predicted = disparity is None
        if predicted:
            disparity = stretch_per_image(torch.sigmoid(prediction[:, :1]))
            focus_map = prediction[:, 1:2]
        else:
            disparity = self._check_disparity(disparity, image_small)
            if tuple(disparity.shape[-2:]) != size:
                disparity = F.interpolate(disparity, size=size, mode="bilinear", antialias=True)
            if focus is None and prediction is not None:
                focus_map = prediction[:, 1:2]
        if focus is not None:
            window = max(3, round(0.01 * max(size)))
            focus_disparity = disparity_at(disparity, focus, window)
        elif focus_map is not None:
            logits = focus_map.flatten(1).float() * self.config.focus_sharpness
            weights = torch.softmax(logits, dim=1).reshape(focus_map.shape)
            focus_disparity = weighted_median(disparity, weights.to(disparity.dtype))
        else:
            focus_disparity = central_focus(disparity)
        f_number = self.config.default_f_number if options.f_number is None else options.f_number
        coc_pixels = max(size) * coc_fraction(
            f_number, options.input_f_number, options.strength, disparity_range=disparity_range
        )
        # Only the network's own depth wavers inside subjects; a given depth map is rendered as it is.
        depth_of_field = self.config.subject_depth_of_field if predicted else 0.0
        subject = subject_weight(prediction[:, 1:2]) if depth_of_field else None
        defocus = thin_lens_defocus(
            disparity,
            focus_disparity,
            coc_pixels,
            focus_range=options.focus_range,
            subject=subject,
            subject_depth_of_field=depth_of_field,
            kernel_sizes=self.config.kernel_sizes,
        )
        return disparity, focus_disparity, defocus

    def _check_disparity(self, disparity: object, image_small: torch.Tensor) -> torch.Tensor:
        check_tensor(disparity, "disparity", channels=(1,))
        if disparity.shape[0] != image_small.shape[0] or disparity.device != image_small.device:
            raise InputError(
                f"disparity: expected a batch of {image_small.shape[0]} on {image_small.device} like the "
                f"image, got shape {tuple(disparity.shape)} on {disparity.device}"
            )
        check_finite(disparity, "disparity")
        return disparity.to(image_small.dtype)

    def defocus_network_size(self, height: int, width: int) -> tuple[int, int]:
        """Size (h, w) at which the defocus network runs for a stage-1 image of (height, width).

        The stage-1 size itself unless ``config.defocus_long_side`` is set and exceeded; then the
        image is shrunk, keeping its aspect, to that longer side, both sides in multiples of 32.
        """
        long_side = self.config.defocus_long_side
        if long_side is None or max(height, width) <= long_side:
            return height, width
        scale = long_side / max(height, width)
        return tuple(max(32, round(side * scale / 32) * 32) for side in (height, width))

    def predict_defocus(self, image_small: torch.Tensor) -> torch.Tensor:
        """The defocus network's raw map (N, 1, h, w) for an image (N, 3, h, w) at stage-1 size.

        The network runs at :meth:`defocus_network_size` and its map is upsampled back to (h, w);
        neither ``strength`` nor the clamp is applied.
        """
        return self._predict(image_small)[0]

    def defocus_network_input(self, image_small: torch.Tensor) -> torch.Tensor:
        """A stage-1 image (N, 3, h, w) as the defocus network sees it (:meth:`defocus_network_size`)."""
        network_size = self.defocus_network_size(*image_small.shape[-2:])
        if network_size == tuple(image_small.shape[-2:]):
            return image_small
        return F.interpolate(
            image_small, size=network_size, mode="bilinear", antialias=True, align_corners=False
        )

    def _predict(self, image_small: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """:meth:`predict_defocus`'s map and the (N,) log disparity range (None without a range head)."""
        size = tuple(image_small.shape[-2:])
        network_input = self.defocus_network_input(image_small)
        if self.defocus_net.range_head is None:
            prediction, log_range = self.defocus_net(network_input), None
        else:
            prediction, log_range = self.defocus_net.predict(network_input)
        if tuple(network_input.shape[-2:]) != size:
            prediction = F.interpolate(prediction, size=size, mode="bilinear", align_corners=False)
        return prediction, log_range

    def fuse(
        self,
        image: torch.Tensor,
        defocus: torch.Tensor,
        bokeh_small: torch.Tensor,
        *,
        precision: str = "fp32",
        strip_height: int | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Step 3 alone (for stage-2 training and profiling): fuse stage 1's results with the image.

        Args:
            image: (N, 3, H, W) the sharp input, in [0, 1].
            defocus: (N, 1, h, w) and bokeh_small: (N, 3, h, w), stage 1's results at any resolution.
            precision, strip_height: as for :meth:`forward`.

        Returns:
            ``(bokeh, fusion_mask)``: (N, 3, H, W) and (N, 1, H, W), both in [0, 1].
        """
        image = self._check_image(image)
        _check_options(precision, strip_height)
        for tensor, name, channels in ((defocus, "defocus", 1), (bokeh_small, "bokeh_small", 3)):
            check_tensor(tensor, name, channels=(channels,))
            if tensor.shape[0] != image.shape[0] or tensor.device != image.device:
                raise InputError(
                    f"{name}: expected a batch of {image.shape[0]} on {image.device} like the image, "
                    f"got shape {tuple(tensor.shape)} on {tensor.device}"
                )
        check_same_size(defocus, bokeh_small, "defocus", "bokeh_small")
        return self._fuse(
            image, defocus.to(image.dtype), bokeh_small.to(image.dtype), precision, strip_height
        )

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``model.safetensors`` and ``config.json`` into ``directory``; see :func:`d2f.load`."""
        # checkpoint.py builds D2F models, so it can only be imported once this module is loaded.
        from d2f.models.checkpoint import save_pretrained

        return save_pretrained(self, directory)

    def _check_image(self, image: object) -> torch.Tensor:
        check_tensor(image, "image", channels=(3,))
        parameter = next(self.parameters())
        if image.device != parameter.device:
            raise InputError(f"image: expected the model's device ({parameter.device}), got {image.device}")
        check_finite(image, "image")
        return image.to(parameter.dtype)

    def _blur_scale(
        self, blur_scale: float | torch.Tensor | None, image: torch.Tensor
    ) -> float | torch.Tensor | None:
        """The factor of a relative model's map: a number, or an (N, 1, 1, 1) tensor; None otherwise."""
        if self.config.blur_scale is None:
            if blur_scale is not None:
                raise InputError(
                    "blur_scale: this model predicts D2F defocus itself (its config's blur_scale is None); "
                    "use strength to scale its blur"
                )
            return None
        if blur_scale is None:
            return self.config.blur_scale
        if isinstance(blur_scale, torch.Tensor):
            check_per_image(blur_scale, "blur_scale", image.shape[0])
            return blur_scale.to(image.device, image.dtype).reshape(-1, 1, 1, 1)
        _check_factor("blur_scale", blur_scale)
        return float(blur_scale)

    def _network_precision(self, image: torch.Tensor, precision: str):
        if precision == "bf16":
            return torch.autocast(device_type=image.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _fuse(
        self,
        image: torch.Tensor,
        defocus: torch.Tensor,
        bokeh_small: torch.Tensor,
        precision: str,
        strip_height: int | None,
        bound: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        height, width = image.shape[-2:]
        defocus_up = F.interpolate(defocus, size=(height, width), mode="bilinear", align_corners=False)
        bokeh_up = F.interpolate(bokeh_small, size=(height, width), mode="bilinear", align_corners=False)
        if torch.is_grad_enabled():
            return self._fuse_rows(image, defocus_up, bokeh_up, 0, height, precision, bound)
        if strip_height is None:
            budget = _STRIP_PIXELS.get(image.device.type, _STRIP_PIXELS["default"])
            strip_height = max(16, budget // (image.shape[0] * width))
        bokeh = torch.empty_like(image)
        fusion_mask = torch.empty_like(defocus_up)
        for top in range(0, height, strip_height):
            bottom = min(height, top + strip_height)
            rows = slice(top, bottom)
            bokeh[..., rows, :], fusion_mask[..., rows, :] = self._fuse_rows(
                image, defocus_up, bokeh_up, top, bottom, precision, bound
            )
        return bokeh, fusion_mask

    def _fuse_rows(
        self,
        image: torch.Tensor,
        defocus_up: torch.Tensor,
        bokeh_up: torch.Tensor,
        top: int,
        bottom: int,
        precision: str,
        bound: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Blend and mask of rows ``top:bottom``, computed from inputs widened by the receptive radius.

        With ``bound``, the mask is capped by :func:`sharp_limit` of the defocus, so that the fusion
        keeps input pixels sharp only where the lens keeps them in focus.
        """
        radius = self.fusion_net.receptive_radius
        start, stop = max(0, top - radius), min(image.shape[-2], bottom + radius)
        with self._network_precision(image, precision):
            mask = self.fusion_net(defocus_up[..., start:stop, :], image[..., start:stop, :])
        mask = mask[..., top - start : bottom - start, :].to(image.dtype).clamp(0, 1)
        if bound:
            mask = torch.minimum(mask, sharp_limit(defocus_up[..., top:bottom, :], self.config.kernel_sizes))
        sharp, blurred = image[..., top:bottom, :], bokeh_up[..., top:bottom, :]
        return (mask * sharp + (1 - mask) * blurred).clamp(0, 1), mask


def scale_blur(defocus: torch.Tensor, strength: float, kernel_sizes: tuple[int, ...]) -> torch.Tensor:
    """Defocus whose blur diameter is ``strength`` times that of ``defocus`` (clipped to [0, 1]).

    The diameter beyond the in-focus pixel scales, ``1 + strength * (diameter - 1)``, so 0 is in focus
    everywhere, 0.5 half the blur and 2 twice (up to the renderer's largest kernel).
    """
    diameter = defocus_to_diameter(defocus.clamp(0, 1), kernel_sizes)
    return diameter_to_defocus(1 + strength * (diameter - 1), kernel_sizes)


def scale_kernels(kernel_sizes: tuple[int, ...], scale: float) -> tuple[int, ...]:
    """Kernel diameters ``scale`` times as large, rounded to the nearest odd number of pixels (>= 1)."""
    _check_factor("kernel_scale", scale)
    if scale == 1:
        return kernel_sizes
    return tuple(max(1, 2 * round((size * scale - 1) / 2) + 1) for size in kernel_sizes)


def stretch_per_image(disparity: torch.Tensor) -> torch.Tensor:
    """A predicted disparity (N, 1, h, w) normalised per image, as the network was taught to predict it.

    The :data:`STRETCH_QUANTILES` (1st and 99th percentiles) of each image go to 0 and 1 (clamped
    beyond): the network's sigmoid output covers a narrower range than its per-image normalised
    targets, and the thin lens reads disparity differences, so an unstretched map would blur every
    photo too little.
    """
    flat = disparity.flatten(1).float()
    low, high = (
        torch.quantile(flat, quantile, dim=1).reshape(-1, 1, 1, 1).to(disparity.dtype)
        for quantile in STRETCH_QUANTILES
    )
    return ((disparity - low) / (high - low).clamp_min(1e-6)).clamp(0, 1)


def sharp_limit(defocus: torch.Tensor, kernel_sizes: tuple[int, ...]) -> torch.Tensor:
    """The most of the sharp input the fusion may keep at a defocus: 1 in focus, 0 from one blur level.

    Linear from 1 at defocus 0 to 0 at ``1 / len(kernel_sizes)`` (the smallest kernel): a pixel the
    renderer blurs at all takes its blurred value, so no sharp specks survive inside the blur.
    """
    return (1 - defocus * len(kernel_sizes)).clamp(0, 1)


def _given_range(value: float | torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """A given disparity range as a new (N,) tensor on the image's device, in the image's floating dtype
    (at least float32); finite and >= 0 (tensors are checked outside CUDA-graph capture only)."""
    batch = image.shape[0]
    dtype = torch.promote_types(image.dtype, torch.float32)
    if isinstance(value, torch.Tensor):
        check_per_image(value, "disparity_range", batch)
        return value.detach().to(image.device, dtype).reshape(-1).expand(batch).clone()
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and 0 <= float(value) < math.inf:
        return torch.full((batch,), float(value), device=image.device, dtype=dtype)
    raise InputError(f"disparity_range: expected a finite number >= 0 (1/m) or a tensor, got {value!r}")


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


def _check_options(precision: str, strip_height: int | None) -> None:
    if precision not in PRECISIONS:
        raise InputError(f"precision: expected one of {PRECISIONS}, got {precision!r}")
    if strip_height is not None and (
        isinstance(strip_height, bool) or not isinstance(strip_height, int) or strip_height < 1
    ):
        raise InputError(f"strip_height: expected a positive integer, got {strip_height!r}")


def _check_factor(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
        raise InputError(f"{name}: expected a finite number >= 0, got {value!r}")


def _memory_format(x: torch.Tensor, precision: str) -> torch.Tensor:
    """Channels-last for the defocus network on the bf16 fast path, where GPU convolutions prefer it."""
    return x.contiguous(memory_format=torch.channels_last) if precision == "bf16" else x
