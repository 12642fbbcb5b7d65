"""The two training stages of D2F as modules (what DistributedDataParallel wraps) and their losses.

- :class:`Stage1` trains the defocus and radiance networks *through* the weighted layered renderer at
  the stage-1 resolution (half the image size): the rendered ``bokeh_small`` is compared with the
  ground truth resized the same way.
- :class:`Stage2` freezes stage 1 and trains the fusion network at full resolution: the fused output
  ``M * I + (1 - M) * upsample(B_s)`` is compared with the ground truth, and the raw mask is pulled
  towards the paper's binary initial focus mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from d2f.models import D2F, initial_focus_mask
from d2f.train.config import LossConfig
from d2f.train.depth import DepthStage
from d2f.train.losses import (
    defocus_loss,
    defocus_range_loss,
    gradient_loss,
    l1_loss,
    mask_loss,
    masked_l1_loss,
    ssim,
)
from d2f.train.model import freeze_batchnorm


@dataclass
class StageOutput:
    """What a stage computes for a batch (N images of (H, W); stage 1 at (h, w)).

    Attributes:
        prediction: what the loss compares with ``target``: ``bokeh_small`` (stage 1) or the fused
            bokeh (stage 2).
        target: the ground truth at the prediction's size.
        defocus: (N, 1, h, w) hallucinated defocus map.
        bokeh_small: (N, 3, h, w) the layered rendering.
        raw_mask: (N, 1, H, W) unclamped fusion mask (stage 2 only).
        initial_mask: (N, 1, H, W) binary initial focus mask (stage 2 only).
    """

    prediction: torch.Tensor
    target: torch.Tensor
    defocus: torch.Tensor
    bokeh_small: torch.Tensor
    raw_mask: torch.Tensor | None = None
    initial_mask: torch.Tensor | None = None


def resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize (``align_corners=False``, no antialiasing), the rule of D2F's stage 1."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    return F.interpolate(image, size=size, mode="bilinear", align_corners=False)


def render_stage1(
    model: D2F, image_small: torch.Tensor, blur_scale: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Defocus map and layered bokeh of an image already at stage-1 resolution (renderer in fp32).

    The model renders with the defocus map clamped to [0, 1] (``build_model`` sets
    ``clamp_defocus``): outside that range no layer covers a pixel and the normalised rendering divides
    tiny numbers, which wrecks training; the returned map is the raw one, which
    :func:`defocus_range_loss` keeps in range. A relative model (``config.blur_scale`` set) renders at
    ``blur_scale`` (N,), each scene's own (see :func:`scene_blur_scale`), or at its default.
    """
    stage1 = model.render_stage1(image_small, blur_scale=blur_scale)
    return stage1.defocus.float(), stage1.bokeh_small.float()


class Stage1(nn.Module):
    """Defocus and radiance networks learned by rendering; the fusion network is not used.

    With ``batchnorm_frozen`` the encoder's batch-norm statistics stay fixed in training mode.
    """

    def __init__(self, model: D2F, *, batchnorm_frozen: bool = False):
        super().__init__()
        self.model = model
        self.batchnorm_frozen = batchnorm_frozen
        model.fusion_net.requires_grad_(False)

    def train(self, mode: bool = True) -> Stage1:
        super().train(mode)
        if self.batchnorm_frozen:
            freeze_batchnorm(self.model.defocus_net)
        return self

    def forward(
        self, image: torch.Tensor, target: torch.Tensor, blur_scale: torch.Tensor | None = None
    ) -> StageOutput:
        size = self.model.stage1_size(*image.shape[-2:])
        defocus, bokeh_small = render_stage1(self.model, resize(image, size), blur_scale)
        return StageOutput(bokeh_small, resize(target, size), defocus, bokeh_small)


class Stage2(nn.Module):
    """Fusion network at full resolution on top of a frozen stage 1 (kept in eval mode)."""

    def __init__(self, model: D2F):
        super().__init__()
        self.model = model
        model.defocus_net.requires_grad_(False)
        model.radiance_net.requires_grad_(False)

    def train(self, mode: bool = True) -> Stage2:
        super().train(mode)
        self.model.defocus_net.eval()
        self.model.radiance_net.eval()
        return self

    def forward(
        self, image: torch.Tensor, target: torch.Tensor, blur_scale: torch.Tensor | None = None
    ) -> StageOutput:
        height, width = image.shape[-2:]
        with torch.no_grad():
            defocus, bokeh_small = render_stage1(
                self.model, resize(image, self.model.stage1_size(height, width)), blur_scale
            )
        defocus_up = resize(defocus, (height, width))
        bokeh_up = resize(bokeh_small, (height, width))
        raw_mask = self.model.fusion_net(defocus_up, image).float()
        mask = raw_mask.clamp(0, 1)
        bokeh = (mask * image + (1 - mask) * bokeh_up).clamp(0, 1)
        initial = initial_focus_mask(defocus_up, self.model.config.focus_threshold)
        return StageOutput(bokeh, target, defocus, bokeh_small, raw_mask, initial)


def scene_blur_scale(model: D2F, batch: dict[str, torch.Tensor]) -> torch.Tensor | None:
    """Each scene's blur scale (N,) for a relative model: the largest true defocus in its frame.

    That is the defocus of the farthest surface in view, what the aperture sets; None for a model that
    predicts defocus itself, or for data without defocus maps (EBB!), which then render at the
    model's default scale.
    """
    if model.config.blur_scale is None or "defocus" not in batch:
        return None
    return batch["defocus"].float().amax(dim=(1, 2, 3))


def stage_module(
    stage: int | str, model: D2F, *, batchnorm_frozen: bool = False
) -> Stage1 | Stage2 | DepthStage:
    """The trainable module of a stage (1, 2 or ``"depth"``) around ``model`` (shared, not copied)."""
    if stage == "depth":
        return DepthStage(model, batchnorm_frozen=batchnorm_frozen)
    return Stage1(model, batchnorm_frozen=batchnorm_frozen) if stage == 1 else Stage2(model)


def stage_loss(
    weights: LossConfig,
    output: StageOutput,
    defocus_target: torch.Tensor | None = None,
    focus_mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Weighted total loss of a stage's output, and its parts (unweighted, as floats) for logging.

    Stage 1 (no ``raw_mask``): ``l1 * L1 + ssim * (1 - SSIM)`` on the stage-1 bokeh, plus
    ``defocus_range *`` :func:`defocus_range_loss`, plus ``defocus * L1`` on the defocus map when
    ``defocus_target`` is given. Stage 2:
    ``l1 * L1 + gradient * gradient loss`` on the fused output, plus ``mask * L1(raw mask, initial mask)``.
    Given ``focus_mask`` (N, 1, H, W), the data's in-focus share of each pixel: ``focus *`` the L1 of
    the prediction over the in-focus pixels (either stage), and in stage 1 ``focus_defocus *`` that of
    the defocus map (when ``defocus_target`` is given too).
    """
    prediction, target = output.prediction.float(), output.target.float()
    parts = {"l1": l1_loss(prediction, target)}
    if output.raw_mask is None:
        if weights.ssim > 0:
            parts["ssim"] = 1 - ssim(prediction, target)
        if weights.defocus_range > 0:
            parts["defocus_range"] = defocus_range_loss(output.defocus)
        if weights.defocus > 0 and defocus_target is not None:
            parts["defocus"] = defocus_loss(output.defocus, defocus_target.float())
        if weights.focus_defocus > 0 and defocus_target is not None and focus_mask is not None:
            parts["focus_defocus"] = masked_l1_loss(
                output.defocus, resize(defocus_target.float(), output.defocus.shape[-2:]), focus_mask.float()
            )
    else:
        if weights.gradient > 0:
            parts["gradient"] = gradient_loss(prediction, target)
        if weights.mask > 0:
            parts["mask"] = mask_loss(output.raw_mask, output.initial_mask)
    if weights.focus > 0 and focus_mask is not None:
        parts["focus"] = masked_l1_loss(prediction, target, focus_mask.float())
    total = sum(getattr(weights, name) * value for name, value in parts.items())
    return total, {name: float(value.detach()) for name, value in parts.items()}


__all__ = [
    "Stage1",
    "Stage2",
    "StageOutput",
    "render_stage1",
    "resize",
    "scene_blur_scale",
    "stage_loss",
    "stage_module",
]
