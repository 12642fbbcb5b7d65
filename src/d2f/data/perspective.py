"""Perspective scenes: a camera over a textured ground, with walls, a far backdrop, objects and lights.

Where :mod:`d2f.data.synthetic` draws fronto-parallel planes, these scenes are built like a photograph
of a street, a park or a hall, so that blur grows with distance the way a camera sees it:

- A pinhole camera (horizontal field of view 40-75 degrees) at 0.3-2.2 m over a flat ground, pitched
  so that the horizon falls anywhere from above the frame to its lower half. The ground is a photo or
  procedural texture laid on the plane (perspective-correct, with mip-mapping, so that it shrinks and
  compresses towards the horizon); its disparity grows linearly from 0 at the horizon to the bottom.
- Sometimes a facade across the view at 4-60 m, side walls along the view (a street or a corridor),
  and a far backdrop (hills, a treeline or a skyline) at 150-2000 m before a sky.
- 2-10 objects standing on the ground at graded depths: people, cut-outs, shapes, poles and posts
  (some carrying a lamp), their size in pixels ``focal * size / depth`` (proportional to disparity).
  The first is the subject, near the centre.
- Haze growing with distance; small lights (linear radiance 2-10 times white) in groups at various
  depths, their size following their depth.
- The lens focuses on the subject (2 in 3 scenes) or on a point of the ground, and the largest CoC in
  the frame is drawn uniformly up to 140 px (D2F's largest kernel at half resolution, times
  ``kernel_scale``), so that the background blur spans what fast lenses give.

Ground, walls and facade are planes whose disparity is affine in the pixel coordinates; the renderer
slices them (:data:`~d2f.render.scene.DEFAULT_SLICES`). Everything else is fronto-parallel. Outputs are
those of :func:`d2f.data.synthetic.generate_scene`: ``image``, ``bokeh``, ``defocus``, ``coc``,
``disparity`` (1/m), ``focus_mask`` and ``params``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from d2f.data.shapes import person_mask, random_shape
from d2f.data.textures import TextureBank, procedural_texture, resolve_textures
from d2f.data.transforms import check_size
from d2f.errors import InputError
from d2f.render.kernels import diameter_to_defocus
from d2f.render.scene import DEFAULT_SLICES, SceneLayer, in_focus_coverage, render_scene

#: Depth of the sky (m): its disparity is 1 / SKY_DEPTH, and the ground goes no farther.
SKY_DEPTH = 5000.0

#: Largest CoC diameter in a frame, full-resolution pixels, at kernel_scale 1 (D2F's 70 px at half size).
MAX_COC = 140.0

#: Share of scenes focused on the subject object (the rest focus on a point of the ground).
SUBJECT_FOCUS_PROBABILITY = 2 / 3

#: Objects on the ground and their shares.
OBJECT_KINDS = {"person": 0.25, "cutout": 0.2, "shape": 0.25, "pole": 0.2, "tree": 0.1}

Size = tuple[int, int]


@dataclass(frozen=True)
class Camera:
    """A pinhole camera over a flat ground, pitched down by ``pitch`` radians (negative: up).

    Attributes:
        focal: focal length in pixels.
        centre: (row, column) of the principal point on the canvas.
        height: metres above the ground.
        pitch: radians.

    World coordinates: the camera at the origin, X right, Y down (the ground is Y = height),
    Z forward and level.
    """

    focal: float
    centre: tuple[float, float]
    height: float
    pitch: float

    @property
    def horizon_row(self) -> float:
        """The canvas row of the horizon."""
        return self.centre[0] - self.focal * math.tan(self.pitch)

    def rays(self, canvas: Size) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """World direction (X, Y, Z) of each pixel's ray, scaled to unit camera depth: 3 x (H, W)."""
        rows = (torch.arange(canvas[0], dtype=torch.float32)[:, None] + 0.5 - self.centre[0]) / self.focal
        columns = (torch.arange(canvas[1], dtype=torch.float32)[None, :] + 0.5 - self.centre[1]) / self.focal
        cosine, sine = math.cos(self.pitch), math.sin(self.pitch)
        x = columns.expand(canvas)
        y = (rows * cosine + sine).expand(canvas)
        z = (cosine - rows * sine).expand(canvas)
        return x, y, z

    def ground_row(self, depth: float) -> float:
        """The canvas row where the ground lies at camera depth ``depth`` (the foot of an object there)."""
        y = (self.height / depth - math.sin(self.pitch)) / math.cos(self.pitch)
        return self.centre[0] + self.focal * y - 0.5

    def column(self, x: float, depth: float) -> float:
        """The canvas column of lateral position ``x`` (m) at camera depth ``depth``."""
        return self.centre[1] + self.focal * x / depth - 0.5


def plane_disparity(camera: Camera, canvas: Size, normal: Sequence[float], offset: float) -> torch.Tensor:
    """Disparity (1/m, (1, H, W)) of the world plane ``normal . P = offset`` seen at each pixel.

    Affine in the pixel coordinates; <= 0 where the plane is not in front of the camera.
    """
    x, y, z = camera.rays(canvas)
    return ((normal[0] * x + normal[1] * y + normal[2] * z) / offset)[None]


def ground_disparity(camera: Camera, canvas: Size) -> torch.Tensor:
    """Disparity of the ground (1, H, W): 0 above the horizon, growing linearly below it, at least
    ``1 / SKY_DEPTH`` below the horizon (the ground goes no farther than the sky)."""
    disparity = plane_disparity(camera, canvas, (0.0, 1.0, 0.0), camera.height)
    return torch.where(disparity > 0, disparity.clamp_min(1 / SKY_DEPTH), torch.zeros_like(disparity))


# ------------------------------------------------------------------------------------ textured planes


def _pyramid(texture: torch.Tensor) -> list[torch.Tensor]:
    """The texture and its halvings down to a few pixels (for mip-mapping)."""
    levels = [texture]
    while min(levels[-1].shape[-2:]) > 4:
        levels.append(F.avg_pool2d(levels[-1][None], 2)[0])
    return levels


def _mirrored(coordinate: torch.Tensor) -> torch.Tensor:
    """Coordinates in tiles mapped to [-1, 1] by repeating the texture mirrored (no seams)."""
    phase = torch.remainder(coordinate, 2.0)
    return torch.where(phase > 1, 2 - phase, phase) * 2 - 1


def _sample(
    pyramid: list[torch.Tensor], s: torch.Tensor, t: torch.Tensor, valid: torch.Tensor
) -> torch.Tensor:
    """Texture (3, H, W) at tile coordinates (s, t) (H, W), mip-mapped by their footprint, on ``valid``."""
    side = pyramid[0].shape[-1]
    # Texels per pixel: the larger of the coordinates' steps along rows and columns.
    step = torch.zeros_like(s)
    for coordinate in (s, t):
        for dim in (0, 1):
            difference = torch.diff(coordinate, dim=dim, append=coordinate.narrow(dim, -1, 1) * 2
                                    - coordinate.narrow(dim, -2, 1)).abs()
            step = torch.maximum(step, difference)
    level = torch.log2((step * side).clamp_min(1.0)).clamp(max=len(pyramid) - 1)
    result = torch.zeros(3, *s.shape)
    if not bool(valid.any()):
        return result
    level = torch.where(valid, level, torch.zeros_like(level))
    grid = torch.stack([_mirrored(s), _mirrored(t)], dim=-1)[None]
    lowest, highest = int(level[valid].min()), math.ceil(float(level[valid].max()))
    for index in range(lowest, min(highest, len(pyramid) - 1) + 1):
        weight = (1 - (level - index).abs()).clamp_min(0) * valid
        rows = torch.nonzero(weight.amax(dim=1) > 0)
        if rows.numel() == 0:
            continue
        top, bottom = int(rows[0]), int(rows[-1]) + 1
        columns = torch.nonzero(weight[top:bottom].amax(dim=0) > 0)
        left, right = int(columns[0]), int(columns[-1]) + 1
        sampled = F.grid_sample(pyramid[index][None], grid[:, top:bottom, left:right], mode="bilinear",
                                padding_mode="border", align_corners=False)[0]
        result[:, top:bottom, left:right] += sampled * weight[top:bottom, left:right]
    return result


def _edge(coordinate: torch.Tensor, bound: float, above: bool) -> torch.Tensor:
    """Anti-aliased coverage of ``coordinate >= bound`` (``above``) or ``<= bound``, over about a pixel."""
    step = torch.zeros_like(coordinate)
    for dim in (0, 1):
        difference = torch.diff(coordinate, dim=dim, prepend=coordinate.narrow(dim, 0, 1))
        step = torch.maximum(step, difference.abs())
    distance = (coordinate - bound) if above else (bound - coordinate)
    return (distance / step.clamp_min(1e-6) + 0.5).clamp(0, 1)


@dataclass
class _Plane:
    """A textured rectangle of a world plane, with its disparity map and coverage on the canvas."""

    color: torch.Tensor
    alpha: torch.Tensor
    disparity: torch.Tensor
    depth: torch.Tensor  # camera depth (m), for the haze


def _textured_plane(
    camera: Camera,
    canvas: Size,
    normal: tuple[float, float, float],
    offset: float,
    axes: tuple[int, int],
    bounds: tuple[tuple[float, float], tuple[float, float]],
    texture: torch.Tensor,
    tile: float,
) -> _Plane:
    """The plane ``normal . P = offset`` (world), limited to ``bounds`` on two world ``axes``.

    The texture repeats (mirrored) every ``tile`` metres along both axes.
    """
    disparity = plane_disparity(camera, canvas, normal, offset)[0]
    ahead = disparity > 1 / SKY_DEPTH
    depth = 1 / disparity.clamp_min(1 / SKY_DEPTH)
    rays = camera.rays(canvas)
    coordinates = [rays[axis] * depth for axis in axes]
    alpha = ahead.float()
    for coordinate, (low, high) in zip(coordinates, bounds, strict=True):
        if math.isfinite(low):
            alpha = alpha * _edge(coordinate, low, True)
        if math.isfinite(high):
            alpha = alpha * _edge(coordinate, high, False)
    color = _sample(_pyramid(texture), coordinates[0] / tile, coordinates[1] / tile, alpha > 0)
    return _Plane(color, alpha[None], disparity.clamp_min(1 / SKY_DEPTH)[None], depth[None])


# -------------------------------------------------------------------------------------------- pieces


def _texture(rng: np.random.Generator, bank: TextureBank, size: Size, photo_probability: float,
             kinds: Sequence[str] | None = None) -> torch.Tensor:
    if bank.photos and rng.random() < photo_probability:
        return bank.photo_texture(rng, size)
    kind = None if kinds is None else kinds[int(rng.integers(len(kinds)))]
    return procedural_texture(rng, size, kind)


def _sky(rng: np.random.Generator, canvas: Size, horizon: float, haze: torch.Tensor) -> torch.Tensor:
    """A sky: zenith colour fading into the haze colour at the horizon, with a few soft clouds."""
    zenith = torch.tensor([rng.uniform(0.15, 0.45), rng.uniform(0.35, 0.65), rng.uniform(0.65, 0.95)])
    if rng.random() < 0.25:  # overcast, dusk or indoors: a grey or warm ceiling of light
        zenith = haze * rng.uniform(0.6, 1.0)
    rows = torch.arange(canvas[0], dtype=torch.float32)
    fade = ((horizon - rows) / (0.6 * canvas[0])).clamp(0, 1)[:, None]
    sky = haze.view(3, 1, 1) * (1 - fade) + zenith.view(3, 1, 1) * fade
    sky = sky.expand(3, *canvas).clone()
    if rng.random() < 0.6:
        clouds = procedural_texture(rng, canvas, "noise").mean(0, keepdim=True)
        sky = sky + rng.uniform(0.1, 0.4) * (clouds - 0.5).clamp_min(0) * fade
    return sky.clamp(0, 1)


def _paint_lights(rng: np.random.Generator, canvas: Size, centres: np.ndarray, radii: np.ndarray,
                  color: torch.Tensor, alpha: torch.Tensor, gain: torch.Tensor) -> None:
    """Paint anti-aliased discs (centres (N, 2) in canvas pixels, radii (N,)) into the maps in place."""
    height, width = canvas
    for (row, column), radius in zip(centres, radii, strict=True):
        reach = math.ceil(radius + 1)
        y0, y1 = max(round(row) - reach, 0), min(round(row) + reach + 1, height)
        x0, x1 = max(round(column) - reach, 0), min(round(column) + reach + 1, width)
        if y0 >= y1 or x0 >= x1:
            continue
        y = torch.arange(y0, y1, dtype=torch.float32)[:, None] + 0.5 - float(row)
        x = torch.arange(x0, x1, dtype=torch.float32)[None, :] + 0.5 - float(column)
        coverage = (radius + 0.5 - torch.sqrt(y**2 + x**2)).clamp(0, 1)
        colour = torch.from_numpy(np.asarray(_light_colour(rng), dtype=np.float32)).view(3, 1, 1)
        window = color[:, y0:y1, x0:x1]
        window.mul_(1 - coverage).add_(colour * coverage)
        alpha[:, y0:y1, x0:x1] = torch.maximum(alpha[:, y0:y1, x0:x1], coverage)
        strength = rng.uniform(2.0, 10.0)
        gain[:, y0:y1, x0:x1] = torch.maximum(gain[:, y0:y1, x0:x1], 1 + (strength - 1) * coverage)


def _light_colour(rng: np.random.Generator) -> tuple[float, float, float]:
    colours = [(1.0, 0.85, 0.6), (1.0, 0.95, 0.85), (1.0, 1.0, 1.0), (0.8, 0.9, 1.0), (1.0, 0.55, 0.2),
               (1.0, 0.3, 0.25), (0.4, 1.0, 0.5)]
    return colours[int(rng.integers(len(colours)))]


def _object_mask(rng: np.random.Generator, bank: TextureBank, kind: str, size: Size):
    """Colour (3, h, w), alpha (1, h, w) and the kind actually drawn, for an object's box."""
    if kind == "cutout" and bank.cutouts:
        cutout = bank.cutout(rng, size)
        if cutout is not None:
            color, alpha = cutout
            shift = _drop(alpha)
            return torch.roll(color, shift, dims=1), torch.roll(alpha, shift, dims=1), "cutout"
        kind = "shape"
    elif kind == "cutout":
        kind = "shape"
    if kind == "person":
        alpha = person_mask(rng, size)
    elif kind == "pole":
        alpha = torch.ones(1, *size)
    elif kind == "tree":
        alpha = _tree_mask(rng, size)
    else:
        kind, alpha = "shape", _on_a_post(rng, size)
    kinds = ("foliage", "noise", "cells") if kind == "tree" else None
    return _texture(rng, bank, size, 0.5, kinds), alpha, kind


def _on_a_post(rng: np.random.Generator, size: Size) -> torch.Tensor:
    """A random shape that stands on the ground: on a post (a sign, a sculpture) or squat on its base."""
    height, width = size
    if rng.random() < 0.4:
        alpha = random_shape(rng, size)[1]
        return torch.roll(alpha, _drop(alpha), dims=1)
    top = max(2, int(height * rng.uniform(0.4, 0.75)))
    alpha = torch.zeros(1, height, width)
    alpha[:, :top] = random_shape(rng, (top, width))[1]
    post = max(1.0, width * rng.uniform(0.05, 0.25))
    x = torch.arange(width, dtype=torch.float32) + 0.5 - width / 2
    alpha[:, top // 2 :] = torch.maximum(alpha[:, top // 2 :], (post / 2 + 0.5 - x.abs()).clamp(0, 1))
    return alpha


def _drop(alpha: torch.Tensor) -> int:
    """Rows to move a mask down so that its lowest visible row is the box's last (it touches the ground)."""
    rows = torch.nonzero(alpha[0].amax(dim=1) > 0.5)
    return alpha.shape[1] - 1 - int(rows[-1]) if rows.numel() else 0


def _tree_mask(rng: np.random.Generator, size: Size) -> torch.Tensor:
    """A canopy (a blob over the upper two thirds) on a trunk."""
    from d2f.data.shapes import blob_mask

    height, width = size
    alpha = torch.zeros(1, height, width)
    canopy = max(2, int(height * rng.uniform(0.55, 0.75)))
    alpha[:, :canopy] = blob_mask(rng, (canopy, width))
    trunk = max(1.0, width * rng.uniform(0.06, 0.15))
    x = torch.arange(width, dtype=torch.float32) + 0.5 - width / 2
    alpha[:, canopy // 2 :] = torch.maximum(alpha[:, canopy // 2 :], (trunk / 2 + 0.5 - x.abs()).clamp(0, 1))
    return alpha


def _on_canvas(canvas: Size, patch: torch.Tensor, top: int, left: int) -> torch.Tensor:
    """``patch`` (C, h, w) placed at (top, left) on an empty canvas, clipped."""
    result = torch.zeros(patch.shape[0], *canvas)
    height, width = patch.shape[-2:]
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + height, canvas[0]), min(left + width, canvas[1])
    if y0 < y1 and x0 < x1:
        result[:, y0:y1, x0:x1] = patch[:, y0 - top : y1 - top, x0 - left : x1 - left]
    return result


def _hazed(
    color: torch.Tensor, depth: torch.Tensor | float, haze: torch.Tensor, distance: float
) -> torch.Tensor:
    """Colour seen through haze: mixed with the haze colour by ``1 - exp(-depth / distance)``."""
    amount = 1 - torch.exp(-torch.as_tensor(depth, dtype=torch.float32) / distance)
    return color * (1 - amount) + haze.view(3, 1, 1) * amount


# ------------------------------------------------------------------------------------------ the scene


def generate_perspective_scene(
    seed: int | Sequence[int],
    size: Size,
    textures: TextureBank | str | os.PathLike | None = None,
    *,
    kernel_scale: float = 1.0,
    slices: int = DEFAULT_SLICES,
    device: torch.device | str | None = None,
) -> dict:
    """Generate one random perspective scene and render it (see the module docstring).

    Args:
        seed: an int or a sequence of ints: the same seed gives the same scene.
        size: (height, width) of the photo, in full-resolution pixels.
        textures: a :class:`TextureBank`, a folder of images, or None for scikit-image's photos.
        kernel_scale: multiplies the blur range (1: the largest CoC in the frame up to 140 px); 0 gives
            no blur at all.
        slices: sub-layers of the ground, the walls and the facade.
        device: where to render; the result lies there.

    Returns:
        dict with ``image``, ``bokeh`` (3, H, W), ``defocus``, ``coc``, ``disparity``, ``focus_mask``
        (1, H, W) float32 tensors and ``params`` (JSON-serialisable: camera, focus, strength,
        objects with their depth, size in metres and box in pixels).
    """
    height, width = check_size(size)
    if not (isinstance(kernel_scale, int | float) and math.isfinite(kernel_scale) and kernel_scale >= 0):
        raise InputError(f"kernel_scale: expected a finite number >= 0, got {kernel_scale!r}")
    seed_list = [int(seed)] if isinstance(seed, int | np.integer) else [int(value) for value in seed]
    if any(value < 0 for value in seed_list):
        raise InputError(f"seed: expected non-negative integers, got {seed!r}")
    bank = resolve_textures(textures)
    rng = np.random.default_rng(seed_list)

    largest_coc = MAX_COC * kernel_scale * rng.uniform(0.0, 1.0)
    margin = math.ceil(largest_coc / 2) + 2
    canvas = (height + 2 * margin, width + 2 * margin)

    # The camera: field of view, height, and the horizon from above the frame to its lower half.
    focal = width / (2 * math.tan(math.radians(rng.uniform(40, 75)) / 2))
    horizon = margin + height * rng.uniform(-0.15, 0.6)
    centre = (margin + height / 2, margin + width / 2)
    camera = Camera(focal, centre, rng.uniform(0.3, 2.2), math.atan((centre[0] - horizon) / focal))
    haze = torch.tensor(rng.uniform(0.6, 0.95, 3), dtype=torch.float32)
    haze = haze * 0.85 + haze.mean() * 0.15
    haze_distance = float(np.exp(rng.uniform(np.log(40), np.log(2000))))
    bottom_depth = camera.height / max(1e-3, (canvas[0] - centre[0]) / focal * math.cos(camera.pitch)
                                       + math.sin(camera.pitch))
    entries: list[tuple[SceneLayer, torch.Tensor | float]] = []  # (layer, its disparity), back to front

    # Sky, and sometimes a far backdrop (hills, a treeline, a skyline).
    sky = _sky(rng, canvas, camera.horizon_row, haze)
    entries.append((SceneLayer(sky, torch.ones(1, *canvas), 0.0), 1 / SKY_DEPTH))
    backdrop = None
    if rng.random() < 0.6:
        depth = float(np.exp(rng.uniform(np.log(150), np.log(2000))))
        edge = _skyline(rng, canvas[1], camera.horizon_row, height)
        rows = torch.arange(canvas[0], dtype=torch.float32)[:, None] + 0.5
        alpha = (rows - edge[None, :] + 0.5).clamp(0, 1)[None]
        color = _hazed(_texture(rng, bank, canvas, 0.5, ("foliage", "noise", "cells")), depth, haze,
                       haze_distance)
        entries.append((SceneLayer(color, alpha, 0.0), 1 / depth))
        backdrop = {"depth": depth}

    # The ground, the walls along the view and the facade across it.
    ground_texture = _texture(rng, bank, (512, 512), 0.6)
    ground = _textured_plane(camera, canvas, (0.0, 1.0, 0.0), camera.height, (0, 2),
                             ((-math.inf, math.inf), (0.0, math.inf)), ground_texture, rng.uniform(1.0, 6.0))
    entries.append((SceneLayer(_hazed(ground.color, ground.depth, haze, haze_distance), ground.alpha, 0.0),
                    ground.disparity))
    planes = {"ground": {"tile": None}}
    facade_depth = math.inf
    if rng.random() < 0.45:
        facade_depth = float(np.exp(rng.uniform(np.log(4), np.log(60))))
    corridor = math.inf
    if rng.random() < 0.4:
        corridor = rng.uniform(1.5, 12.0)
        wall_height = rng.uniform(2.5, 25.0)
        texture = _texture(rng, bank, (512, 512), 0.6, ("checks", "stripes", "cells", "noise"))
        tile = rng.uniform(1.0, 6.0)
        for side in (-1.0, 1.0):
            if rng.random() < 0.25:
                continue  # one side open
            wall = _textured_plane(camera, canvas, (side, 0.0, 0.0), corridor, (2, 1),
                                   ((0.5, facade_depth), (camera.height - wall_height, camera.height)),
                                   texture, tile)
            entries.append((SceneLayer(_hazed(wall.color, wall.depth, haze, haze_distance), wall.alpha, 0.0),
                            wall.disparity))
        planes["walls"] = {"half_width": corridor, "height": wall_height}

    objects = _objects(rng, bank, camera, canvas, margin, (height, width), bottom_depth,
                       min(facade_depth, 80.0), corridor)
    lights = _light_groups(rng, camera, canvas, bottom_depth, min(facade_depth, 200.0), corridor)
    # Fronto-parallel layers: (depth, layer, whether haze still applies); lights shine through it.
    fronto: list[tuple[float, SceneLayer, bool]] = [
        (item["depth"], item.pop("layer"), True) for item in objects
    ]
    fronto += [(depth, layer, False) for depth, layer in lights]
    if math.isfinite(facade_depth):
        facade_height = rng.uniform(3.0, 40.0)
        texture = _texture(rng, bank, (512, 512), 0.6, ("checks", "stripes", "cells", "noise"))
        facade = _textured_plane(camera, canvas, (0.0, 0.0, 1.0), facade_depth, (0, 1),
                                 ((-corridor, corridor), (camera.height - facade_height, camera.height)),
                                 texture, rng.uniform(1.0, 8.0))
        gain = torch.ones(1, *canvas)
        if rng.random() < 0.4:  # lit windows
            count = int(rng.integers(3, 30))
            centres = rng.uniform((0, 0), canvas, (count, 2))
            radii = np.full(count, max(0.7, focal * rng.uniform(0.05, 0.2) / facade_depth))
            _paint_lights(rng, canvas, centres, radii, facade.color, torch.zeros(1, *canvas), gain)
        fronto.append((facade_depth, SceneLayer(facade.color, facade.alpha, 0.0, gain), True))
        planes["facade"] = {"depth": facade_depth, "height": facade_height}
    fronto.sort(key=lambda entry: -entry[0])
    for depth, layer, hazy in fronto:
        color = _hazed(layer.color, depth, haze, haze_distance) if hazy else layer.color
        entries.append((SceneLayer(color, layer.alpha, 0.0, layer.gain), 1 / depth))

    # The disparity seen at each pixel (the nearest surface covering at least half of it).
    frame = (slice(None), slice(margin, margin + height), slice(margin, margin + width))
    seen = torch.zeros(1, height, width)
    for layer, disparity in entries:
        value = disparity[frame] if isinstance(disparity, torch.Tensor) else torch.tensor(disparity)
        seen = torch.where(layer.alpha[frame] >= 0.5, value, seen)

    # Focus on the subject or on a ground point in the frame, then the strength for the largest CoC.
    subject = next((item for item in objects if item["subject"]), None)
    middle_column = ground.alpha[0, margin : margin + height, margin + width // 2]
    ground_rows = (torch.nonzero(middle_column > 0.99)[:, 0] + margin).tolist()
    if subject is not None and (rng.random() < SUBJECT_FOCUS_PROBABILITY or not ground_rows):
        focus_disparity, focus_on = 1 / subject["depth"], "subject"
    elif ground_rows:
        row = ground_rows[int(rng.integers(len(ground_rows)))]
        column = int(rng.integers(margin, margin + width))
        focus_disparity, focus_on = float(ground.disparity[0, row, column]), "ground"
    else:
        focus_disparity, focus_on = float(seen.median()), "scene"
    low, high = (float(value) for value in torch.aminmax(seen))
    farthest = max(high - focus_disparity, focus_disparity - low)
    strength = largest_coc / farthest if farthest > 0 else 0.0

    layers = []
    for layer, disparity in entries:
        coc = strength * (disparity - focus_disparity)
        if isinstance(coc, torch.Tensor):
            coc = coc.clamp(-largest_coc, largest_coc)
        layers.append(SceneLayer(layer.color.clamp(0, 1), layer.alpha, coc, layer.gain))
    if device is not None:
        layers = [layer.to(device) for layer in layers]
    image = render_scene(layers, margin=margin, slices=slices, sharp=True)
    bokeh = render_scene(layers, margin=margin, slices=slices)
    focus_mask = in_focus_coverage(layers, margin=margin, slices=slices)
    seen = seen.to(image.device)
    coc = (strength * (seen - focus_disparity)).clamp(-largest_coc, largest_coc)

    params = {
        "layout": "perspective",
        "seed": seed_list,
        "size": [height, width],
        "kernel_scale": float(kernel_scale),
        "margin": margin,
        "camera": {"focal": focal, "height": camera.height, "pitch_degrees": math.degrees(camera.pitch),
                   "horizon_row": camera.horizon_row - margin},
        "focus_depth": 1 / focus_disparity,
        "focus_on": focus_on,
        "strength": strength,
        "largest_coc": largest_coc,
        "haze_distance": haze_distance,
        "backdrop": backdrop,
        "planes": planes,
        "objects": [item | {"box": [item["box"][0] - margin, item["box"][1] - margin, *item["box"][2:]]}
                    for item in objects],
        "light_groups": [{"depth": depth} for depth, _ in lights],
    }
    defocus = diameter_to_defocus(coc.abs() / 2)
    return {"image": image.float(), "bokeh": bokeh.float(), "defocus": defocus.float(), "coc": coc.float(),
            "disparity": seen.float(), "focus_mask": focus_mask.float(), "params": params}


def _skyline(rng: np.random.Generator, width: int, horizon: float, height: int) -> torch.Tensor:
    """The top edge (row per column) of a far backdrop: rolling hills or a city's blocks."""
    x = torch.arange(width, dtype=torch.float32)
    base = horizon - height * rng.uniform(0.02, 0.15)
    if rng.random() < 0.6:
        edge = torch.full((width,), base)
        for order in range(1, 6):
            amplitude = height * rng.uniform(0, 0.06) / order
            edge += amplitude * torch.sin(x * (2 * math.pi * order / width * rng.uniform(0.3, 1.5))
                                          + rng.uniform(0, 2 * math.pi))
        return edge
    edge = torch.full((width,), horizon + 1.0)
    position = 0
    while position < width:
        block = int(rng.integers(max(2, width // 40), max(3, width // 8)))
        edge[position : position + block] = base - height * rng.uniform(0, 0.2)
        position += block
    return edge


def _objects(rng: np.random.Generator, bank: TextureBank, camera: Camera, canvas: Size, margin: int,
             frame: Size, nearest: float, farthest: float, corridor: float) -> list[dict]:
    """2-10 objects standing on the ground, far to near; the first drawn is the subject."""
    height, width = frame
    kinds, shares = list(OBJECT_KINDS), list(OBJECT_KINDS.values())
    count = int(rng.integers(2, 11))
    nearest = max(0.7 * nearest, 0.8)
    farthest = max(farthest * 0.95, nearest * 1.5)
    objects = []
    for index in range(count):
        kind = kinds[int(rng.choice(len(kinds), p=shares))]
        if kind == "person":
            metres = (rng.uniform(1.5, 1.95), 0.0)
            metres = (metres[0], metres[0] * rng.uniform(0.24, 0.32))
        elif kind == "pole":
            metres = (rng.uniform(1.0, 6.0), rng.uniform(0.06, 0.3))
        elif kind == "tree":
            metres = (rng.uniform(3.0, 10.0), 0.0)
            metres = (metres[0], metres[0] * rng.uniform(0.4, 0.8))
        else:
            tall = rng.uniform(0.3, 2.5)
            metres = (tall, tall * math.exp(rng.uniform(-0.6, 0.6)))
        if index == 0:
            # The subject: central, 25-75 % of the frame's height.
            depth = float(np.clip(camera.focal * metres[0] / (height * rng.uniform(0.25, 0.75)), nearest,
                                  farthest))
            column = margin + width * float(np.clip(rng.normal(0.5, 0.12), 0.15, 0.85))
        else:
            depth = float(np.exp(rng.uniform(np.log(nearest), np.log(farthest))))
            column = margin + width * rng.uniform(-0.1, 1.1)
        x = (column + 0.5 - camera.centre[1]) * depth / camera.focal
        if abs(x) > corridor - metres[1] / 2:
            x = math.copysign(max(0.0, corridor - metres[1] / 2), x)
        box_height = max(2, round(camera.focal * metres[0] / depth))
        box_width = max(2, round(camera.focal * metres[1] / depth))
        bottom = camera.ground_row(depth)
        top = round(bottom) - box_height + 1
        left = round(camera.column(x, depth) - box_width / 2)
        if top >= canvas[0] or top + box_height <= 0 or left >= canvas[1] or left + box_width <= 0:
            continue
        # Draw only what can be seen: the box clipped to the canvas (huge near objects stay cheap).
        color, alpha, drawn = _object_mask(rng, bank, kind, (box_height, box_width)) \
            if box_height * box_width <= 4 * canvas[0] * canvas[1] else (None, None, kind)
        if color is None:
            continue
        gain = None
        if drawn == "pole" and rng.random() < 0.5:  # a lamp on top
            gain = torch.ones(1, *canvas)
            lamp_colour = torch.zeros(3, *canvas)
            lamp_alpha = torch.zeros(1, *canvas)
            radius = max(0.7, camera.focal * rng.uniform(0.1, 0.25) / depth)
            lamp = np.array([[top, left + box_width / 2]])
            _paint_lights(rng, canvas, lamp, np.array([radius]), lamp_colour, lamp_alpha, gain)
        layer_color = _on_canvas(canvas, color, top, left)
        layer_alpha = _on_canvas(canvas, alpha, top, left)
        if gain is not None:
            layer_color = layer_color * (1 - lamp_alpha) + lamp_colour
            layer_alpha = torch.maximum(layer_alpha, lamp_alpha)
        objects.append({"kind": drawn, "depth": depth, "metres": [float(metres[0]), float(metres[1])],
                        "box": [top, left, box_height, box_width], "subject": index == 0,
                        "layer": SceneLayer(layer_color, layer_alpha, 0.0, gain)})
    return objects


def _light_groups(rng: np.random.Generator, camera: Camera, canvas: Size, nearest: float, farthest: float,
                  corridor: float) -> list[tuple[float, SceneLayer]]:
    """0-4 groups of small lights, each at one depth: street lights, strings of bulbs, windows."""
    if rng.random() < 0.4:
        return []
    groups = []
    for _ in range(int(rng.integers(1, 5))):
        depth = float(np.exp(rng.uniform(np.log(max(nearest, 1.0)), np.log(max(farthest, 2.0)))))
        count = int(rng.integers(2, 16))
        half_width = min(corridor, depth * canvas[1] / camera.focal)
        x = rng.uniform(-half_width, half_width, count)
        lift = rng.uniform(0.2, 6.0, count)
        if rng.random() < 0.5:  # a string or a row: evenly spaced along a line
            x = np.linspace(-half_width, half_width, count) * rng.uniform(0.3, 1.0) + rng.normal(0, 0.3)
            lift = np.full(count, rng.uniform(1.0, 5.0))
        rows = np.array([camera.ground_row(depth) - camera.focal * value / depth for value in lift])
        columns = np.array([camera.column(value, depth) for value in x])
        radius = np.maximum(0.7, camera.focal * rng.uniform(0.02, 0.08) / depth)
        color, alpha, gain = torch.zeros(3, *canvas), torch.zeros(1, *canvas), torch.ones(1, *canvas)
        _paint_lights(rng, canvas, np.stack([rows, columns], 1), np.full(count, radius), color, alpha, gain)
        if bool((alpha > 0).any()):
            groups.append((depth, SceneLayer(color, alpha, 0.0, gain)))
    return groups


__all__ = [
    "MAX_COC",
    "OBJECT_KINDS",
    "SKY_DEPTH",
    "Camera",
    "generate_perspective_scene",
    "ground_disparity",
    "plane_disparity",
]
