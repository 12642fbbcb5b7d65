"""Image quality measures for bokeh rendering, under one fixed protocol.

Protocol (so that numbers compare with published EBB! tables): outputs are quantised to 8-bit RGB and
measured on the full image; PSNR over all three channels with a peak of 255; SSIM as scikit-image
computes it on RGB (``channel_axis``, default 7x7 uniform window, ``data_range=255``).

EBB! pairs are neither pixel-aligned nor equally exposed, so PSNR barely rewards a sharp subject. Two
structural measures use a subject mask instead; both rest on the Laplacian energy ``E``, the mean squared
Laplacian of the grey image (mean of R, G, B) after a Gaussian of sigma 1 px:

- **subject sharpness** = E(output) / E(input) inside the subject eroded by 15 px (near 1 is good; a
  blurred subject scores near 0);
- **background blur match** = [E(output) / E(input)] / [E(ground truth) / E(input)] outside the subject,
  eroded by 40 px (near 1: the background is as blurred as in the ground truth).

A measure whose region is empty after erosion is NaN.

Real-lens pairs have no mask everywhere, and PSNR cannot tell *where* a rendering blurred. **Blur-map
agreement** asks whether the output blurs where, and in the same order, as the lens did. The frame is
cut into 32 px tiles (a partial last row or column of tiles is left out); each tile gets a sharpness
``S``, the mean absolute value of the Laplacian above (after the sigma-1 px Gaussian: without it,
sensor noise and JPEG blocks set a floor under the sharpness of blurred tiles, and a uniform blur then
agrees with the lens wherever the input had the most detail). Over the *textured* tiles (input
sharpness above its 25th percentile: flat sky or walls say nothing about blur) the agreement is the
Spearman rank correlation of ``log(S_output / S_input)`` with ``log(S_target / S_input)``. 1: the
output loses sharpness in exactly the lens's order; near 0: unrelated, as for a uniform blur of a
scene whose blur varies; negative: the opposite order. Log ratios make it blind to a global change of
contrast or exposure between the photos. On real photos a uniform blur still shares part of the lens's
order (how much sharpness a tile loses depends on its detail too), so read it against the gaussian
baseline's.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy import ndimage
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from d2f.errors import InputError

#: Erosion, in pixels, of the subject mask before measuring subject sharpness.
SUBJECT_EROSION = 15
#: Erosion, in pixels, of the background (the mask's complement) before measuring blur match.
BACKGROUND_EROSION = 40
#: Sigma, in pixels, of the Gaussian applied before the Laplacian.
LAPLACIAN_SIGMA = 1.0
#: Side, in pixels, of the square tiles of :func:`tile_sharpness`.
TILE_SIZE = 32
#: Tiles whose input sharpness is at or below this percentile are untextured and not compared.
TEXTURE_PERCENTILE = 25.0
# Keeps log ratios finite where a tile is perfectly flat (sharpness is in grey levels of [0, 1]).
_SHARPNESS_FLOOR = 1e-6


def psnr(output: np.ndarray, target: np.ndarray) -> float:
    """PSNR in dB of two (H, W, 3) uint8 images over all channels (inf when they are equal)."""
    _check_pair(output, target)
    if np.array_equal(output, target):
        return float("inf")
    return float(peak_signal_noise_ratio(target, output, data_range=255))


def ssim(output: np.ndarray, target: np.ndarray) -> float:
    """scikit-image's SSIM of two (H, W, 3) uint8 images: 7x7 uniform window, channels averaged."""
    _check_pair(output, target)
    if min(output.shape[:2]) < 7:
        raise InputError(f"image: SSIM needs at least 7x7 pixels, got {output.shape[1]}x{output.shape[0]}")
    return float(structural_similarity(target, output, channel_axis=2, data_range=255))


def laplacian_map(image: np.ndarray) -> np.ndarray:
    """(H, W) float64 Laplacian of the grey image (mean of R, G, B in [0, 1]) after a sigma-1 Gaussian."""
    _check_image(image, "image")
    grey = image.astype(np.float64).mean(axis=2) / 255.0
    return ndimage.laplace(ndimage.gaussian_filter(grey, LAPLACIAN_SIGMA))


def subject_regions(subject_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(subject, background) boolean regions: the mask eroded by 15 px and its complement eroded by 40 px.

    Args:
        subject_mask: (H, W) array; values >= 128 (uint8) or >= 0.5 (float, bool) mark the subject.
    """
    if not isinstance(subject_mask, np.ndarray) or subject_mask.ndim != 2:
        raise InputError(
            f"subject_mask: expected an (H, W) array, got {getattr(subject_mask, 'shape', None)}"
        )
    threshold = 128 if subject_mask.dtype == np.uint8 else 0.5
    subject = subject_mask >= threshold
    return _erode(subject, SUBJECT_EROSION), _erode(~subject, BACKGROUND_EROSION)


def _erode(region: np.ndarray, radius: int) -> np.ndarray:
    """Erosion by a disk: keep the pixels farther than ``radius`` from the rest of the image."""
    if region.all():  # nothing to erode from (the image border does not count)
        return region.copy()
    return ndimage.distance_transform_edt(region) > radius


def laplacian_energy(image: np.ndarray, region: np.ndarray) -> float:
    """E: mean squared Laplacian (see :func:`laplacian_map`) over a boolean region; NaN when it is empty."""
    if region.shape != image.shape[:2]:
        raise InputError(f"region: expected shape {image.shape[:2]}, got {region.shape}")
    return _mean_over(laplacian_map(image) ** 2, region)


class StructuralMeasures(NamedTuple):
    """Subject sharpness and background blur match of one output (both near 1 for a good result)."""

    subject_sharpness: float
    background_blur_match: float


def structural_measures(
    output: np.ndarray, image: np.ndarray, target: np.ndarray, subject_mask: np.ndarray
) -> StructuralMeasures:
    """Subject sharpness and background blur match of ``output`` (see the module's docstring).

    Args:
        output, image, target: (H, W, 3) uint8 rendered result, sharp input and ground-truth bokeh.
        subject_mask: (H, W) mask of the in-focus subject (see :func:`subject_regions`).
    """
    _check_pair(output, image, "image")
    _check_pair(output, target)
    if not isinstance(subject_mask, np.ndarray) or subject_mask.shape != image.shape[:2]:
        shape = getattr(subject_mask, "shape", None)
        raise InputError(f"subject_mask: expected shape {image.shape[:2]} like the image, got {shape}")
    subject, background = subject_regions(subject_mask)
    laplacians = (laplacian_map(x) for x in (output, image, target))
    return structural_measures_of_maps(*laplacians, subject, background)


def structural_measures_of_maps(
    output_laplacian: np.ndarray,
    input_laplacian: np.ndarray,
    target_laplacian: np.ndarray,
    subject: np.ndarray,
    background: np.ndarray,
) -> StructuralMeasures:
    """:func:`structural_measures` from the three images' :func:`laplacian_map` and the two regions of
    :func:`subject_regions` (all (H, W)), for measuring several outputs of one pair without repeating
    the work."""
    if not (
        output_laplacian.shape
        == input_laplacian.shape
        == target_laplacian.shape
        == subject.shape
        == background.shape
    ):
        raise InputError("maps and regions: expected equal (H, W) shapes")
    output_energy, input_energy, target_energy = (
        x**2 for x in (output_laplacian, input_laplacian, target_laplacian)
    )
    sharpness = _ratio(_mean_over(output_energy, subject), _mean_over(input_energy, subject))
    output_change = _ratio(_mean_over(output_energy, background), _mean_over(input_energy, background))
    target_change = _ratio(_mean_over(target_energy, background), _mean_over(input_energy, background))
    return StructuralMeasures(sharpness, _ratio(output_change, target_change))


def tile_sharpness(image: np.ndarray, tile: int = TILE_SIZE) -> np.ndarray:
    """Sharpness per tile: the mean of ``|laplacian_map(image)|`` over each ``tile`` px square.

    Args:
        image: (H, W, 3) uint8, at least one tile in each direction.

    Returns:
        (H // tile, W // tile) float64 sharpness >= 0 (the partial last row and column are left out).
    """
    _check_image(image, "image")
    return sharpness_of_laplacian(laplacian_map(image), tile)


def sharpness_of_laplacian(laplacian: np.ndarray, tile: int = TILE_SIZE) -> np.ndarray:
    """:func:`tile_sharpness` from the image's (H, W) :func:`laplacian_map`."""
    rows, columns = laplacian.shape[0] // tile, laplacian.shape[1] // tile
    if rows == 0 or columns == 0:
        raise InputError(
            f"image: expected at least {tile}x{tile} pixels for tiles of {tile} px, "
            f"got {laplacian.shape[1]}x{laplacian.shape[0]}"
        )
    magnitude = np.abs(laplacian[: rows * tile, : columns * tile])
    return magnitude.reshape(rows, tile, columns, tile).mean(axis=(1, 3))


def textured_tiles(input_sharpness: np.ndarray) -> np.ndarray:
    """Boolean tiles whose input sharpness is above its 25th percentile (see :func:`tile_sharpness`)."""
    return input_sharpness > np.percentile(input_sharpness, TEXTURE_PERCENTILE)


def sharpness_change(sharpness: np.ndarray, input_sharpness: np.ndarray) -> np.ndarray:
    """``log(S / S_input)`` per tile: 0 where a tile kept its sharpness, negative where it was blurred."""
    return np.log((sharpness + _SHARPNESS_FLOOR) / (input_sharpness + _SHARPNESS_FLOOR))


def rank_correlation(values: np.ndarray, reference: np.ndarray) -> float:
    """Spearman's rank correlation of two 1-D arrays (ties take their average rank).

    NaN when ``reference`` is constant or has fewer than 2 values (there is no order to follow); 0 when
    only ``values`` is constant (it follows none of the reference's order).
    """
    values, reference = np.asarray(values, np.float64).ravel(), np.asarray(reference, np.float64).ravel()
    if values.shape != reference.shape:
        raise InputError(f"values: expected {reference.size} values like the reference, got {values.size}")
    if reference.size < 2 or np.all(reference == reference[0]):
        return float("nan")
    if np.all(values == values[0]):
        return 0.0
    value_ranks, reference_ranks = _average_ranks(values), _average_ranks(reference)
    value_ranks -= value_ranks.mean()
    reference_ranks -= reference_ranks.mean()
    norm = math.sqrt(float(value_ranks @ value_ranks) * float(reference_ranks @ reference_ranks))
    return float(np.clip(value_ranks @ reference_ranks / norm, -1.0, 1.0))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    first_rank = np.cumsum(counts) - counts
    return (first_rank + (counts - 1) / 2.0)[inverse.ravel()]


def blur_map_agreement(output: np.ndarray, image: np.ndarray, target: np.ndarray) -> float:
    """Whether ``output`` blurs where, and in the same order, as ``target`` (see the module docstring).

    Args:
        output, image, target: (H, W, 3) uint8 rendered result, sharp input and real-lens photo.

    Returns:
        Spearman correlation in [-1, 1] over the textured tiles (1 for the target itself, near 0 for a
        uniform blur; 0 for an output whose tiles all changed alike, e.g. the input itself); NaN when
        the target's changes are all equal (no lens blur to follow).
    """
    _check_pair(output, image, "image")
    _check_pair(output, target)
    return tile_agreement(tile_sharpness(output), tile_sharpness(image), tile_sharpness(target))


def tile_agreement(
    output_sharpness: np.ndarray, input_sharpness: np.ndarray, target_sharpness: np.ndarray
) -> float:
    """:func:`blur_map_agreement` from the three images' :func:`tile_sharpness` maps (equal shapes)."""
    if not output_sharpness.shape == input_sharpness.shape == target_sharpness.shape:
        raise InputError(
            f"tile maps: expected equal shapes, got {output_sharpness.shape}, {input_sharpness.shape} "
            f"and {target_sharpness.shape}"
        )
    textured = textured_tiles(input_sharpness)
    return rank_correlation(
        sharpness_change(output_sharpness, input_sharpness)[textured],
        sharpness_change(target_sharpness, input_sharpness)[textured],
    )


def _mean_over(values: np.ndarray, region: np.ndarray) -> float:
    return float(values[region].mean()) if region.any() else float("nan")


def _ratio(numerator: float, denominator: float) -> float:
    if not np.isfinite(numerator) or not np.isfinite(denominator) or denominator == 0:
        return float("nan")
    return numerator / denominator


def _check_image(image: np.ndarray, name: str) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        description = (
            f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        )
        raise InputError(f"{name}: expected an (H, W, 3) uint8 array, got {description}")


def _check_pair(output: np.ndarray, other: np.ndarray, other_name: str = "target") -> None:
    _check_image(output, "output")
    _check_image(other, other_name)
    if output.shape != other.shape:
        raise InputError(f"output: size {output.shape[:2]} differs from the {other_name}'s {other.shape[:2]}")


__all__ = [
    "BACKGROUND_EROSION",
    "LAPLACIAN_SIGMA",
    "SUBJECT_EROSION",
    "TEXTURE_PERCENTILE",
    "TILE_SIZE",
    "StructuralMeasures",
    "blur_map_agreement",
    "laplacian_energy",
    "laplacian_map",
    "psnr",
    "rank_correlation",
    "sharpness_change",
    "sharpness_of_laplacian",
    "ssim",
    "structural_measures",
    "structural_measures_of_maps",
    "subject_regions",
    "textured_tiles",
    "tile_agreement",
    "tile_sharpness",
]
