"""Synthetic bokeh scenes with exact ground truth, generated on the fly or written to disk.

A scene is a textured background plane (fronto-parallel, or slanted like a floor or a wall) with small
bright lights, an optional middle layer and 1-5 foreground objects (optionally other objects in the
focus plane, and a pole or stem carrying the subject). The lens focuses on the main
subject (the largest, most central object), as in the EBB! photos, with a random strength so that the
background's blur spans 0 to about 70 px of diameter at half resolution (the range of D2F's kernels).
:func:`d2f.render.scene.render_scene` renders the all-in-focus photo and its true bokeh.

Depths are drawn in disparity (inverse depth) relative to the focus plane: a layer at relative
position ``t`` has disparity ``1 / focus_depth + t * (1 / focus_depth - 1 / background_depth)``, so
that its signed CoC is ``t`` times the background's blur (``t = -1`` is the far background, 0 the focus
plane, ``t > 0`` in front of it).

Per scene (tensors (C, H, W) in float32):

- ``image``: the all-in-focus photo, sRGB in [0, 1]; ``bokeh``: its ground-truth bokeh.
- ``coc``: signed CoC diameter in full-resolution pixels of the surface seen at each pixel (> 0 in
  front of the focus plane); ``defocus``: ``diameter_to_defocus(|coc| / 2)``, D2F's units (its kernels
  live at half resolution); ``disparity``: 1 / depth in 1/m; ``focus_mask``: the share of each pixel
  that shows in-focus surfaces (|CoC| <= 1 px), 1 inside the subject.
- ``params`` (from :func:`generate_scene`): the scene's parameters, JSON-serialisable.
"""

from __future__ import annotations

import json
import math
import os
import secrets
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from d2f.data.depth import normalise_disparity
from d2f.data.perspective import generate_perspective_scene
from d2f.data.shapes import blob_mask, random_shape
from d2f.data.textures import PROCEDURAL_KINDS, TextureBank, procedural_texture, resolve_textures
from d2f.data.transforms import check_size
from d2f.errors import DataError, InputError
from d2f.io import read_image, write_image
from d2f.render.kernels import diameter_to_defocus
from d2f.render.scene import DEFAULT_SLICES, SceneLayer, in_focus_coverage, render_scene

#: Largest background blur, as a CoC diameter in pixels at half resolution (D2F's largest kernel).
MAX_BACKGROUND_BLUR = 70.0

#: Share of scenes whose background is a slanted plane (a floor or a wall).
SLANTED_PROBABILITY = 0.3

#: Share of scenes with a middle layer between the background and the subject.
MIDDLE_PROBABILITY = 0.4

#: Folders of a written scene set: 8-bit PNG pairs (``original/`` and ``bokeh/``, as EBB! names them),
#: 16-bit PNG maps and one JSON file per scene (written last: it marks the scene complete).
IMAGE_FOLDERS = ("original", "bokeh")
MAP_FOLDERS = ("defocus", "coc", "disparity", "focus_mask")
PARAMS_FOLDER = "scene"

_MAP_KEYS = ("defocus", "coc", "disparity", "focus_mask")
_LIGHT_COLOURS = np.asarray(
    [(1.0, 0.85, 0.6), (1.0, 0.95, 0.85), (1.0, 1.0, 1.0), (0.8, 0.9, 1.0), (1.0, 0.55, 0.2),
     (1.0, 0.3, 0.25), (0.4, 1.0, 0.5), (0.45, 0.6, 1.0)],
    dtype=np.float32,
)

Size = tuple[int, int]


# -------------------------------------------------------------------------------------- scene parts


def _texture(rng: np.random.Generator, bank: TextureBank, size: Size, photo_probability: float,
             kinds: Sequence[str] = PROCEDURAL_KINDS) -> tuple[torch.Tensor, str]:
    if bank.photos and rng.random() < photo_probability:
        return bank.photo_texture(rng, size), "photo"
    kind = kinds[int(rng.integers(len(kinds)))]
    return procedural_texture(rng, size, kind), f"procedural:{kind}"


def _add_lights(rng: np.random.Generator, color: torch.Tensor, gain: torch.Tensor, count: int) -> list[dict]:
    """Small bright discs (street lights, specular dots) painted into ``color`` and ``gain`` in place.

    Returns each light's centre (canvas pixels), radius, gain and sRGB colour.
    """
    height, width = color.shape[-2:]
    # Lights often line up (a street, a string of bulbs): a share of them lie along a random line.
    line_start, line_end = rng.uniform((0, 0), (height, width)), rng.uniform((0, 0), (height, width))
    lights = []
    for _ in range(count):
        if rng.random() < 0.5:
            centre = line_start + rng.random() * (line_end - line_start) + rng.normal(0, 2, 2)
        else:
            centre = rng.uniform((0, 0), (height, width))
        radius = rng.uniform(0.7, 3.0)
        colour = _LIGHT_COLOURS[int(rng.integers(len(_LIGHT_COLOURS)))]
        strength = rng.uniform(2.0, 10.0)
        reach = math.ceil(radius + 1)
        row, column = round(float(centre[0])), round(float(centre[1]))
        y0, y1 = max(row - reach, 0), min(row + reach + 1, height)
        x0, x1 = max(column - reach, 0), min(column + reach + 1, width)
        if y0 >= y1 or x0 >= x1:
            continue
        y = torch.arange(y0, y1, dtype=torch.float32)[:, None] - float(centre[0])
        x = torch.arange(x0, x1, dtype=torch.float32)[None, :] - float(centre[1])
        coverage = (radius + 0.5 - torch.sqrt(y**2 + x**2)).clamp(0, 1)
        window = color[:, y0:y1, x0:x1]
        window.mul_(1 - coverage).add_(torch.from_numpy(colour).view(3, 1, 1) * coverage)
        gain[:, y0:y1, x0:x1] = torch.maximum(gain[:, y0:y1, x0:x1], 1 + (strength - 1) * coverage)
        lights.append({"centre": [float(centre[0]), float(centre[1])], "radius": float(radius),
                       "gain": float(strength), "colour": colour.tolist()})
    return lights


def _frame_lights(lights: list[dict], margin: int) -> list[dict]:
    """Lights with their centres in frame coordinates (the canvas less its margin)."""
    return [light | {"centre": [coordinate - margin for coordinate in light["centre"]]} for light in lights]


def _middle_alpha(rng: np.random.Generator, size: Size) -> tuple[torch.Tensor, str]:
    """A hedge (everything below a wavy line) or a large blob off to one side."""
    height, width = size
    if rng.random() < 0.5:
        base = rng.uniform(0.35, 0.8) * height
        waves = torch.zeros(width)
        x = torch.arange(width, dtype=torch.float32)
        for order in range(1, 6):
            amplitude = rng.uniform(0, 0.08) * height / order**0.5
            waves += amplitude * torch.sin(x * (2 * math.pi * order / width * rng.uniform(0.5, 2)) +
                                           rng.uniform(0, 2 * math.pi))
        edge = base + waves
        y = torch.arange(height, dtype=torch.float32)[:, None]
        return (y - edge[None, :] + 0.5).clamp(0, 1)[None], "hedge"
    alpha = torch.zeros(1, height, width)
    box_height, box_width = int(rng.uniform(0.5, 0.9) * height), int(rng.uniform(0.3, 0.6) * width)
    top = int(rng.uniform(0.1, 1.0) * (height - box_height))
    left = 0 if rng.random() < 0.5 else width - box_width
    alpha[:, top : top + box_height, left : left + box_width] = blob_mask(rng, (box_height, box_width))
    return alpha, "blob"


def _place(canvas: torch.Tensor, patch: torch.Tensor, top: int, left: int) -> None:
    """Paste ``patch`` (C, h, w) into ``canvas`` (C, H, W) at (top, left), clipped to the canvas."""
    height, width = patch.shape[-2:]
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + height, canvas.shape[1]), min(left + width, canvas.shape[2])
    if y0 < y1 and x0 < x1:
        canvas[:, y0:y1, x0:x1] = patch[:, y0 - top : y1 - top, x0 - left : x1 - left]


def _objects(rng: np.random.Generator, bank: TextureBank, frame: Size) -> list[dict]:
    """1-5 foreground objects with shape, texture and box in frame coordinates; depths come later."""
    height, width = frame
    shorter = min(height, width)
    count = int(rng.choice([1, 2, 3, 4, 5], p=[0.3, 0.3, 0.2, 0.12, 0.08]))
    objects = []
    for index in range(count):
        # The first object is drawn big and central (the likely subject), the others anywhere.
        scale = rng.uniform(0.35, 0.8) if index == 0 else rng.uniform(0.1, 0.45)
        aspect = math.exp(rng.uniform(-0.5, 0.5))
        box_height = max(8, int(shorter * scale * math.sqrt(aspect)))
        box_width = max(8, int(shorter * scale / math.sqrt(aspect)))
        if index == 0:
            centre = (rng.normal(0.5, 0.1) * height, rng.normal(0.5, 0.12) * width)
        else:
            centre = (rng.uniform(0, 1) * height, rng.uniform(0, 1) * width)
        top, left = int(centre[0] - box_height / 2), int(centre[1] - box_width / 2)
        size = (box_height, box_width)
        cutout = bank.cutout(rng, size) if bank.cutouts and rng.random() < 0.4 else None
        if cutout is not None:
            color, alpha = cutout
            shape, texture = "cutout", "cutout"
        else:
            shape, alpha = random_shape(rng, size)
            color, texture = _texture(rng, bank, size, 0.5)
        objects.append({"shape": shape, "texture": texture, "box": [top, left, box_height, box_width],
                        "color": color, "alpha": alpha})
    return objects


def _support(rng: np.random.Generator, bank: TextureBank, subject: dict, frame: Size, margin: int) -> dict:
    """A pole, stand or stem that carries the subject to the frame's bottom edge (or hangs it from the top).

    Real subjects rarely float: a lamp stands on its post, a flower on its stem, a person on the body
    below the frame. The band runs from the subject's middle row past the frame edge (into the margin,
    so that the blur near the edge sees it go on), leaning a little, in a texture of its own.
    """
    height = frame[0]
    top, left, box_height, box_width = subject["box"]
    band_width = max(3.0, box_width * rng.uniform(0.04, 0.4))
    middle = top + box_height // 2
    start, end = (middle, height + margin) if rng.random() < 0.75 else (-margin, middle)
    length = max(end - start, 8)
    lean = rng.uniform(-0.15, 0.15) * length  # horizontal drift from the subject end to the frame end
    reach = math.ceil(band_width / 2 + abs(lean)) + 1
    centre = left + box_width * rng.uniform(0.35, 0.65)
    rows = torch.arange(length, dtype=torch.float32)[:, None]
    columns = torch.arange(2 * reach + 1, dtype=torch.float32)[None, :]
    # Distance from the subject along the band: 0 at the subject's middle row.
    along = rows / (length - 1) if start == middle else 1 - rows / (length - 1)
    offset = columns - reach - lean * along
    alpha = (band_width / 2 + 0.5 - offset.abs()).clamp(0, 1)[None]
    band_box = [start, round(centre) - reach, length, 2 * reach + 1]
    color, texture = _texture(rng, bank, (length, 2 * reach + 1), 0.5)
    return {"shape": "support", "texture": texture, "box": band_box, "color": color, "alpha": alpha,
            "position": 0.0}


def _subject_index(objects: list[dict], frame: Size) -> int:
    """The main subject: the object with the largest area weighted by closeness to the centre."""
    height, width = frame
    scores = []
    for item in objects:
        top, left, box_height, box_width = item["box"]
        area = float(item["alpha"].sum())
        dy = (top + box_height / 2 - height / 2) / height
        dx = (left + box_width / 2 - width / 2) / width
        scores.append(area * math.exp(-(dy**2 + dx**2) / (2 * 0.25**2)))
    return int(np.argmax(scores))


# ------------------------------------------------------------------------------------------ the scene


def generate_scene(
    seed: int | Sequence[int],
    size: Size,
    textures: TextureBank | str | os.PathLike | None = None,
    *,
    kernel_scale: float = 1.0,
    companion_focus_probability: float = 0.0,
    subject_support_probability: float = 0.0,
    slices: int = DEFAULT_SLICES,
    device: torch.device | str | None = None,
) -> dict:
    """Generate one random scene and render it (see the module docstring for the outputs).

    Args:
        seed: an int or a sequence of ints (e.g. ``[seed, index]``): the same seed gives the same scene.
        size: (height, width) of the photo, in full-resolution pixels.
        textures: a :class:`TextureBank`, a folder of images, or None for scikit-image's photos.
        kernel_scale: multiplies the blur range (1: background blur up to 70 px at half resolution).
        companion_focus_probability: chance that each other object stands in the focus plane beside
            the subject (and stays sharp), as a lens keeps the subject's surroundings sharp; 0 (the
            default) keeps every other object out of focus and draws the same scenes as before.
        subject_support_probability: chance that the subject stands on (or hangs from) a pole, stand
            or stem that reaches the frame edge in the focus plane; 0 (the default) draws none and the
            same scenes as before.
        slices: sub-layers of a slanted background.
        device: where to render (e.g. ``"cuda"``); the result lies there.

    Returns:
        dict with ``image``, ``bokeh`` (3, H, W), ``defocus``, ``coc``, ``disparity``, ``focus_mask``
        (1, H, W) float32 tensors and ``params`` (a JSON-serialisable dict).
    """
    height, width = check_size(size)
    if not (isinstance(kernel_scale, int | float) and math.isfinite(kernel_scale) and kernel_scale >= 0):
        raise InputError(f"kernel_scale: expected a finite number >= 0, got {kernel_scale!r}")
    for name, value in (("companion_focus_probability", companion_focus_probability),
                        ("subject_support_probability", subject_support_probability)):
        if not (isinstance(value, int | float) and 0 <= value <= 1):
            raise InputError(f"{name}: expected a number in [0, 1], got {value!r}")
    seed_list = [int(seed)] if isinstance(seed, int | np.integer) else [int(value) for value in seed]
    if any(value < 0 for value in seed_list):
        raise InputError(f"seed: expected non-negative integers, got {seed!r}")
    bank = resolve_textures(textures)
    rng = np.random.default_rng(seed_list)

    # Optics: focus on the subject, background blur drawn over the whole D2F range.
    focus_depth = rng.uniform(1.0, 5.0)
    background_depth = rng.uniform(max(8.0, 3 * focus_depth), 60.0)
    background_blur = 2 * MAX_BACKGROUND_BLUR * kernel_scale * rng.uniform(0.0, 1.0)  # full-res px
    focus_disparity, background_disparity = 1 / focus_depth, 1 / background_depth
    disparity_span = focus_disparity - background_disparity
    strength = background_blur / disparity_span

    def disparity_at(position):
        return focus_disparity + position * disparity_span

    # Relative positions (see the module docstring) of the background's near edge and the middle layer.
    slant = None
    near_position = -1.0
    if rng.random() < SLANTED_PROBABILITY:
        slant = ["top", "top", "left", "right"][int(rng.integers(4))]  # the far edge: floors and walls
        near_position = -1.0 + rng.uniform(0.1, 0.8)
    middle_position = near_position * rng.uniform(0.3, 0.8) if rng.random() < MIDDLE_PROBABILITY else None
    behind_limit = middle_position if middle_position is not None else near_position

    objects = _objects(rng, bank, (height, width))
    subject = _subject_index(objects, (height, width))
    for index, item in enumerate(objects):
        # No draw when the probability is 0, so that default scenes stay what they were.
        in_focus = companion_focus_probability > 0 and rng.random() < companion_focus_probability
        if index == subject or in_focus:
            item["position"] = 0.0
        elif rng.random() < 0.65:
            item["position"] = behind_limit * rng.uniform(0.15, 0.85)
        else:
            item["position"] = rng.uniform(0.1, 0.8)
    largest_blur = background_blur * max(1.0, *(abs(item["position"]) for item in objects))
    margin = math.ceil(largest_blur / 2) + 2
    canvas = (height + 2 * margin, width + 2 * margin)
    # No draw when the probability is 0. The support goes just before the subject, which is drawn over it.
    if subject_support_probability > 0 and rng.random() < subject_support_probability:
        objects.insert(subject, _support(rng, bank, objects[subject], (height, width), margin))
        subject += 1

    # Background: textured plane with lights, over the whole canvas.
    color, background_texture = _texture(rng, bank, canvas, 0.6)
    gain = torch.ones(1, *canvas)
    light_count = int(rng.integers(1, 30)) if rng.random() < 0.7 else 0
    background_lights = _add_lights(rng, color, gain, light_count)
    if slant is None:
        background_position: float | torch.Tensor = -1.0
    else:
        axis_length = canvas[0] if slant == "top" else canvas[1]
        ramp = torch.linspace(-1.0, near_position, axis_length)
        ramp = ramp.flip(0) if slant == "right" else ramp
        shape = (1, axis_length, 1) if slant == "top" else (1, 1, axis_length)
        background_position = ramp.view(shape).expand(1, *canvas).contiguous()
    entries = [(SceneLayer(color, torch.ones(1, *canvas), background_position * background_blur, gain),
                background_position)]

    middle = None
    if middle_position is not None:
        alpha, middle_shape = _middle_alpha(rng, canvas)
        middle_color, middle_texture = _texture(rng, bank, canvas, 0.5, ("foliage", "noise", "cells"))
        middle_gain = torch.ones(1, *canvas)
        middle_lights = _add_lights(rng, middle_color, middle_gain, int(rng.integers(1, 10))) \
            if rng.random() < 0.3 else []
        entries.append((SceneLayer(middle_color, alpha, middle_position * background_blur, middle_gain),
                        middle_position))
        middle = {"shape": middle_shape, "texture": middle_texture,
                  "depth": float(1 / disparity_at(middle_position)),
                  "coc": float(middle_position * background_blur),
                  "lights": _frame_lights(middle_lights, margin)}

    for item in sorted(objects, key=lambda entry: entry["position"]):
        top, left = item["box"][0] + margin, item["box"][1] + margin
        color_canvas, alpha_canvas = torch.zeros(3, *canvas), torch.zeros(1, *canvas)
        _place(color_canvas, item["color"], top, left)
        _place(alpha_canvas, item["alpha"], top, left)
        entries.append((SceneLayer(color_canvas, alpha_canvas, item["position"] * background_blur),
                        item["position"]))

    layers = [layer for layer, _ in entries]
    if device is not None:
        layers = [layer.to(device) for layer in layers]
    image = render_scene(layers, margin=margin, slices=slices, sharp=True)
    bokeh = render_scene(layers, margin=margin, slices=slices)
    focus_mask = in_focus_coverage(layers, margin=margin, slices=slices)

    # Maps of the surface seen at each pixel (the nearest layer covering at least half of it).
    frame = (slice(None), slice(margin, margin + height), slice(margin, margin + width))
    position_map = torch.zeros(1, height, width)
    for layer, position in entries:
        seen = layer.alpha[frame] >= 0.5
        value = position[frame] if isinstance(position, torch.Tensor) else torch.tensor(position)
        position_map = torch.where(seen, value, position_map)
    position_map = position_map.to(image.device)
    coc = position_map * background_blur
    disparity = disparity_at(position_map)
    defocus = diameter_to_defocus(coc.abs() / 2)

    params = {
        "seed": seed_list,
        "size": [height, width],
        "kernel_scale": float(kernel_scale),
        "companion_focus_probability": float(companion_focus_probability),
        "subject_support_probability": float(subject_support_probability),
        "margin": margin,
        "focus_depth": float(focus_depth),
        "strength": float(strength),
        "background_blur_half_res": float(background_blur / 2),
        "background": {
            "depth": float(background_depth),
            "coc": -float(background_blur),
            "slant": None if slant is None else {"far_edge": slant,
                                                  "near_depth": float(1 / disparity_at(near_position)),
                                                  "near_coc": float(near_position * background_blur)},
            "texture": background_texture,
            "lights": _frame_lights(background_lights, margin),
        },
        "middle": middle,
        "objects": [
            {"shape": item["shape"], "texture": item["texture"], "box": item["box"],
             "depth": float(1 / disparity_at(item["position"])),
             "coc": float(item["position"] * background_blur), "subject": index == subject}
            for index, item in enumerate(objects)
        ],
    }
    return {"image": image.float(), "bokeh": bokeh.float(), "defocus": defocus.float(), "coc": coc.float(),
            "disparity": disparity.float(), "focus_mask": focus_mask.float(), "params": params}


# ------------------------------------------------------------------------------------------- dataset


class SyntheticBokehDataset(Dataset):
    """``count`` synthetic scenes generated on the fly; item ``i`` is ``generate_scene([seed, i], ...)``,
    or ``generate_perspective_scene([seed, i], ...)`` for a share ``perspective_probability`` of the items
    (see :meth:`is_perspective`; companion and support probabilities apply to the classic scenes).

    Items are dicts of ``image``, ``bokeh`` (3, H, W), ``defocus``, ``coc``, ``disparity``,
    ``focus_mask``, ``norm_disparity`` (1, H, W), ``norm_focus_disparity``, ``coc_scale`` (0-d; see
    :func:`normalised_maps`) and ``name`` (the zero-padded index, as ``d2f synth`` names its files).
    """

    def __init__(
        self,
        count: int,
        size: Size = (512, 768),
        *,
        seed: int = 0,
        textures: TextureBank | str | os.PathLike | None = None,
        kernel_scale: float = 1.0,
        companion_focus_probability: float = 0.0,
        subject_support_probability: float = 0.0,
        perspective_probability: float = 0.0,
        device: torch.device | str | None = None,
    ):
        if not (isinstance(perspective_probability, int | float) and 0 <= perspective_probability <= 1):
            raise InputError(
                f"perspective_probability: expected a number in [0, 1], got {perspective_probability!r}"
            )
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise InputError(f"count: expected a positive integer, got {count!r}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise InputError(f"seed: expected a non-negative integer, got {seed!r}")
        self.count = count
        self.size = check_size(size)
        self.seed = seed
        self.textures = resolve_textures(textures)
        self.kernel_scale = kernel_scale
        self.companion_focus_probability = companion_focus_probability
        self.subject_support_probability = subject_support_probability
        self.perspective_probability = float(perspective_probability)
        self.device = device

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> dict:
        if not -self.count <= index < self.count:
            raise IndexError(f"index {index} is out of range for {self.count} scenes")
        index %= self.count
        if self.is_perspective(index):
            scene = generate_perspective_scene([self.seed, index], self.size, self.textures,
                                               kernel_scale=self.kernel_scale, device=self.device)
        else:
            scene = generate_scene([self.seed, index], self.size, self.textures,
                                   kernel_scale=self.kernel_scale,
                                   companion_focus_probability=self.companion_focus_probability,
                                   subject_support_probability=self.subject_support_probability,
                                   device=self.device)
        params = scene.pop("params")
        scene.update(normalised_maps(scene["disparity"], 1 / params["focus_depth"], params["strength"]))
        scene["name"] = scene_name(index)
        return scene

    def is_perspective(self, index: int) -> bool:
        """Whether scene ``index`` is a perspective scene (drawn from ``[seed, index, 1]``)."""
        probability = self.perspective_probability
        if probability in (0.0, 1.0):  # no draw: the classic scenes stay what they were
            return probability == 1.0
        return bool(np.random.default_rng([self.seed, index, 1]).random() < probability)


def normalised_maps(
    disparity: torch.Tensor, focus_disparity: float, strength: float
) -> dict[str, torch.Tensor]:
    """An item's ``norm_disparity`` (1, H, W), ``norm_focus_disparity`` and ``coc_scale`` (0-d tensors).

    ``norm_disparity`` is ``disparity`` rescaled to [0, 1] over the item (near = 1), ``coc_scale`` the
    CoC diameter in pixels per unit of it: ``coc == coc_scale * (norm_disparity - norm_focus_disparity)``
    for a CoC of ``strength * (disparity - focus_disparity)``.
    """
    normalised, normalised_focus, span = normalise_disparity(disparity, focus_disparity)
    return {"norm_disparity": normalised,
            "norm_focus_disparity": torch.tensor(normalised_focus, dtype=torch.float32),
            "coc_scale": torch.tensor(strength * span, dtype=torch.float32)}


def scene_name(index: int) -> str:
    """File stem of scene ``index``: the index zero-padded to six digits."""
    return f"{index:06d}"


# -------------------------------------------------------------------------------------- files on disk


def _map_encoding(scene: dict) -> dict[str, dict[str, float]]:
    """16-bit PNG encodings (value = offset + scale * level) chosen for this scene's value ranges."""
    coc_range = max(1.0, math.ceil(float(scene["coc"].abs().max())))
    disparity_range = max(1e-3, float(scene["disparity"].max()))
    return {
        "defocus": {"offset": 0.0, "scale": 1 / 65535},
        "coc": {"offset": -coc_range, "scale": 2 * coc_range / 65535},
        "disparity": {"offset": 0.0, "scale": disparity_range / 65535},
        "focus_mask": {"offset": 0.0, "scale": 1 / 65535},
    }


def write_scene(scene: dict, root: str | os.PathLike, name: str) -> None:
    """Write a scene from :func:`generate_scene` under ``root``, each file atomically.

    ``original/<name>.png`` and ``bokeh/<name>.png`` (8-bit RGB: EBB!'s folder names, so
    :class:`d2f.data.EBBDataset` reads the pairs), ``defocus/``, ``coc/``, ``disparity/`` and
    ``focus_mask/<name>.png`` (16-bit grey) and last ``scene/<name>.json`` (parameters and the maps'
    encodings). Existing files of the same name are replaced.
    """
    root = Path(root)
    encoding = _map_encoding(scene)
    for folder in (*IMAGE_FOLDERS, *MAP_FOLDERS, PARAMS_FOLDER):
        (root / folder).mkdir(parents=True, exist_ok=True)
    write_image(root / "original" / f"{name}.png", scene["image"].cpu(), overwrite=True)
    write_image(root / "bokeh" / f"{name}.png", scene["bokeh"].cpu(), overwrite=True)
    for key in _MAP_KEYS:
        offset, scale = encoding[key]["offset"], encoding[key]["scale"]
        values = scene[key].detach().float().cpu().numpy()[0]
        levels = np.clip(np.rint((values - offset) / scale), 0, 65535).astype(np.uint16)
        write_image(root / key / f"{name}.png", Image.fromarray(levels), overwrite=True)
    document = {"name": name, "encoding": encoding, "params": scene["params"]}
    _write_json(root / PARAMS_FOLDER / f"{name}.json", document)


def _write_json(path: Path, document: dict) -> None:
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        temporary.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
        os.replace(temporary, path)
    except OSError as error:
        raise DataError(f"{path}: cannot write: {error.strerror or error}") from None
    finally:
        temporary.unlink(missing_ok=True)


def read_scene(root: str | os.PathLike, name: str) -> dict:
    """Read a scene written by :func:`write_scene`: the same keys as :func:`generate_scene`."""
    root = Path(root)
    path = root / PARAMS_FOLDER / f"{name}.json"
    if not path.is_file():
        raise DataError(f"{path}: no such scene file (is {root} a folder written by d2f synth?)")
    try:
        document = json.loads(path.read_text())
        encoding = document["encoding"]
    except (OSError, ValueError, KeyError) as error:
        raise DataError(f"{path}: not a valid scene file ({type(error).__name__}: {error})") from None
    scene = {"image": read_image(root / "original" / f"{name}.png"),
             "bokeh": read_image(root / "bokeh" / f"{name}.png")}
    for key in _MAP_KEYS:
        map_path = root / key / f"{name}.png"
        try:
            with Image.open(map_path) as image:
                levels = np.asarray(image, dtype=np.float64)
        except OSError as error:
            raise DataError(f"{map_path}: cannot read map ({error})") from None
        values = encoding[key]["offset"] + encoding[key]["scale"] * levels
        scene[key] = torch.from_numpy(values.astype(np.float32))[None]
    scene["params"] = document.get("params", {})
    return scene


__all__ = [
    "IMAGE_FOLDERS",
    "MAP_FOLDERS",
    "MAX_BACKGROUND_BLUR",
    "MIDDLE_PROBABILITY",
    "PARAMS_FOLDER",
    "SLANTED_PROBABILITY",
    "SyntheticBokehDataset",
    "check_size",
    "generate_scene",
    "normalised_maps",
    "read_scene",
    "scene_name",
    "write_scene",
]
