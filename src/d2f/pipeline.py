"""Images in, bokeh images out: the Python entry point of d2f.

:func:`render_image` takes a path, a Pillow image, an (H, W, 3) array or a tensor and returns the
same kind of thing, at exactly the input size. :func:`predict` is the tensor-level step underneath it
(the command-line tool uses it too, to get the defocus map as well).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import torch
from PIL import Image

from d2f.errors import InputError
from d2f.io import array_to_tensor, pil_to_tensor, read_image, tensor_to_array, tensor_to_pil
from d2f.options import RenderOptions, render_options

if TYPE_CHECKING:
    from d2f.models import D2F, D2FOutput

#: Accepted values of ``precision`` (those of ``D2F.forward``).
PRECISIONS: tuple[str, ...] = ("fp32", "bf16")


#: What :func:`render_image` accepts (and returns, with a path giving a Pillow image).
ImageLike = str | os.PathLike | Image.Image | np.ndarray | torch.Tensor


def default_model() -> D2F:
    """The bundled default model (d2f-lite): loaded anew on each call, float32, eval mode, on the CPU.

    Raises an InputError saying what to pass instead when this installation has no bundled weights.
    """
    from d2f.models.presets import DEFAULT_MODEL, is_bundled, load_bundled

    if not is_bundled(DEFAULT_MODEL):
        raise InputError(
            f"no model available: this installation of d2f has no bundled {DEFAULT_MODEL} weights; pass "
            "model=d2f.models.load_official(stage1, stage2) for the paper's checkpoints or "
            "model=d2f.models.load_pretrained(path) for d2f's own format"
        )
    return load_bundled(DEFAULT_MODEL)


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` or ``"auto"``: CUDA when available, else the CPU; otherwise the device named."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise InputError(f"device: expected 'auto', 'cpu' or 'cuda[:index]', got {device!r}") from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InputError("device: 'cuda' was requested but CUDA is not available on this machine")
    return resolved


def predict(
    model: D2F,
    images: torch.Tensor,
    options: RenderOptions | None = None,
    *,
    device: str | torch.device | None = None,
    precision: str = "fp32",
    blur_scale: float | torch.Tensor | None = None,
    disparity: torch.Tensor | None = None,
    disparity_range: float | torch.Tensor | None = None,
    **overrides: Any,
) -> D2FOutput:
    """Run a D2F model on a batch (N, 3, H, W) of float images in [0, 1].

    The model is moved to ``device`` (see :func:`resolve_device`; in place, as ``Module.to`` does) and
    run in eval mode under ``torch.inference_mode()``; a model in training mode is put back into it
    afterwards. ``precision="bf16"`` runs the networks under bfloat16 autocast with channels-last
    tensors (the renderer and the final blend stay float32). ``options`` and keywords named like its
    fields (``strength``, ``focus``, ``f_number``, ...; see :class:`d2f.options.RenderOptions`) say how
    to render; ``disparity`` (N, 1, H', W'), a normalised disparity (0 far, 1 near), renders from that
    depth instead of the network's, and ``disparity_range`` (1/m, see ``D2F.forward``) says what its 1
    stands for; ``blur_scale`` is the scene's blur scale for models that predict
    relative defocus (``D2F.forward``; None: the model's default). Returns the model's ``D2FOutput``, on
    ``device``.
    """
    if not isinstance(model, torch.nn.Module):
        raise InputError(f"model: expected a d2f.models.D2F, got {type(model).__name__}")
    if precision not in PRECISIONS:
        raise InputError(f"precision: expected one of {', '.join(PRECISIONS)}, got {precision!r}")
    options = render_options(options, **overrides)
    _check_image_tensor(images, "images", dims=(4,))
    target = resolve_device(device)
    model.to(target)
    batch = images.to(device=target, dtype=torch.float32)
    if disparity is not None:
        disparity = disparity.to(device=target, dtype=torch.float32)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            return model(
                batch,
                options,
                precision=precision,
                blur_scale=blur_scale,
                disparity=disparity,
                disparity_range=disparity_range,
            )
    finally:
        model.train(was_training)


def background_blur_scale(model: D2F, size: tuple[int, int], diameter: float) -> float:
    """The blur scale (see ``D2F.forward``) that blurs the farthest background of an (H, W) photo into a
    disc of ``diameter`` pixels of the photo, for a model that predicts relative defocus.

    Stage 1 renders at :meth:`D2F.stage1_size`, so the diameter is converted to stage-1 pixels first;
    beyond the renderer's largest kernel (69 px at stage-1 size) the scale stays at its maximum, 1.
    """
    from d2f.render import diameter_to_defocus

    if isinstance(diameter, bool) or not isinstance(diameter, (int, float)) or not 0 <= diameter < math.inf:
        raise InputError(f"diameter: expected a finite number of pixels >= 0, got {diameter!r}")
    height, width = size
    stage1_width = model.stage1_size(height, width)[1]
    return float(diameter_to_defocus(diameter * stage1_width / width))


def render_image(
    image: ImageLike,
    model: D2F | str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    *,
    options: RenderOptions | None = None,
    precision: str = "fp32",
    max_megapixels: float | None = 50.0,
    depth: str | os.PathLike | np.ndarray | torch.Tensor | None = None,
    depth_kind: str = "disparity",
    depth_invalid: float | None = None,
    depth_scale: float | None = None,
    **overrides: Any,
) -> ImageLike:
    """Render bokeh for one image (or a batch of tensors), returned as the same kind of thing.

    - a path (``str`` or ``os.PathLike``): the file is read with :func:`d2f.io.read_image` (EXIF
      orientation applied, any colour mode converted to RGB, alpha dropped, ``max_megapixels``
      enforced) and the result is an 8-bit RGB **Pillow image** (write it with :func:`d2f.io.write_image`);
    - a Pillow image (any mode, taken as it is: no EXIF rotation): an 8-bit RGB Pillow image;
    - an (H, W, 3) NumPy array, uint8 or floating point in [0, 1]: an array of the same shape and dtype;
    - a tensor (3, H, W), (N, 3, H, W) or (H, W, 3), floating point in [0, 1] or uint8: a tensor of the
      same shape, dtype and device (a shape whose first dimension is 3 is read as channels first).

    The output has exactly the input's height and width. ``model`` is a loaded :class:`d2f.models.D2F`,
    a bundled model's name (``"d2f-lite"``) or a :meth:`D2F.save_pretrained` folder or file (loaded by
    :func:`d2f.load` on each call: load it once to render many photos); None is the bundled default
    model. ``device`` and ``precision`` are those of :func:`predict`, and so are ``options`` and the
    keywords named like its fields (``strength=0.5``, ``focus=(x, y)``, ``f_number=2.8``, ...; see
    :class:`d2f.options.RenderOptions`). Everything runs under ``torch.inference_mode()``, so a tensor
    result cannot take part in autograd (train with the model).

    ``depth`` renders from your own depth map instead of the model's: a file (read with
    :func:`d2f.io.read_depth`) or an (H', W') array or tensor, of the photo's aspect ratio at any size;
    ``depth_kind`` says whether its values are ``"disparity"`` (larger is nearer) or ``"depth"``, and
    ``depth_invalid`` names a value that marks unknown pixels (besides 0, NaN and inf), which are filled
    from their neighbours. The depth options (``focus``, ``f_number``, ``focus_range``, ...) then work
    with any model. ``depth_scale`` says the map is metric: its values times ``depth_scale`` are metres
    (depth) or 1/m (disparity), e.g. 0.001 for millimetres; the blur then follows the scene's measured
    depth range as a real lens's does (see :func:`d2f.depth_maps.disparity_span`), whatever the model.
    """
    options = render_options(options, **overrides)
    disparity = disparity_range = None
    if depth is not None:
        disparity, disparity_range = depth_input(depth, depth_kind, depth_invalid, depth_scale)
    elif depth_scale is not None:
        raise InputError("depth_scale: only with a depth map (depth=) whose units it gives")
    model = _resolve_model(model)

    def render_one(tensor: torch.Tensor) -> torch.Tensor:
        """(3, H, W) in, (3, H, W) float32 bokeh out, on the CPU."""
        one_disparity = matching_depth(disparity, tensor.shape[-2:], 1)
        output = predict(
            model,
            tensor.unsqueeze(0),
            options,
            device=device,
            precision=precision,
            disparity=one_disparity,
            disparity_range=disparity_range,
        )
        return output.bokeh[0].float().cpu()

    if isinstance(image, (str, os.PathLike)):
        return tensor_to_pil(render_one(read_image(Path(image), max_megapixels=max_megapixels)))
    if isinstance(image, Image.Image):
        return tensor_to_pil(render_one(pil_to_tensor(image)))
    if isinstance(image, np.ndarray):
        bokeh = render_one(array_to_tensor(image))
        if image.dtype == np.uint8:
            return tensor_to_array(bokeh)
        return bokeh.clamp(0.0, 1.0).permute(1, 2, 0).numpy().astype(image.dtype)
    if isinstance(image, torch.Tensor):
        batch, restore = _tensor_as_batch(image)
        batch_disparity = matching_depth(disparity, batch.shape[-2:], batch.shape[0])
        output = predict(
            model,
            batch,
            options,
            device=device,
            precision=precision,
            disparity=batch_disparity,
            disparity_range=disparity_range,
        )
        return restore(output.bokeh)
    raise InputError(
        "image: expected a path, a PIL.Image.Image, an (H, W, 3) numpy array or a tensor, "
        f"got {type(image).__name__}"
    )


def _resolve_model(model: object) -> torch.nn.Module:
    """``render_image``'s ``model``: a module as it is, a name or path loaded, None the default model."""
    if model is None:
        return default_model()
    if isinstance(model, (str, os.PathLike)):
        from d2f.models import load

        return load(model)
    if not isinstance(model, torch.nn.Module):
        raise InputError(
            f"model: expected a d2f.models.D2F, a bundled model's name or a path, got {type(model).__name__}"
        )
    return model


def _tensor_as_batch(image: torch.Tensor) -> tuple[torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]:
    """A (N, 3, H, W) float batch in [0, 1] from an image tensor, and the function that gives the
    rendered batch back in the input's shape, dtype and device."""
    channels_last = image.dim() == 3 and image.shape[0] != 3 and image.shape[-1] == 3
    if not (image.dim() in (3, 4) and (image.shape[-3] == 3 or channels_last)):
        shapes = "(3, H, W), (N, 3, H, W) or (H, W, 3)"
        raise InputError(f"image: expected a tensor of shape {shapes}, got {tuple(image.shape)}")
    is_uint8 = image.dtype == torch.uint8
    if not (is_uint8 or image.is_floating_point()):
        raise InputError(
            f"image: expected a floating-point tensor in [0, 1] or a uint8 one, got {image.dtype}"
        )
    chw = image.permute(2, 0, 1) if channels_last else image
    if is_uint8:
        chw = chw.float() / 255.0
    batch = chw if chw.dim() == 4 else chw.unsqueeze(0)
    _check_image_tensor(batch, "image", dims=(4,))

    def restore(bokeh: torch.Tensor) -> torch.Tensor:
        result = bokeh.reshape(chw.shape)
        if channels_last:
            result = result.permute(1, 2, 0)
        if is_uint8:
            result = result.clamp(0.0, 1.0).mul(255.0).round()
        return result.to(device=image.device, dtype=image.dtype).contiguous()

    return batch, restore


class DepthInput(NamedTuple):
    """A depth map ready to render from: ``disparity`` (1, 1, H', W') normalised (0 far, 1 near) and,
    for a metric map, ``disparity_range``: what its 1 stands for, in 1/m (else None)."""

    disparity: torch.Tensor
    disparity_range: float | None


def depth_input(
    depth: str | os.PathLike | np.ndarray | torch.Tensor,
    kind: str = "disparity",
    invalid: float | None = None,
    scale: float | None = None,
) -> DepthInput:
    """A depth map (file, array or tensor) as the normalised disparity a model renders from and, with
    ``scale`` (the map's values times it are metres, or 1/m for disparity), its range in 1/m
    (:func:`d2f.depth_maps.disparity_span`)."""
    from d2f.depth_maps import load_depth_values, metric_disparity, normalised_disparity

    name = "depth"
    if isinstance(depth, (str, os.PathLike)):
        depth, name = load_depth_values(depth), str(depth)
    elif not isinstance(depth, (np.ndarray, torch.Tensor)):
        raise InputError(f"depth: expected a path, an (H, W) array or a tensor, got {type(depth).__name__}")
    if scale is None:
        return DepthInput(normalised_disparity(depth, kind, invalid, name=name)[None], None)
    disparity, span = metric_disparity(depth, kind, invalid, depth_scale=scale, name=name)
    return DepthInput(disparity[None], span)


def matching_depth(disparity: torch.Tensor | None, size: tuple[int, int], batch: int) -> torch.Tensor | None:
    """``disparity`` for ``batch`` photos of ``size`` (H, W): the same aspect ratio (within 2 %) is required,
    since a map of another shape belongs to another photo or another orientation."""
    if disparity is None:
        return None
    height, width = size
    map_height, map_width = disparity.shape[-2:]
    if abs(math.log((map_width / map_height) / (width / height))) > 0.02:
        raise InputError(
            f"depth: the map is {map_width}x{map_height} but the photo {width}x{height}; expected the "
            "same aspect ratio (a map of another photo, or rotated?)"
        )
    return disparity.expand(batch, -1, -1, -1)


def _check_image_tensor(image: object, name: str, *, dims: tuple[int, ...]) -> None:
    """A finite float tensor in [0, 1] of shape (3, H, W) (if 3 in ``dims``) or (N, 3, H, W)."""
    expected = " or ".join({3: "(3, H, W)", 4: "(N, 3, H, W)"}[dim] for dim in dims)
    if not isinstance(image, torch.Tensor):
        raise InputError(f"{name}: expected a tensor of shape {expected}, got {type(image).__name__}")
    if image.dim() not in dims or image.shape[-3] != 3:
        raise InputError(f"{name}: expected shape {expected}, got {tuple(image.shape)}")
    if not image.is_floating_point():
        raise InputError(f"{name}: expected a floating-point tensor in [0, 1], got {image.dtype}")
    if image.numel() == 0:
        raise InputError(f"{name}: expected a non-empty tensor, got shape {tuple(image.shape)}")
    if not bool(torch.isfinite(image).all()):
        raise InputError(f"{name}: expected finite values, found NaN or inf")
    low, high = float(image.min()), float(image.max())
    if low < 0.0 or high > 1.0:
        raise InputError(f"{name}: expected values in [0, 1], got the range [{low:.4g}, {high:.4g}]")
