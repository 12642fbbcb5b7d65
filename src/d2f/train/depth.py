"""The depth stage: teaching a model that predicts depth (``D2FConfig.predicts == "depth"``).

The defocus network of such a model outputs two maps (see :class:`~d2f.models.D2FConfig`): channel 0,
disparity logits (through a sigmoid: normalised disparity, 0 far, 1 near), and channel 1, focus logits
(a softmax over the pixels: where a photographer would focus). :class:`DepthStage` runs that network
alone, at the size inference runs it, and :func:`depth_stage_loss` supervises both maps:

- ``disparity``: the scale-and-shift-invariant L1 of MiDaS (:func:`ssi_disparity_loss`): prediction
  and target are each standardised by their median and mean absolute deviation, then compared. The
  scale is a magnitude, never negative, so a map upside down (far = large) is an error, as it must be:
  a least-squares alignment would fit it with a negative scale and call it right;
- ``disparity_gradient``: multi-scale gradient matching of the standardised residual
  (:func:`gradient_matching_loss`), which sharpens depth edges;
- ``disparity_anchor``: L1 to the target normalised to [0, 1] without alignment. Inference reads the
  sigmoid as normalised disparity, so the prediction's own range matters and the invariant terms
  alone leave it free;
- ``focus_map``: cross-entropy between the softmax of the focus logits and the data's in-focus mask,
  normalised to a distribution (:func:`focus_map_loss`).

The radiance and fusion networks keep the weights the run starts from. Targets are disparities in any
unit (1/m, stereo pixels): every loss and metric normalises per image. Metrics
(:func:`depth_metrics`) follow the usual relative-depth evaluation: AbsRel and the share of pixels
within 1.25x of the truth after the alignment, and Spearman's rank correlation per image.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from d2f.errors import InputError
from d2f.models import D2F
from d2f.render.checks import check_tensor
from d2f.train.model import freeze_batchnorm

# Per image least squares divides by the prediction's variance; below this it is taken as flat.
_EPSILON = 1e-6

# AbsRel divides by the true disparity; aligned predictions below this share of the image's largest
# true disparity are clamped to it (a depth 100x the nearest, as evaluations cap depth).
_MIN_DISPARITY = 0.01

# Spearman's correlation on at most this many pixels per image (evenly spaced): ranks need a sort.
_SPEARMAN_PIXELS = 65536


@dataclass
class DepthOutput:
    """What :class:`DepthStage` predicts for N images, at the defocus network's size (h, w).

    Attributes:
        disparity: (N, 1, h, w) normalised disparity in (0, 1), near = 1.
        focus_logits: (N, 1, h, w) logits of where to focus (a softmax over each image's pixels).
    """

    disparity: torch.Tensor
    focus_logits: torch.Tensor


class DepthStage(nn.Module):
    """The defocus network of a depth model, run as inference runs it; radiance and fusion frozen.

    For an (H, W) image the network sees the image resized (bilinear, antialiased) to
    ``model.defocus_network_size(*model.stage1_size(H, W))``: a photo of any size reaches it at the
    scale it meets at inference. With ``batchnorm_frozen`` the encoder's batch-norm statistics stay fixed.
    """

    def __init__(self, model: D2F, *, batchnorm_frozen: bool = False):
        super().__init__()
        if not model.config.predicts_depth:
            raise InputError("model: the depth stage trains a model whose config predicts depth")
        self.model = model
        self.batchnorm_frozen = batchnorm_frozen
        model.radiance_net.requires_grad_(False)
        model.fusion_net.requires_grad_(False)

    def train(self, mode: bool = True) -> DepthStage:
        super().train(mode)
        self.model.radiance_net.eval()
        self.model.fusion_net.eval()
        if self.batchnorm_frozen:
            freeze_batchnorm(self.model.defocus_net)
        return self

    def forward(self, image: torch.Tensor) -> DepthOutput:
        """``image``: (N, 3, H, W) in [0, 1] -> :class:`DepthOutput` at the network's size."""
        check_tensor(image, "image", channels=(3,))
        size = self.model.defocus_network_size(*self.model.stage1_size(*image.shape[-2:]))
        if tuple(image.shape[-2:]) != size:
            image = F.interpolate(image, size=size, mode="bilinear", align_corners=False, antialias=True)
        prediction = self.model.defocus_net(image).float()
        return DepthOutput(torch.sigmoid(prediction[:, :1]), prediction[:, 1:2])


# ------------------------------------------------------------------------------------------- losses


def normalise_disparity(disparity: torch.Tensor) -> torch.Tensor:
    """Each image's disparity (N, 1, H, W) mapped to [0, 1] by its own minimum and maximum (near = 1)."""
    low = disparity.amin(dim=(1, 2, 3), keepdim=True)
    high = disparity.amax(dim=(1, 2, 3), keepdim=True)
    return (disparity - low) / (high - low).clamp_min(_EPSILON)


def align_scale_shift(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``s * prediction + t`` with (s, t) per image minimising the squared error to ``target``.

    Both (N, 1, H, W) of one size. The solution is differentiable in ``prediction``; a flat prediction
    gets s = 0 and t = the target's mean.
    """
    _check_maps(prediction, target)
    dims = (1, 2, 3)
    prediction_mean = prediction.mean(dim=dims, keepdim=True)
    target_mean = target.mean(dim=dims, keepdim=True)
    centred = prediction - prediction_mean
    variance = (centred * centred).mean(dim=dims, keepdim=True)
    covariance = (centred * (target - target_mean)).mean(dim=dims, keepdim=True)
    scale = covariance / variance.clamp_min(_EPSILON)
    return scale * centred + target_mean


def standardise_disparity(disparity: torch.Tensor) -> torch.Tensor:
    """Each map (N, 1, H, W) minus its median, divided by its mean absolute deviation from it.

    Invariant to shift and to a positive scale only: ``standardise(-x) = -standardise(x)``. A flat
    map stays 0 (no NaN).
    """
    flat = disparity.flatten(1)
    median = flat.median(dim=1, keepdim=True).values
    deviation = (flat - median).abs().mean(dim=1, keepdim=True)
    return ((flat - median) / deviation.clamp_min(_EPSILON)).reshape(disparity.shape)


def ssi_disparity_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Scale-and-shift-invariant L1 (MiDaS): mean |standardise(prediction) - standardise(target)|.

    Both (N, 1, H, W); the same loss for disparities in any unit, and large for a prediction whose
    near and far are swapped (:func:`standardise_disparity`).
    """
    return _standardised_residual(prediction, target).abs().mean()


def gradient_matching_loss(prediction: torch.Tensor, target: torch.Tensor, scales: int = 4) -> torch.Tensor:
    """Multi-scale gradient matching (MiDaS): the mean absolute x and y differences of the residual
    ``standardise(prediction) - standardise(target)``, on the maps subsampled by 1, 2, 4, ...
    (``scales`` levels), averaged over the levels."""
    return _residual_gradient_loss(_standardised_residual(prediction, target), scales)


def _standardised_residual(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``standardise(prediction) - standardise(target)`` for two (N, 1, H, W) maps: what both
    invariant losses measure, computed once when both are used."""
    _check_maps(prediction, target)
    return standardise_disparity(prediction) - standardise_disparity(target)


def _residual_gradient_loss(residual: torch.Tensor, scales: int = 4) -> torch.Tensor:
    """The gradient-matching term of a standardised residual (see :func:`gradient_matching_loss`)."""
    total = residual.new_zeros(())
    for level in range(scales):
        step = 2**level
        sampled = residual[..., ::step, ::step]
        if min(sampled.shape[-2:]) < 2:
            break
        total = total + (sampled[..., :, 1:] - sampled[..., :, :-1]).abs().mean()
        total = total + (sampled[..., 1:, :] - sampled[..., :-1, :]).abs().mean()
    return total / scales


def focus_map_loss(focus_logits: torch.Tensor, focus_mask: torch.Tensor) -> torch.Tensor:
    """Cross-entropy between the softmax of ``focus_logits`` (N, 1, h, w) over each image's pixels and
    ``focus_mask`` (N, 1, H, W) >= 0 normalised to sum to 1 (resized to (h, w) first).

    Images whose mask is empty have no focus target and are left out; 0 when every mask is empty.
    """
    check_tensor(focus_logits, "focus_logits", channels=(1,))
    check_tensor(focus_mask, "focus_mask", channels=(1,))
    if focus_mask.shape[0] != focus_logits.shape[0]:
        raise InputError(
            f"focus_mask: expected batch size {focus_logits.shape[0]}, got {focus_mask.shape[0]}"
        )
    if focus_mask.shape[-2:] != focus_logits.shape[-2:]:
        focus_mask = F.interpolate(focus_mask, size=focus_logits.shape[-2:], mode="area")
    weights = focus_mask.flatten(1).clamp_min(0)
    totals = weights.sum(dim=1)
    present = totals > _EPSILON
    if not present.any():
        return focus_logits.sum() * 0.0
    distribution = weights[present] / totals[present, None]
    log_probabilities = torch.log_softmax(focus_logits.flatten(1)[present].float(), dim=1)
    return -(distribution * log_probabilities).sum(dim=1).mean()


def depth_stage_loss(
    weights, output: DepthOutput, disparity: torch.Tensor, focus_mask: torch.Tensor | None
) -> tuple[torch.Tensor, dict[str, float]]:
    """Weighted total loss of the depth stage and its parts (unweighted floats, for logging).

    Args:
        weights: a :class:`~d2f.train.config.LossConfig` (``disparity``, ``disparity_gradient``,
            ``disparity_anchor``, ``focus_map``).
        output: the stage's prediction at (h, w).
        disparity: (N, 1, H, W) true disparity in any unit (near = large); resized to (h, w).
        focus_mask: (N, 1, H, W) the data's in-focus share of each pixel, or None.
    """
    target = F.interpolate(disparity.float(), size=output.disparity.shape[-2:], mode="area")
    parts = {}
    if weights.disparity > 0 or weights.disparity_gradient > 0:
        residual = _standardised_residual(output.disparity, target)
    if weights.disparity > 0:
        parts["disparity"] = residual.abs().mean()
    if weights.disparity_gradient > 0:
        parts["disparity_gradient"] = _residual_gradient_loss(residual)
    if weights.disparity_anchor > 0:
        parts["disparity_anchor"] = (output.disparity - normalise_disparity(target)).abs().mean()
    if weights.focus_map > 0 and focus_mask is not None:
        parts["focus_map"] = focus_map_loss(output.focus_logits, focus_mask.float())
    total = output.disparity.new_zeros(())
    for name, value in parts.items():
        total = total + getattr(weights, name) * value
    return total, {name: float(value.detach()) for name, value in parts.items()}


# ------------------------------------------------------------------------------------------ metrics


def depth_metrics(prediction: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per image accuracy of a predicted disparity against the truth (both (N, 1, H, W), near = large).

    The target is divided by its maximum (a disparity keeps 0 at infinity, so ratios stay
    meaningful), the prediction aligned to it by scale and shift (:func:`align_scale_shift`) and
    clamped to at least 1 % of it; then, in depth (1 / disparity):

    - ``absrel``: mean |predicted - true| / true;
    - ``delta1``: share of pixels with max(predicted / true, true / predicted) < 1.25;
    - ``spearman``: Spearman's rank correlation of prediction and truth (before alignment; it ignores
      any increasing mapping).

    Returns a dict of (N,) tensors.
    """
    _check_maps(prediction, target)
    prediction, target = prediction.double(), target.double()
    target = target / target.amax(dim=(1, 2, 3), keepdim=True).clamp_min(_EPSILON)
    aligned = align_scale_shift(prediction, target).clamp_min(_MIN_DISPARITY)
    target = target.clamp_min(_MIN_DISPARITY)
    predicted_depth, true_depth = 1 / aligned, 1 / target
    absrel = ((predicted_depth - true_depth).abs() / true_depth).mean(dim=(1, 2, 3))
    ratio = torch.maximum(predicted_depth / true_depth, true_depth / predicted_depth)
    delta1 = (ratio < 1.25).double().mean(dim=(1, 2, 3))
    return {"absrel": absrel, "delta1": delta1, "spearman": spearman(prediction, target)}


def spearman(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Spearman's rank correlation (N,) of two (N, 1, H, W) maps per image (ties ranked by position).

    Images with more than 65536 pixels are subsampled evenly.
    """
    _check_maps(prediction, target)
    flat_prediction, flat_target = prediction.flatten(1), target.flatten(1)
    stride = max(1, -(-flat_prediction.shape[1] // _SPEARMAN_PIXELS))
    flat_prediction, flat_target = flat_prediction[:, ::stride], flat_target[:, ::stride]
    ranks = [_ranks(values).double() for values in (flat_prediction, flat_target)]
    centred = [rank - rank.mean(dim=1, keepdim=True) for rank in ranks]
    numerator = (centred[0] * centred[1]).sum(dim=1)
    denominator = (centred[0].square().sum(dim=1) * centred[1].square().sum(dim=1)).sqrt()
    return numerator / denominator.clamp_min(_EPSILON)


def orient_disparity(model: D2F, items: Iterable[dict]) -> bool:
    """Make ``model``'s disparity grow towards the camera, as inference reads it; True if it was flipped.

    A safeguard of the recipe: the standardised losses penalise a map upside down, but a run with other
    losses (a least-squares alignment fits a negative scale as well) can learn it so. The rule: the mean
    Spearman correlation of the predicted and true disparity over ``items`` (training items, never
    held-out ones) decides; where it is negative, channel 0 of the head's last convolution is negated,
    which turns ``sigmoid(x)`` into ``sigmoid(-x) = 1 - sigmoid(x)`` exactly: the same map, flipped.
    """
    if not model.config.predicts_depth:
        raise InputError("model: only a model that predicts depth has a disparity to orient")
    stage = DepthStage(model).eval()
    correlations = []
    with torch.no_grad():
        for item in items:
            prediction = stage(item["image"][None]).disparity
            target = F.interpolate(item["disparity"][None], size=prediction.shape[-2:], mode="bilinear")
            correlations.append(float(spearman(prediction, target)[0]))
    if not correlations:
        raise InputError("items: expected at least one training item to orient the disparity by")
    if sum(correlations) >= 0:
        return False
    last = model.defocus_net.head.conv3
    with torch.no_grad():
        last.weight[0].neg_()
        last.bias[0].neg_()
    return True


def _ranks(values: torch.Tensor) -> torch.Tensor:
    order = values.argsort(dim=1)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(values.shape[1], device=values.device).expand_as(order))
    return ranks


def _check_maps(prediction: torch.Tensor, target: torch.Tensor) -> None:
    check_tensor(prediction, "prediction", channels=(1,))
    check_tensor(target, "target", channels=(1,))
    if prediction.shape != target.shape:
        raise InputError(
            f"target: expected the prediction's shape {tuple(prediction.shape)}, got {tuple(target.shape)}"
        )


__all__ = [
    "DepthOutput",
    "DepthStage",
    "align_scale_shift",
    "depth_metrics",
    "depth_stage_loss",
    "focus_map_loss",
    "gradient_matching_loss",
    "normalise_disparity",
    "orient_disparity",
    "spearman",
    "ssi_disparity_loss",
    "standardise_disparity",
]
