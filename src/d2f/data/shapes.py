"""Anti-aliased masks of random foreground shapes: blobs, polygons, thick glyphs and a silhouette.

Each function fills most of a box of the given size and returns a float32 alpha tensor (1, H, W) in
[0, 1] whose edges are anti-aliased (fractional coverage over about one pixel).
"""

from __future__ import annotations

import math
import string

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

#: Kinds of shape drawn by :func:`random_shape`, with their probabilities.
SHAPE_KINDS = {"blob": 0.45, "polygon": 0.25, "glyph": 0.15, "silhouette": 0.15}

# Polygons and glyphs are drawn this many times larger, then reduced, for anti-aliased edges.
_SUPERSAMPLING = 4

Size = tuple[int, int]


def blob_mask(rng: np.random.Generator, size: Size) -> torch.Tensor:
    """A smooth star-shaped blob: radius ``r(theta) = 1 + sum of a few random low harmonics``."""
    height, width = size
    harmonics = int(rng.integers(2, 6))
    amplitudes = rng.uniform(0, 0.25, harmonics) / np.arange(1, harmonics + 1) ** 0.7
    phases = rng.uniform(0, 2 * math.pi, harmonics)
    y = (torch.arange(height, dtype=torch.float32)[:, None] + 0.5 - height / 2) / (height / 2)
    x = (torch.arange(width, dtype=torch.float32)[None, :] + 0.5 - width / 2) / (width / 2)
    theta = torch.atan2(y, x)
    radius = torch.ones_like(theta)
    for order, (amplitude, phase) in enumerate(zip(amplitudes, phases, strict=True), start=2):
        radius = radius + float(amplitude) * torch.cos(order * theta + float(phase))
    radius = radius / (1 + amplitudes.sum())  # the blob stays inside its box
    # Signed distance to the rim in pixels (approximately), for a one-pixel anti-aliased edge.
    distance = (radius - torch.sqrt(x**2 + y**2)) * (min(height, width) / 2)
    return (distance + 0.5).clamp(0, 1)[None]


def _reduced(image: Image.Image, size: Size) -> torch.Tensor:
    height, width = size
    reduced = image.resize((width, height), Image.BOX)
    return torch.from_numpy(np.asarray(reduced, dtype=np.float32) / 255)[None]


def polygon_mask(rng: np.random.Generator, size: Size) -> torch.Tensor:
    """A random star-convex polygon with 3 to 9 vertices."""
    height, width = size
    corners = int(rng.integers(3, 10))
    angles = np.sort(rng.uniform(0, 2 * math.pi, corners))
    radii = rng.uniform(0.55, 1.0, corners)
    big = (width * _SUPERSAMPLING, height * _SUPERSAMPLING)
    points = [
        (big[0] / 2 * (1 + radius * math.cos(angle)), big[1] / 2 * (1 + radius * math.sin(angle)))
        for angle, radius in zip(angles, radii, strict=True)
    ]
    image = Image.new("L", big, 0)
    ImageDraw.Draw(image).polygon(points, fill=255)
    return _reduced(image, size)


def glyph_mask(rng: np.random.Generator, size: Size) -> torch.Tensor:
    """A thick letter or digit, stretched to fill the box."""
    height, width = size
    character = rng.choice(list(string.ascii_letters + string.digits))
    font = ImageFont.load_default(size=100)
    stroke = int(rng.integers(4, 14))
    left, top, right, bottom = font.getbbox(character, stroke_width=stroke)
    image = Image.new("L", (right - left, bottom - top), 0)
    ImageDraw.Draw(image).text((-left, -top), character, fill=255, font=font, stroke_width=stroke,
                               stroke_fill=255)
    image = image.resize((width * _SUPERSAMPLING, height * _SUPERSAMPLING), Image.BILINEAR)
    return _reduced(image, size)


def silhouette_mask(rng: np.random.Generator, size: Size) -> torch.Tensor:
    """The horse silhouette bundled with scikit-image, maybe mirrored, stretched to the box."""
    import skimage.data

    horse = ~np.asarray(skimage.data.horse())  # True on the horse
    if rng.random() < 0.5:
        horse = horse[:, ::-1]
    image = Image.fromarray(np.ascontiguousarray(horse).astype(np.uint8) * 255)
    image = image.resize((size[1] * _SUPERSAMPLING, size[0] * _SUPERSAMPLING), Image.BILINEAR)
    return _reduced(image, size)


def person_mask(rng: np.random.Generator, size: Size) -> torch.Tensor:
    """A standing person, front or side on: head, torso, arms and legs filling the box's height."""
    height, width = size
    big_width, big_height = width * _SUPERSAMPLING, height * _SUPERSAMPLING
    image = Image.new("L", (big_width, big_height), 0)
    draw = ImageDraw.Draw(image)
    centre = big_width / 2
    unit = big_height / 7.5  # a head's height; adults are about 7.5 heads tall
    half_shoulders = min(big_width / 2, unit * rng.uniform(0.8, 1.1))
    head = unit * 0.42
    draw.ellipse((centre - head * 0.85, 0, centre + head * 0.85, 2 * head), fill=255)
    neck, hips, feet = unit * 1.1, unit * 3.9, big_height
    half_hips = half_shoulders * rng.uniform(0.6, 0.85)
    draw.polygon([(centre - half_shoulders, neck), (centre + half_shoulders, neck),
                  (centre + half_hips, hips), (centre - half_hips, hips)], fill=255)
    limb = max(2.0, unit * rng.uniform(0.28, 0.38))
    stride = half_hips * rng.uniform(0.0, 0.8)
    for side in (-1, 1):
        hip, foot = centre + side * half_hips * 0.5, centre + side * (half_hips * 0.4 + stride)
        draw.line([(hip, hips - limb), (foot, feet - limb / 2)], fill=255, width=round(limb * 1.3))
        swing = rng.uniform(-0.4, 0.4) * unit
        draw.line([(centre + side * (half_shoulders - limb / 2), neck + limb / 2),
                   (centre + side * (half_shoulders + limb / 4) + swing, hips + unit * 0.2)],
                  fill=255, width=round(limb))
    return _reduced(image, size)


_SHAPES = {"blob": blob_mask, "polygon": polygon_mask, "glyph": glyph_mask, "silhouette": silhouette_mask}


def random_shape(rng: np.random.Generator, size: Size) -> tuple[str, torch.Tensor]:
    """A shape of a random kind (see :data:`SHAPE_KINDS`): ``(kind, alpha (1, H, W))``."""
    kinds = list(SHAPE_KINDS)
    kind = kinds[int(rng.choice(len(kinds), p=list(SHAPE_KINDS.values())))]
    return kind, _SHAPES[kind](rng, size)


__all__ = [
    "SHAPE_KINDS",
    "blob_mask",
    "glyph_mask",
    "person_mask",
    "polygon_mask",
    "random_shape",
    "silhouette_mask",
]
