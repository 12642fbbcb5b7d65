"""Physically based ground truth for layered scenes: thin-lens blur, exact occlusion, linear radiance.

This is not the D2F renderer (:mod:`d2f.render.layered`) and shares none of its code path: it renders
the true depth-of-field of a scene that is *known* layer by layer, to supervise and evaluate D2F.

A scene is a list of :class:`SceneLayer` objects ordered back to front. Each layer is an sRGB colour
with an alpha mask and a signed circle of confusion (CoC): a number for a fronto-parallel layer, or a
per-pixel map for a slanted one (a floor, a wall), which is sliced into thin sub-layers. Rendering:

1. sRGB to linear radiance; pixels marked as lights are multiplied by their ``gain`` (well above 1),
   so that they stay bright after blurring, like real highlights.
2. Each layer's premultiplied RGBA is convolved with a disk of its CoC diameter, exactly, through the
   FFT. The sub-layers of a sliced layer are blended linearly in CoC and summed (the slices of one
   surface lie side by side and do not occlude each other).
3. The blurred layers are composited back to front with the blurred alpha (the "over" operator).
   In a synthetic scene the background behind every object is known, so nothing is inpainted; a
   blurred foreground spreads over what lies behind it, and a sharp one cuts it off cleanly.
4. The linear result is clipped to [0, 1] and converted back to sRGB.

Layers are unbatched ``(C, H, W)`` tensors on one canvas. The canvas is zero (transparent) outside;
to render a frame whose surroundings blur into it, make the canvas larger by a ``margin`` (at least
the largest blur radius) and the result is the canvas without that margin.
Sign convention: ``coc = strength * (1 / depth - 1 / focus_depth)`` is positive in front of the focus
plane and negative behind it, so sorting by signed CoC sorts from far to near.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from d2f.errors import InputError

#: Diameters (pixels) at or below this are no blur: the disk fits inside one pixel.
NO_BLUR_DIAMETER = 1.0

#: A slanted layer is cut into this many sub-layers unless asked otherwise.
DEFAULT_SLICES = 32


@dataclass(frozen=True)
class SceneLayer:
    """One layer of a layered scene, on a canvas of size (H, W).

    Attributes:
        color: (3, H, W) sRGB colour in [0, 1] (need not be premultiplied).
        alpha: (1, H, W) coverage in [0, 1].
        coc: signed CoC diameter in pixels: a number, or a (1, H, W) map for a slanted layer.
        gain: optional (1, H, W) linear-radiance multiplier >= 0 (lights: 2-10); None means 1.
    """

    color: torch.Tensor
    alpha: torch.Tensor
    coc: float | torch.Tensor
    gain: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> SceneLayer:
        """The same layer with its tensors on ``device`` (numbers and None stay as they are)."""

        def move(value):
            return value.to(device) if isinstance(value, torch.Tensor) else value

        return SceneLayer(move(self.color), move(self.alpha), move(self.coc), move(self.gain))


# ----------------------------------------------------------------------------------- colour and optics


def srgb_to_linear(image: torch.Tensor) -> torch.Tensor:
    """The sRGB transfer function (IEC 61966-2-1) inverted: sRGB values in [0, 1] to linear radiance."""
    return torch.where(image <= 0.04045, image / 12.92, ((image.clamp_min(0.0) + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(radiance: torch.Tensor) -> torch.Tensor:
    """Linear radiance in [0, 1] to sRGB (values outside are clipped first)."""
    radiance = radiance.clamp(0.0, 1.0)
    return torch.where(radiance <= 0.0031308, radiance * 12.92, 1.055 * radiance ** (1 / 2.4) - 0.055)


def thin_lens_coc(depth, focus_depth: float, strength: float):
    """Signed circle-of-confusion diameter of a thin lens, in pixels.

    ``strength * (1 / depth - 1 / focus_depth)``, where ``strength`` (often written K) folds in the
    aperture diameter, the focal length and the pixel pitch. Positive in front of the focus plane,
    negative behind it; the blur diameter is the absolute value.

    Args:
        depth: positive depth(s), a float or a tensor of any shape.
        focus_depth: positive depth of the focus plane, in the same unit.
        strength: K >= 0.
    """
    if not focus_depth > 0:
        raise InputError(f"focus_depth: expected a positive depth, got {focus_depth}")
    if not strength >= 0:
        raise InputError(f"strength: expected a non-negative number, got {strength}")
    if isinstance(depth, torch.Tensor):
        if bool((depth <= 0).any()):
            raise InputError("depth: expected positive depths, found a value <= 0")
        return strength * (depth.reciprocal() - 1.0 / focus_depth)
    if not depth > 0:
        raise InputError(f"depth: expected a positive depth, got {depth}")
    return strength * (1.0 / depth - 1.0 / focus_depth)


def disk_radius(diameter: float) -> int:
    """Half the side of :func:`disk_kernel`'s support: the pixels its disk touches around the centre."""
    if diameter <= NO_BLUR_DIAMETER:
        return 0
    return math.floor(diameter / 2 + 0.5)


def _disk_offsets(diameter: float, device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    radius = disk_radius(diameter)
    offsets = torch.arange(-radius, radius + 1, device=device, dtype=dtype)
    distance = torch.sqrt(offsets[:, None] ** 2 + offsets[None, :] ** 2)
    # Coverage of each pixel by the disk, approximated by the distance of its centre to the rim:
    # 1 inside, 0 outside, linear across the one-pixel-wide rim (so sizes between pixels are smooth).
    coverage = (diameter / 2 + 0.5 - distance).clamp(0.0, 1.0)
    return offsets, coverage


def disk_kernel(
    diameter: float, *, device: torch.device | str | None = None, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """Anti-aliased uniform disk of the given diameter (pixels), normalised to sum 1.

    A pixel's weight is its coverage by the disk (1 inside, 0 outside, linear over the one-pixel rim),
    so the half-maximum contour is the circle of the given diameter. Diameters up to 1 pixel give the
    identity kernel ``[[1]]``.

    Returns:
        (2 r + 1, 2 r + 1) tensor with ``r = disk_radius(diameter)``.
    """
    diameter = _check_diameter(diameter)
    dtype = dtype or torch.get_default_dtype()
    if disk_radius(diameter) == 0:
        return torch.ones(1, 1, device=device, dtype=dtype)
    _, coverage = _disk_offsets(diameter, device, torch.float64)
    return (coverage / coverage.sum()).to(dtype)


def _check_diameter(diameter) -> float:
    value = float(diameter)
    if not math.isfinite(value) or value < 0:
        raise InputError(f"diameter: expected a finite non-negative number, got {diameter!r}")
    return value


# ------------------------------------------------------------------------------------ FFT convolution


def _fast_length(length: int) -> int:
    """The smallest 2^a 3^b 5^c >= length: sizes the FFT handles fastest."""
    best = 1 << max(0, (length - 1).bit_length())
    power5 = 1
    while power5 < best:
        power35 = power5
        while power35 < best:
            candidate = power35
            while candidate < length:
                candidate *= 2
            best = min(best, candidate)
            power35 *= 3
        power5 *= 5
    return best


def _cosine_table(length: int, frequencies: int, radius: int, device, dtype) -> torch.Tensor:
    """``cos(2 pi f d / length)`` for f < frequencies and d = 0 .. radius, reduced exactly mod length."""
    products = torch.outer(torch.arange(frequencies, device=device), torch.arange(radius + 1, device=device))
    # Reducing the integer phase first keeps the cosine's argument small, so float32 stays accurate.
    angles = (products % length).to(torch.float64) * (2 * math.pi / length)
    return torch.cos(angles).to(dtype)


def _disk_spectrum(diameter: float, fft_shape: tuple[int, int], device, dtype) -> torch.Tensor:
    """Real spectrum (Fh, Fw // 2 + 1) of :func:`disk_kernel` centred at the origin of the FFT grid.

    The disk is even in x and in y, so its discrete Fourier transform is real:
    ``sum over (dy, dx) of k(dy, dx) cos(2 pi fy dy / Fh) cos(2 pi fx dx / Fw)``. Folding the kernel onto
    its quadrant ``dy, dx >= 0`` turns that into two small matrix products.
    """
    radius = disk_radius(diameter)
    _, coverage = _disk_offsets(diameter, device, torch.float64)
    kernel = coverage / coverage.sum()
    quadrant = kernel[radius:, radius:].clone()
    quadrant[1:, :] *= 2
    quadrant[:, 1:] *= 2
    fft_height, fft_width = fft_shape
    cos_rows = _cosine_table(fft_height, fft_height, radius, device, dtype)
    cos_columns = _cosine_table(fft_width, fft_width // 2 + 1, radius, device, dtype)
    return cos_rows @ (quadrant.to(dtype) @ cos_columns.T)


def _blur_window(
    values: torch.Tensor, diameter: float, output_start: tuple[int, int], output_size: tuple[int, int]
) -> torch.Tensor:
    """Linear (zero-padded) convolution of ``values`` (C, h, w) with a disk, on an output window.

    The output window starts at ``output_start`` relative to ``values``' top-left corner (negative
    values reach into the zero padding) and has ``output_size``. The FFT grid is large enough that
    circular wrap-around never reaches the window, so the result is exact.
    """
    radius = disk_radius(diameter)
    fft_shape, offsets = [], []
    for start, size, length in zip(output_start, output_size, values.shape[-2:], strict=True):
        # The input goes in at ``offset`` so that the window starts at a non-negative index. Output o
        # reads inputs o - r .. o + r: the input's aliases shifted by +-N must stay out of that range.
        offset = max(0, -start)
        needed = max(start + size + radius, length - start + radius, offset + length, 2 * radius + 1)
        fft_shape.append(_fast_length(needed))
        offsets.append(offset)
    grid = values.new_zeros((values.shape[0], *fft_shape))
    (offset_top, offset_left), (height, width) = offsets, values.shape[-2:]
    grid[:, offset_top : offset_top + height, offset_left : offset_left + width] = values
    spectrum = torch.fft.rfft2(grid)
    spectrum *= _disk_spectrum(diameter, tuple(fft_shape), values.device, values.dtype)
    blurred = torch.fft.irfft2(spectrum, s=tuple(fft_shape))
    top, left = output_start[0] + offset_top, output_start[1] + offset_left
    return blurred[:, top : top + output_size[0], left : left + output_size[1]]


def disk_blur(image: torch.Tensor, diameter: float) -> torch.Tensor:
    """Convolve (C, H, W) with :func:`disk_kernel` (``diameter`` in pixels), zero outside the image.

    Exact (through the FFT, on a grid large enough that nothing wraps around); same size out.
    """
    _check_image(image, "image")
    _value_range(image, "image")
    diameter = _check_diameter(diameter)
    if disk_radius(diameter) == 0:
        return image.clone()
    return _blur_window(image, diameter, (0, 0), tuple(image.shape[-2:]))


# -------------------------------------------------------------------------------------------- slicing

# A sub-layer: its alpha on its bounding box (1, h, w), the box's top-left corner on the canvas, its CoC.
SubLayer = tuple[torch.Tensor, tuple[int, int], float]


def _support(alpha: torch.Tensor) -> tuple[int, int, int, int] | None:
    """Bounding box (top, bottom, left, right) of the non-zero pixels of (1, H, W), or None."""
    rows = torch.nonzero(alpha.amax(dim=(0, 2)) > 0)
    if rows.numel() == 0:
        return None
    columns = torch.nonzero(alpha.amax(dim=(0, 1)) > 0)
    return int(rows[0]), int(rows[-1]) + 1, int(columns[0]), int(columns[-1]) + 1


def _cropped(alpha: torch.Tensor, top: int, left: int, coc: float) -> SubLayer | None:
    box = _support(alpha)
    if box is None:
        return None
    box_top, box_bottom, box_left, box_right = box
    return alpha[:, box_top:box_bottom, box_left:box_right], (top + box_top, left + box_left), coc


def _ranges_touching(low: torch.Tensor, high: torch.Tensor, lower: float, upper: float) -> tuple[int, int]:
    """First and one-past-last index whose [low, high] interval meets the open interval (lower, upper)."""
    hits = torch.nonzero((low < upper) & (high > lower))
    if hits.numel() == 0:
        return 0, 0
    return int(hits[0]), int(hits[-1]) + 1


def _check_slices(slices: int) -> int:
    if isinstance(slices, bool) or not isinstance(slices, int) or slices < 1:
        raise InputError(f"slices: expected a positive integer, got {slices!r}")
    return slices


def _slice_positions(layer: SceneLayer, slices: int) -> tuple[torch.Tensor, float, float, int] | None:
    """For a layer with a CoC map: ``(position, low, step, count)``, or None when it is one slice.

    Slice k has CoC ``low + k * step`` (k < count); ``position`` (1, H, W) is each pixel's CoC in units
    of slices from the first, so its share of slice k is ``max(0, 1 - |position - k|)``.
    """
    if not isinstance(layer.coc, torch.Tensor) or _check_slices(slices) == 1:
        return None
    covered = layer.alpha > 0
    if not bool(covered.any()):
        return None
    coc_map = layer.coc.to(layer.alpha.dtype)
    low, high = float(coc_map[covered].min()), float(coc_map[covered].max())
    if high - low < 1e-6:
        return None
    step = (high - low) / (slices - 1)
    return ((coc_map - low) / step).clamp(0.0, slices - 1), low, step, slices


def _single_coc(layer: SceneLayer) -> float:
    """The CoC of a layer rendered as one slice: its number, or the middle of its map's range."""
    if not isinstance(layer.coc, torch.Tensor):
        return float(layer.coc)
    covered = layer.alpha > 0
    if not bool(covered.any()):
        return 0.0
    values = layer.coc[covered]
    return (float(values.min()) + float(values.max())) / 2


def _sublayers(layer: SceneLayer, slices: int) -> list[SubLayer]:
    """The sub-layers of a layer, far to near, each cropped to its bounding box."""
    sliced = _slice_positions(layer, slices)
    if sliced is None:
        sublayer = _cropped(layer.alpha, 0, 0, _single_coc(layer))
        return [sublayer] if sublayer is not None else []
    position, low, step, count = sliced
    covered = layer.alpha > 0
    # Per row and column, the range of positions of covered pixels: finds each slice's box cheaply.
    inf = torch.tensor(float("inf"), dtype=position.dtype, device=position.device)
    lowest, highest = torch.where(covered, position, inf), torch.where(covered, position, -inf)
    row_low, row_high = lowest.amin(dim=(0, 2)), highest.amax(dim=(0, 2))
    column_low, column_high = lowest.amin(dim=(0, 1)), highest.amax(dim=(0, 1))
    result = []
    for index in range(count):
        top, bottom = _ranges_touching(row_low, row_high, index - 1, index + 1)
        left, right = _ranges_touching(column_low, column_high, index - 1, index + 1)
        if top == bottom or left == right:
            continue
        window = position[:, top:bottom, left:right]
        # Tent weights: a pixel between two slice CoCs is shared between them linearly.
        share = (1.0 - (window - index).abs()).clamp_min(0.0)
        sublayer = _cropped(layer.alpha[:, top:bottom, left:right] * share, top, left, low + index * step)
        if sublayer is not None:
            result.append(sublayer)
    return result


def layer_slices(layer: SceneLayer, slices: int = DEFAULT_SLICES) -> list[tuple[torch.Tensor, float]]:
    """The sub-layers of a layer: a list of ``(alpha, coc)`` with alpha (1, H, W), far to near.

    A layer with a number as CoC is one sub-layer. A CoC map is cut at ``slices`` CoC values spread
    evenly over its range (where alpha > 0); each pixel's alpha is shared between the two nearest
    values in proportion to its distance from them, so the sub-layers sum back to the layer and the
    blur varies smoothly. Sub-layers with no coverage are left out.
    """
    result = []
    for alpha, (top, left), coc in _sublayers(layer, slices):
        full = torch.zeros_like(layer.alpha)
        full[:, top : top + alpha.shape[1], left : left + alpha.shape[2]] = alpha
        result.append((full, coc))
    return result


# ------------------------------------------------------------------------------------------ rendering


def _value_range(value: torch.Tensor, name: str) -> tuple[float, float]:
    """Minimum and maximum of a tensor; InputError if it holds NaN or inf."""
    low, high = (float(bound) for bound in torch.aminmax(value))
    if not (math.isfinite(low) and math.isfinite(high)):
        raise InputError(f"{name}: expected finite values, found NaN or inf")
    return low, high


def _check_image(value: object, name: str, channels: int | None = None) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise InputError(f"{name}: expected a torch.Tensor, got {type(value).__name__}")
    if value.dim() != 3 or (channels is not None and value.shape[0] != channels):
        expected = f"({channels}, H, W)" if channels is not None else "(C, H, W)"
        raise InputError(f"{name}: expected shape {expected}, got {tuple(value.shape)}")
    if not value.is_floating_point():
        raise InputError(f"{name}: expected a floating-point dtype, got {value.dtype}")
    if min(value.shape) < 1:
        raise InputError(f"{name}: expected a non-empty tensor, got shape {tuple(value.shape)}")
    return value


def _check_layers(layers: Sequence[SceneLayer], margin: int) -> tuple[int, int]:
    if isinstance(layers, SceneLayer) or not isinstance(layers, Sequence) or not layers:
        raise InputError("layers: expected a non-empty sequence of SceneLayer, back to front")
    canvas = None
    for index, layer in enumerate(layers):
        if not isinstance(layer, SceneLayer):
            raise InputError(f"layers[{index}]: expected a SceneLayer, got {type(layer).__name__}")
        name = f"layers[{index}]"
        maps = {
            "color": _check_image(layer.color, f"{name}.color", 3),
            "alpha": _check_image(layer.alpha, f"{name}.alpha", 1),
        }
        if isinstance(layer.coc, torch.Tensor):
            maps["coc"] = _check_image(layer.coc, f"{name}.coc", 1)
        elif not isinstance(layer.coc, int | float) or not math.isfinite(layer.coc):
            raise InputError(f"{name}.coc: expected a finite number or a (1, H, W) tensor, got {layer.coc!r}")
        if layer.gain is not None:
            maps["gain"] = _check_image(layer.gain, f"{name}.gain", 1)
        size = tuple(layer.color.shape[-2:])
        canvas = canvas or size
        if size != canvas:
            raise InputError(f"{name}: expected the canvas size {canvas} of layers[0], got {size}")
        for key, value in maps.items():
            if tuple(value.shape[-2:]) != size:
                raise InputError(
                    f"{name}.{key}: expected size {size} like its color, got {tuple(value.shape)}"
                )
            low, high = _value_range(value, f"{name}.{key}")
            if key == "alpha" and (low < 0 or high > 1):
                raise InputError(f"{name}.alpha: expected values in [0, 1], found [{low:.4g}, {high:.4g}]")
            if key == "gain" and low < 0:
                raise InputError(f"{name}.gain: expected non-negative values, found {low:.4g}")
    if isinstance(margin, bool) or not isinstance(margin, int) or margin < 0:
        raise InputError(f"margin: expected a non-negative integer, got {margin!r}")
    if 2 * margin >= min(canvas):
        raise InputError(f"margin: {margin} leaves nothing of a canvas of size {canvas}")
    return canvas


def _linear_window(layer: SceneLayer, box: tuple[int, int, int, int], dtype) -> torch.Tensor:
    """Linear radiance (3, h, w) of a layer on a box (top, bottom, left, right), lights boosted by gain."""
    top, bottom, left, right = box
    linear = srgb_to_linear(layer.color[:, top:bottom, left:right].to(dtype))
    if layer.gain is not None:
        linear = linear * layer.gain[:, top:bottom, left:right].to(dtype)
    return linear


def _footprint(
    sublayer: SubLayer, radius: int, frame: tuple[int, int, int, int]
) -> tuple[int, int, int, int] | None:
    """The box (top, bottom, left, right) that a sub-layer blurred by ``radius`` covers in the frame."""
    alpha, (top, left), _ = sublayer
    frame_top, frame_bottom, frame_left, frame_right = frame
    out_top, out_bottom = max(top - radius, frame_top), min(top + alpha.shape[1] + radius, frame_bottom)
    out_left, out_right = max(left - radius, frame_left), min(left + alpha.shape[2] + radius, frame_right)
    if out_top >= out_bottom or out_left >= out_right:
        return None
    return out_top, out_bottom, out_left, out_right


def _blurred_sublayer(
    linear: torch.Tensor,
    origin: tuple[int, int],
    sublayer: SubLayer,
    diameter: float,
    footprint: tuple[int, int, int, int],
) -> torch.Tensor:
    """Premultiplied linear RGBA (4, h, w) of a sub-layer blurred with a disk, on its ``footprint``.

    ``linear`` is the layer's linear radiance on a box whose top-left corner is ``origin``; only the
    sub-layer's bounding box is transformed.
    """
    alpha, (top, left), _ = sublayer
    alpha = alpha.to(linear.dtype)
    out_top, out_bottom, out_left, out_right = footprint
    if disk_radius(diameter) == 0:
        window = (
            slice(None),
            slice(out_top - top, out_bottom - top),
            slice(out_left - left, out_right - left),
        )
        alpha = alpha[window]
    else:
        window = (slice(None), slice(0, alpha.shape[1]), slice(0, alpha.shape[2]))
    rows = slice(top + window[1].start - origin[0], top + window[1].stop - origin[0])
    columns = slice(left + window[2].start - origin[1], left + window[2].stop - origin[1])
    values = torch.cat([linear[:, rows, columns] * alpha, alpha])
    if disk_radius(diameter) == 0:
        return values
    blurred = _blur_window(
        values, diameter, (out_top - top, out_left - left), (out_bottom - out_top, out_right - out_left)
    )
    # Rounding in the transforms leaves tiny negative values where the true result is 0.
    return blurred.clamp_min(0.0)


def composite_layers(
    layers: Sequence[SceneLayer],
    *,
    margin: int = 0,
    slices: int = DEFAULT_SLICES,
    sharp: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Blur and composite the layers in linear radiance, back to front, over black.

    Args:
        layers: back to front, all on one canvas (H, W).
        margin: pixels cut from every side of the canvas in the result.
        slices: sub-layers of a layer whose CoC is a map (see :func:`layer_slices`).
        sharp: no blur at all: the all-in-focus composite of the same layers.

    Returns:
        ``(radiance, alpha)``: (3, H - 2 margin, W - 2 margin) linear radiance (lights can exceed 1)
        and (1, ...) the accumulated coverage.
    """
    height, width = _check_layers(layers, margin)
    _check_slices(slices)
    frame = (margin, height - margin, margin, width - margin)
    reference = layers[0].color
    dtype = torch.promote_types(reference.dtype, torch.float32)
    out_shape = (height - 2 * margin, width - 2 * margin)
    radiance = torch.zeros((3, *out_shape), device=reference.device, dtype=dtype)
    coverage = torch.zeros((1, *out_shape), device=reference.device, dtype=dtype)
    for layer in layers:
        # Without blur the slices of a layer add back up to the layer: no need to cut it.
        sublayers = _sublayers(layer, 1 if sharp else slices)
        blurs = []
        for sublayer in sublayers:
            diameter = 0.0 if sharp else abs(sublayer[2])
            footprint = _footprint(sublayer, disk_radius(diameter), frame)
            if footprint is not None:
                blurs.append((sublayer, diameter, footprint))
        if not blurs:
            continue
        # Every box below is on the canvas; the layer's own work stays inside the union of footprints.
        source = _union([_box(sublayer) for sublayer, _, _ in blurs])
        linear = _linear_window(layer, source, dtype)
        region_top, region_bottom, region_left, region_right = _union([box for _, _, box in blurs])
        blurred = torch.zeros(
            (4, region_bottom - region_top, region_right - region_left), device=reference.device, dtype=dtype
        )
        for sublayer, diameter, (top, bottom, left, right) in blurs:
            values = _blurred_sublayer(
                linear, (source[0], source[2]), sublayer, diameter, (top, bottom, left, right)
            )
            blurred[:, top - region_top : bottom - region_top, left - region_left : right - region_left] += (
                values
            )
        region = (
            slice(None),
            slice(region_top - margin, region_bottom - margin),
            slice(region_left - margin, region_right - margin),
        )
        # "Over": what lies behind shows through where this layer's blurred coverage is incomplete.
        layer_alpha = blurred[3:].clamp(0.0, 1.0)
        radiance[region] = blurred[:3] + (1.0 - layer_alpha) * radiance[region]
        coverage[region] = layer_alpha + (1.0 - layer_alpha) * coverage[region]
    return radiance, coverage


def _box(sublayer: SubLayer) -> tuple[int, int, int, int]:
    alpha, (top, left), _ = sublayer
    return top, top + alpha.shape[1], left, left + alpha.shape[2]


def _union(boxes: Sequence[tuple[int, int, int, int]]) -> tuple[int, int, int, int]:
    return (
        min(box[0] for box in boxes),
        max(box[1] for box in boxes),
        min(box[2] for box in boxes),
        max(box[3] for box in boxes),
    )


def render_scene(
    layers: Sequence[SceneLayer],
    *,
    margin: int = 0,
    slices: int = DEFAULT_SLICES,
    sharp: bool = False,
) -> torch.Tensor:
    """Render a layered scene through a thin lens: (3, H - 2 margin, W - 2 margin) sRGB in [0, 1].

    :func:`composite_layers`, then the linear radiance is clipped to [0, 1] and converted to sRGB.
    With ``sharp=True`` the result is the all-in-focus photo of the same scene.
    """
    radiance, _ = composite_layers(layers, margin=margin, slices=slices, sharp=sharp)
    return linear_to_srgb(radiance)


def in_focus_coverage(
    layers: Sequence[SceneLayer],
    *,
    margin: int = 0,
    slices: int = DEFAULT_SLICES,
    threshold: float = NO_BLUR_DIAMETER,
) -> torch.Tensor:
    """Share of each pixel of the all-in-focus composite that comes from in-focus surfaces.

    A (sub-)layer is in focus when its CoC diameter is at most ``threshold`` pixels. The result is
    (1, H - 2 margin, W - 2 margin) in [0, 1]: 1 where only in-focus surfaces are seen, fractional on
    anti-aliased edges between in-focus and blurred surfaces and where a slanted layer leaves focus.
    """
    height, width = _check_layers(layers, margin)
    _check_slices(slices)
    reference = layers[0].alpha
    dtype = torch.promote_types(reference.dtype, torch.float32)
    crop = (slice(None), slice(margin, height - margin), slice(margin, width - margin))
    share = torch.zeros_like(reference[crop], dtype=dtype)
    for layer in layers:
        alpha = layer.alpha[crop].to(dtype)
        sliced = _slice_positions(layer, slices)
        if sliced is None:
            focused = alpha if abs(_single_coc(layer)) <= threshold else torch.zeros_like(alpha)
        else:
            position, low, step, count = sliced
            in_focus = [index for index in range(count) if abs(low + index * step) <= threshold]
            if in_focus:
                # The tent shares of the consecutive in-focus slices sum to 1 between the first and
                # the last of them and fall off linearly over one slice on either side.
                position = position[crop].to(dtype)
                outside = (in_focus[0] - position).clamp_min(0) + (position - in_focus[-1]).clamp_min(0)
                focused = alpha * (1 - outside).clamp_min(0)
            else:
                focused = torch.zeros_like(alpha)
        share = focused + (1.0 - alpha) * share
    return share.clamp(0.0, 1.0)


__all__ = [
    "DEFAULT_SLICES",
    "NO_BLUR_DIAMETER",
    "SceneLayer",
    "composite_layers",
    "disk_blur",
    "disk_kernel",
    "disk_radius",
    "in_focus_coverage",
    "layer_slices",
    "linear_to_srgb",
    "render_scene",
    "srgb_to_linear",
    "thin_lens_coc",
]
