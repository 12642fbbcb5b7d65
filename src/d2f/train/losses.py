"""Training losses of D2F: pure, differentiable functions of (N, C, H, W) tensors in [0, 1].

- stage 1 compares the rendered ``bokeh_small`` with the ground truth by :func:`l1_loss` and
  ``1 - ``:func:`ssim` (and, when the data carries one, the defocus map by :func:`defocus_loss`), and
  keeps the defocus map in the renderer's range with :func:`defocus_range_loss`;
- stage 2 compares the fused output with the ground truth by :func:`l1_loss` and
  :func:`gradient_loss` (the "Poisson" term), and keeps the mask near its binary initialisation with
  :func:`mask_loss`;
- where the data marks its in-focus pixels, :func:`masked_l1_loss` compares images (both stages) and
  defocus maps (stage 1) there alone, so that the subject, often a small part of the frame, weighs as
  much as the background.

All losses are means (over every element, or over the masked pixels), so their scale does not depend on
the batch or image size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from d2f.errors import InputError
from d2f.render.checks import check_same_size, check_tensor

# SSIM's stabilising constants for a data range of 1 (Wang et al. 2004).
_SSIM_C1 = 0.01**2
_SSIM_C2 = 0.03**2


def l1_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of two (N, C, H, W) tensors of the same shape."""
    _check_pair(prediction, target)
    return (prediction - target).abs().mean()


def ssim(
    prediction: torch.Tensor, target: torch.Tensor, *, window_size: int = 11, sigma: float = 1.5
) -> torch.Tensor:
    """Differentiable mean SSIM of (N, C, H, W) images in [0, 1], channel by channel.

    Local statistics use a Gaussian window (``window_size`` x ``window_size``, ``sigma``) over the valid
    region only (no padding), as in Wang et al. 2004. Returns a scalar in [-1, 1], 1 for equal images.
    """
    _check_pair(prediction, target)
    if window_size % 2 == 0 or window_size < 1:
        raise InputError(f"window_size: expected an odd positive integer, got {window_size}")
    if min(prediction.shape[-2:]) < window_size:
        raise InputError(
            f"prediction: SSIM needs images of at least {window_size}x{window_size}, "
            f"got {tuple(prediction.shape[-2:])}"
        )
    channels = prediction.shape[1]
    offsets = torch.arange(window_size, device=prediction.device, dtype=prediction.dtype) - window_size // 2
    gaussian = torch.exp(-(offsets**2) / (2 * sigma**2))
    gaussian = gaussian / gaussian.sum()
    # The 2-D Gaussian is separable: one row pass and one column pass per statistic.
    row = gaussian.view(1, 1, 1, -1).expand(channels, 1, 1, window_size)
    column = gaussian.view(1, 1, -1, 1).expand(channels, 1, window_size, 1)

    def local_mean(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(x, row, groups=channels), column, groups=channels)

    mean_prediction, mean_target = local_mean(prediction), local_mean(target)
    variance_prediction = local_mean(prediction * prediction) - mean_prediction**2
    variance_target = local_mean(target * target) - mean_target**2
    covariance = local_mean(prediction * target) - mean_prediction * mean_target
    numerator = (2 * mean_prediction * mean_target + _SSIM_C1) * (2 * covariance + _SSIM_C2)
    denominator = (mean_prediction**2 + mean_target**2 + _SSIM_C1) * (
        variance_prediction + variance_target + _SSIM_C2
    )
    return (numerator / denominator).mean()


def image_gradients(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward differences of (N, C, H, W): (N, C, H, W - 1) along x, (N, C, H - 1, W) along y."""
    check_tensor(image, "image")
    return image[..., :, 1:] - image[..., :, :-1], image[..., 1:, :] - image[..., :-1, :]


def gradient_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Gradient-domain ("Poisson") loss: mean absolute difference of the images' x and y gradients.

    It is blind to a constant offset and penalises seams: an output whose in-focus region comes from the
    sharp input must blend into the bokeh without a step at the mask's edge.
    """
    _check_pair(prediction, target)
    if min(prediction.shape[-2:]) < 2:
        raise InputError(f"prediction: expected at least 2x2 pixels, got {tuple(prediction.shape[-2:])}")
    prediction_x, prediction_y = image_gradients(prediction)
    target_x, target_y = image_gradients(target)
    return (prediction_x - target_x).abs().mean() + (prediction_y - target_y).abs().mean()


def defocus_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 between a predicted (N, 1, h, w) defocus map and the ground truth (N, 1, H, W), at (h, w).

    The ground truth is resized (bilinear, ``align_corners=False``) to the prediction's size when they
    differ, as the stage-1 images are.
    """
    check_tensor(prediction, "prediction", channels=(1,))
    check_tensor(target, "target", channels=(1,))
    if target.shape[0] != prediction.shape[0]:
        raise InputError(f"target: expected batch size {prediction.shape[0]}, got {target.shape[0]}")
    if target.shape[-2:] != prediction.shape[-2:]:
        target = F.interpolate(target, size=prediction.shape[-2:], mode="bilinear", align_corners=False)
    return (prediction - target).abs().mean()


def masked_l1_loss(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of (N, C, h, w) tensors weighted by a mask (N, 1, H, W) in [0, 1].

    The mask is resized (bilinear, ``align_corners=False``) to (h, w) when the sizes differ, and every
    channel takes its weight. The weighted sum is divided by the mask's total weight (times C), so the
    result is the mean difference over the masked pixels whatever their share of the frame; 0 (still
    differentiable) when the mask is empty.
    """
    _check_pair(prediction, target)
    check_tensor(mask, "mask", channels=(1,))
    if mask.shape[0] != prediction.shape[0]:
        raise InputError(f"mask: expected batch size {prediction.shape[0]}, got {mask.shape[0]}")
    if mask.shape[-2:] != prediction.shape[-2:]:
        mask = F.interpolate(mask, size=prediction.shape[-2:], mode="bilinear", align_corners=False)
    weighted = (mask * (prediction - target).abs()).sum()
    # An empty mask gives 0 / eps = 0 rather than NaN.
    return weighted / (mask.sum() * prediction.shape[1]).clamp_min(1e-8)


def defocus_range_loss(defocus: torch.Tensor) -> torch.Tensor:
    """Mean distance of a defocus map (N, 1, h, w) outside [0, 1], the range the renderer's layers cover."""
    check_tensor(defocus, "defocus", channels=(1,))
    return (F.relu(-defocus) + F.relu(defocus - 1)).mean()


def mask_loss(mask: torch.Tensor, initial_mask: torch.Tensor) -> torch.Tensor:
    """L1 pull of the fusion mask (N, 1, H, W) towards the binary initial focus mask of the same shape."""
    check_tensor(mask, "mask", channels=(1,))
    _check_pair(mask, initial_mask)
    return (mask - initial_mask).abs().mean()


def _check_pair(prediction: torch.Tensor, target: torch.Tensor) -> None:
    check_tensor(prediction, "prediction")
    check_tensor(target, "target")
    check_same_size(prediction, target, "prediction", "target")
    if prediction.shape[1] != target.shape[1]:
        raise InputError(
            f"target: expected {prediction.shape[1]} channels like the prediction, got {target.shape[1]}"
        )


__all__ = [
    "defocus_loss",
    "defocus_range_loss",
    "gradient_loss",
    "image_gradients",
    "l1_loss",
    "mask_loss",
    "masked_l1_loss",
    "ssim",
]
