"""Fit a depth model's blur-range head: each photo's disparity range in 1/m, by ridge regression.

A lens blurs a close-up far more than a street at the same f-number because the close-up spans more
inverse metres from front to back. The depth network predicts disparity normalised per photo, which
keeps no scale; :class:`d2f.models.defocus_net.BlurRangeHead` adds it back: one linear layer from the
network's pooled features to ``log R``, ``R`` the span (between the quantiles
:func:`d2f.models.d2f.stretch_per_image` normalises, ``STRETCH_QUANTILES``) of the photo's measured
disparity in 1/m.

It is fitted in closed form on RGB-D photos with metric depth: features standardised, ridge
regression of ``log R``, its penalty chosen by k-fold cross-validation (mean absolute log error), then
the standardisation folded into the layer's weights. ``scripts/fit_blur_range.py`` runs it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from d2f.errors import InputError
from d2f.models.d2f import D2F, STRETCH_QUANTILES


@dataclass(frozen=True)
class RidgeFit:
    """A ridge regression in the original feature units: ``prediction = features @ weight + bias``."""

    weight: np.ndarray
    bias: float
    penalty: float


def disparity_range(disparity: torch.Tensor) -> float:
    """The span (1/m) of a metric disparity map (1, H, W) between the model's ``STRETCH_QUANTILES``."""
    values = disparity.detach().flatten().double().cpu().numpy()
    low, high = np.quantile(values, STRETCH_QUANTILES)
    if not high > low:
        raise InputError("disparity: the map has no depth range (its percentiles are equal)")
    return float(high - low)


@torch.inference_mode()
def photo_features(model: D2F, photo: torch.Tensor) -> torch.Tensor:
    """The pooled features (F,) the range head reads for a photo (3, H, W) in [0, 1], as the model
    sees it: shrunk to its stage-1 size, then to the defocus network's size. The model must be in
    eval mode (batch norm on one photo would use that photo's statistics)."""
    if model.training:
        raise InputError("model: expected eval mode (call model.eval()) to read its features")
    parameter = next(model.parameters())
    image = photo[None].to(parameter.device, parameter.dtype)
    return model.defocus_net.pooled(model.defocus_network_input(model.stage1_image(image)))[0].cpu()


def fit_ridge(features: np.ndarray, targets: np.ndarray, penalty: float) -> RidgeFit:
    """Ridge regression of ``targets`` (M,) on standardised ``features`` (M, F), penalty per sample.

    Minimises ``mean((Z w + b - y)^2) + penalty * |w|^2`` with ``Z`` the features standardised by
    their mean and standard deviation; the result is expressed in the original units.
    """
    features, targets = np.asarray(features, np.float64), np.asarray(targets, np.float64)
    if features.ndim != 2 or targets.shape != (features.shape[0],) or features.shape[0] < 2:
        raise InputError(
            f"features, targets: expected (M, F) and (M,) with M >= 2, got {features.shape} and "
            f"{targets.shape}"
        )
    if not penalty > 0:
        raise InputError(f"penalty: expected a positive number, got {penalty!r}")
    mean, scale = features.mean(axis=0), features.std(axis=0) + 1e-8
    standard = (features - mean) / scale
    count, width = standard.shape
    gram = standard.T @ standard + penalty * count * np.eye(width)
    weight = np.linalg.solve(gram, standard.T @ (targets - targets.mean())) / scale
    return RidgeFit(weight, float(targets.mean() - mean @ weight), float(penalty))


def predict_ridge(fit: RidgeFit, features: np.ndarray) -> np.ndarray:
    return np.asarray(features, np.float64) @ fit.weight + fit.bias


def cross_validate(
    features: np.ndarray, targets: np.ndarray, penalties: tuple[float, ...], *, folds: int = 5, seed: int = 0
) -> dict[float, float]:
    """Mean absolute error of held-out predictions per penalty, over ``folds`` random folds."""
    count = len(targets)
    if not 2 <= folds <= count // 2:
        raise InputError(f"folds: expected 2 to {count // 2} folds for {count} samples, got {folds}")
    fold = np.random.default_rng(seed).permutation(count) % folds
    errors = {}
    for penalty in penalties:
        absolute = np.empty(count)
        for k in range(folds):
            held = fold == k
            fit = fit_ridge(features[~held], targets[~held], penalty)
            absolute[held] = np.abs(predict_ridge(fit, features[held]) - targets[held])
        errors[penalty] = float(absolute.mean())
    return errors


def with_range_head(model: D2F, fit: RidgeFit) -> D2F:
    """A copy of a depth model with a :class:`BlurRangeHead` set to ``fit`` (of log ranges in 1/m)."""
    if not model.config.predicts_depth:
        raise InputError("model: only a model that predicts depth can take a blur-range head")
    config = dataclasses.replace(model.config, blur_range=True)
    result = D2F(config).to(next(model.parameters()).device)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("defocus_net.range_head.")}
    head = result.defocus_net.range_head.linear
    if head.in_features != fit.weight.shape[0]:
        raise InputError(f"fit: expected {head.in_features} weights, got {fit.weight.shape[0]}")
    state["defocus_net.range_head.linear.weight"] = torch.tensor(fit.weight, dtype=torch.float32)[None]
    state["defocus_net.range_head.linear.bias"] = torch.tensor([fit.bias], dtype=torch.float32)
    result.load_state_dict(state)
    return result.eval()


__all__ = [
    "RidgeFit",
    "cross_validate",
    "disparity_range",
    "fit_ridge",
    "photo_features",
    "predict_ridge",
    "with_range_head",
]
