"""Bokeh of a photo with known depth: the photo cut into layers by CoC, rendered by the scene renderer.

:func:`render_depth_bokeh` turns an all-in-focus photo and its per-pixel signed CoC into a stack of
:class:`~d2f.render.scene.SceneLayer` objects and renders them with
:func:`d2f.render.scene.render_scene` (disk blur per layer, exact "over" compositing in linear
radiance):

- Layer CoCs lie on a grid of ``step`` pixels that contains 0, so the focus plane is a layer of its own
  and stays exactly sharp. A pixel between two grid values is shared between the two layers in
  proportion to its distance from them (as the renderer slices slanted planes), so the blur varies
  smoothly with depth.
- Layer ``k``'s alpha is *cumulative*: 1 wherever the surface is at layer ``k`` or nearer (the farthest
  layer covers the whole canvas). Its colour where nearer layers hide it is unknown in a photo; it is
  filled from the visible pixels of the same or farther layers by a pull-push fill (a smooth
  extrapolation of the surroundings). So a blurred foreground reveals a smooth guess of the background
  at its edges instead of a black hole or its own colour, and a sharp foreground hides it. The guess is
  smooth: fine background texture right behind a strongly blurred near object is lost, and a
  background of two very different colours meets in a soft seam behind it (see docs/training-data.md).
- Highlights: an optional per-pixel ``gain`` multiplies the linear radiance of the blurred layers
  (clipped highlights of a photo were brighter than white), so that they blur into bright disks.
  In-focus layers never get it, so a scene without blur renders the photo itself.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from d2f.errors import InputError
from d2f.render.scene import NO_BLUR_DIAMETER, SceneLayer, render_scene

#: Most layers a photo is cut into, and the smallest CoC step between two layers (pixels).
DEFAULT_MAX_LAYERS = 12
DEFAULT_MIN_STEP = 4.0


def fill_hidden(image: torch.Tensor, known: torch.Tensor, *, reduction: int = 4) -> torch.Tensor:
    """Fill the unknown pixels of ``image`` once per mask, by pull-push (smooth extrapolation).

    The fill is computed at ``1 / reduction`` of the resolution (it is smooth anyway) and upsampled.

    Args:
        image: (3, H, W) colours.
        known: (N, 1, H, W) bool masks: where ``image`` is known for that fill.

    Returns:
        (N, 3, H, W): ``image`` where ``known``, a smooth fill from the known pixels elsewhere
        (black where a mask has no known pixel at all).
    """
    weights = known.to(image.dtype)
    # Pull: average colour (premultiplied by coverage) and coverage over ever larger blocks.
    colours = F.avg_pool2d(image[None] * weights, reduction, ceil_mode=True)
    weights = F.avg_pool2d(weights, reduction, ceil_mode=True)
    levels = []
    while min(colours.shape[-2:]) > 1:
        levels.append((colours, weights))
        colours = F.avg_pool2d(colours, 2, ceil_mode=True)
        weights = F.avg_pool2d(weights, 2, ceil_mode=True)
    estimate = colours / weights.clamp_min(1e-12)
    # Push: each level keeps its known colours in proportion to their coverage and takes the coarser
    # level's estimate for the rest.
    for colours, weights in reversed(levels):
        coarse = F.interpolate(estimate, size=colours.shape[-2:], mode="bilinear", align_corners=False)
        estimate = colours + (1 - weights) * coarse
    estimate = F.interpolate(estimate, size=image.shape[-2:], mode="bilinear", align_corners=False)
    return torch.where(known, image[None], estimate)


def layer_grid(coc: torch.Tensor, max_layers: int = DEFAULT_MAX_LAYERS,
               min_step: float = DEFAULT_MIN_STEP) -> tuple[float, int, int]:
    """The layers' CoC grid for a CoC map: ``(step, first, count)``; layer k has CoC (first + k) * step.

    The step is at least ``min_step`` and large enough that ``count <= max_layers``; 0 is on the grid.
    """
    if isinstance(max_layers, bool) or not isinstance(max_layers, int) or max_layers < 3:
        raise InputError(f"max_layers: expected an integer >= 3, got {max_layers!r}")
    if not (isinstance(min_step, int | float) and math.isfinite(min_step) and min_step > 0):
        raise InputError(f"min_step: expected a positive number, got {min_step!r}")
    low, high = (float(value) for value in torch.aminmax(coc))
    # With the range spanning at most max_layers - 2 steps, rounding both ends out adds at most two.
    step = max(float(min_step), (high - low) / (max_layers - 2))
    first, last = math.floor(low / step), math.ceil(high / step)
    return step, first, last - first + 1


def depth_layers(
    image: torch.Tensor,
    coc: torch.Tensor,
    *,
    gain: torch.Tensor | None = None,
    max_layers: int = DEFAULT_MAX_LAYERS,
    min_step: float = DEFAULT_MIN_STEP,
) -> list[SceneLayer]:
    """Scene layers, back to front, of a photo whose signed CoC is known per pixel.

    Args:
        image: (3, H, W) sRGB in [0, 1].
        coc: (1, H, W) signed CoC diameters in pixels (> 0 in front of the focus plane).
        gain: optional (1, H, W) linear-radiance multiplier >= 1 for highlights (blurred layers only).
        max_layers, min_step: see :func:`layer_grid`.

    Returns:
        The layers (see the module docstring); rendered sharp they give back ``image``.
    """
    if image.dim() != 3 or image.shape[0] != 3:
        raise InputError(f"image: expected shape (3, H, W), got {tuple(image.shape)}")
    if coc.shape != (1, *image.shape[-2:]):
        raise InputError(f"coc: expected shape {(1, *image.shape[-2:])}, got {tuple(coc.shape)}")
    if not bool(torch.isfinite(coc).all()):
        raise InputError("coc: expected finite values, found NaN or inf")
    step, first, count = layer_grid(coc, max_layers, min_step)
    position = ((coc.to(image.dtype) / step) - first).clamp(0, count - 1)  # in layers from the farthest
    # Layer k's colour is known where no nearer layer covers the pixel completely: position < k + 1.
    hidden = [index for index in range(count - 1) if bool((position >= index + 1).any())]
    fills = fill_hidden(image, torch.stack([position < index + 1 for index in hidden])) if hidden else None
    layers = []
    for index in range(count):
        layer_coc = (first + index) * step
        color = fills[hidden.index(index)] if index in hidden else image
        alpha = torch.ones_like(position) if index == 0 else (position - index + 1).clamp(0, 1)
        layer_gain = gain if gain is not None and abs(layer_coc) > NO_BLUR_DIAMETER else None
        layers.append(SceneLayer(color.clamp(0, 1), alpha, layer_coc, layer_gain))
    return layers


def render_depth_bokeh(
    image: torch.Tensor,
    coc: torch.Tensor,
    *,
    margin: int = 0,
    gain: torch.Tensor | None = None,
    max_layers: int = DEFAULT_MAX_LAYERS,
    min_step: float = DEFAULT_MIN_STEP,
) -> torch.Tensor:
    """Bokeh of a photo with a known per-pixel CoC: (3, H - 2 margin, W - 2 margin) sRGB in [0, 1].

    ``image`` and ``coc`` may include a ``margin`` of context around the frame (the scene renderer
    then lets it blur into the frame). See :func:`depth_layers` for the other arguments.
    """
    layers = depth_layers(image, coc, gain=gain, max_layers=max_layers, min_step=min_step)
    return render_scene(layers, margin=margin, slices=1)


def highlight_gain(image: torch.Tensor, strength: float) -> torch.Tensor | None:
    """A (1, H, W) gain for near-saturated pixels of an sRGB photo: ``strength`` where a channel is 1.

    The gain rises from 1 at a brightest channel of 0.92 to ``strength`` at 1 (quadratically), so only
    clipped highlights become lights. None when ``strength`` is 1 or less.
    """
    if strength <= 1:
        return None
    weight = ((image.amax(dim=0, keepdim=True) - 0.92) / 0.08).clamp(0, 1) ** 2
    return 1 + (strength - 1) * weight


__all__ = [
    "DEFAULT_MAX_LAYERS",
    "DEFAULT_MIN_STEP",
    "depth_layers",
    "fill_hidden",
    "highlight_gain",
    "layer_grid",
    "render_depth_bokeh",
]
