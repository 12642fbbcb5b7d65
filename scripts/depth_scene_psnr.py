"""How close d2f comes to a physically exact lens when it is given the scene's own depth: PSNR in dB.

    python scripts/depth_scene_psnr.py                      # 16 standard validation scenes, 512x768
    python scripts/depth_scene_psnr.py --count 4 --size 256 384

Each synthetic scene (the lite configs' validation set: ``SyntheticBokehDataset(16, (512, 768),
seed=1, kernel_scale=0.6)``, as scripts/focus_psnr.py) comes with its exact bokeh, rendered layer by
layer through a thin lens in linear light (:mod:`d2f.render.scene`), and its exact disparity. d2f
renders the all-in-focus photo from that disparity, focused on the subject, with the aperture that
gives the scene's blur:

- ``renderer``: d2f's weighted layered renderer alone at full resolution (kernel diameters doubled to
  reach the scene's largest blur), with the saturation weight of clipped highlights and a uniform
  radiance weight elsewhere, defocus from :func:`d2f.render.lens.thin_lens_defocus`;
- ``model``: the whole pipeline, ``predict(model, image, disparity=..., focus=(x, y), f_number=N)``
  with the bundled d2f-lite (its radiance and fusion networks; stage 1 at half resolution).

The f-number is the one whose circle of confusion per unit of normalised disparity,
``LENS_BLUR / N`` of the longer side, equals the scene's: ``strength * (max - min disparity)`` pixels.
"""

from __future__ import annotations

import argparse
import math
import sys

import torch
import torch.nn.functional as F

from d2f.data.synthetic import generate_scene, scene_name
from d2f.data.textures import resolve_textures
from d2f.errors import D2FError
from d2f.models import load_bundled
from d2f.options import F_NUMBER_RANGE
from d2f.pipeline import predict
from d2f.render import KERNEL_SIZES, saturation_weight, weighted_layered_render
from d2f.render.lens import LENS_BLUR, disparity_at, thin_lens_defocus

#: The renderer's kernels at full resolution: twice the radii of stage 1's half resolution.
FULL_RESOLUTION_SIZES = tuple(2 * size - 1 for size in KERNEL_SIZES)


def scene_lens(
    scene: dict, params: dict, stage1_size: tuple[int, int]
) -> tuple[torch.Tensor, float, float, tuple[float, float]]:
    """(normalised disparity (1, 1, H, W), its focus value, CoC in full-resolution pixels per unit of
    it, a focus point (x, y) on the in-focus subject).

    The point is where a user would click: the pixel deepest inside the subject whose focus window
    (the median of a box of 2 % of stage 1's longer side, as ``D2F`` takes it) gives the subject's
    disparity; a subject thinner than the box cannot be focused on by a click, and then the deepest
    pixel is taken anyway.
    """
    from scipy import ndimage

    disparity = scene["disparity"][None]
    low, high = float(disparity.min()), float(disparity.max())
    span = max(high - low, 1e-12)
    normalised = (disparity - low) / span
    focus_value = (1 / params["focus_depth"] - low) / span
    coc_per_unit = params["strength"] * span
    in_focus = (scene["coc"][0].abs() < 1e-6).numpy()
    depth_inside = torch.from_numpy(ndimage.distance_transform_edt(in_focus)).flatten()
    height, width = in_focus.shape
    small = F.interpolate(normalised, size=stage1_size, mode="bilinear", antialias=True)
    window = max(3, round(0.02 * max(stage1_size)))
    candidates = depth_inside.argsort(descending=True)[:2000]
    for index in candidates.tolist():
        row, column = divmod(index, width)
        point = (column * stage1_size[1] / width, row * stage1_size[0] / height)
        if abs(float(disparity_at(small, point, window)[0]) - focus_value) < 1e-3:
            break
    else:
        row, column = divmod(int(candidates[0]), width)
    return normalised, focus_value, coc_per_unit, (float(column), float(row))


def render_with_renderer(scene: dict, normalised, focus_value: float, coc_per_unit: float) -> torch.Tensor:
    image = scene["image"][None]
    defocus = thin_lens_defocus(
        normalised, focus_value, coc_per_unit, kernel_sizes=FULL_RESOLUTION_SIZES
    )
    weight = saturation_weight(image, torch.ones_like(image[:, :1]))
    return weighted_layered_render(image, defocus, weight, kernel_sizes=FULL_RESOLUTION_SIZES)[0]


def render_with_model(model, scene: dict, normalised, coc_per_unit: float, point) -> torch.Tensor:
    image = scene["image"][None]
    aperture = coc_per_unit / (LENS_BLUR * max(image.shape[-2:]))  # 1 / N
    f_number = min(max(1 / aperture, F_NUMBER_RANGE[0]), F_NUMBER_RANGE[1]) if aperture > 0 else 64.0
    # Beyond f/64 the remaining factor goes into strength, so that small blurs stay exact.
    strength = aperture * f_number if aperture > 0 else 0.0
    output = predict(
        model, image, device="cpu", disparity=normalised, focus=point, f_number=f_number, strength=strength
    )
    return output.bokeh[0]


def psnr(squared_error: float, count: int) -> float:
    mean = squared_error / max(count, 1)
    return math.inf if mean == 0 else -10 * math.log10(mean)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=16, help="number of validation scenes (default 16)")
    parser.add_argument("--size", type=int, nargs=2, default=(512, 768), metavar=("H", "W"))
    parser.add_argument(
        "--kernel-scale", type=float, default=0.6, help="the scenes' blur range (default 0.6)"
    )
    parser.add_argument("--seed", type=int, default=1, help="the scenes' seed (default 1)")
    parser.add_argument("--textures", help="a texture folder (default: scikit-image's photos)")
    parser.add_argument("--no-model", action="store_true", help="only the renderer, not the bundled model")
    args = parser.parse_args(argv)
    torch.set_grad_enabled(False)
    try:
        model = None if args.no_model else load_bundled("d2f-lite")
        totals = {"renderer": [0.0, 0], "model": [0.0, 0], "input": [0.0, 0]}
        textures = resolve_textures(args.textures)
        for index in range(args.count):
            # Item ``index`` of SyntheticBokehDataset(count, size, seed=seed, ...), with its parameters.
            scene = generate_scene(
                [args.seed, index], tuple(args.size), textures, kernel_scale=args.kernel_scale
            )
            scene["name"] = scene_name(index)
            params = scene["params"]
            stage1_size = model.stage1_size(*args.size) if model is not None else tuple(args.size)
            normalised, focus_value, coc_per_unit, point = scene_lens(scene, params, stage1_size)
            results = {"input": scene["image"],
                       "renderer": render_with_renderer(scene, normalised, focus_value, coc_per_unit)}
            if model is not None:
                results["model"] = render_with_model(model, scene, normalised, coc_per_unit, point)
            line = [f"{scene['name']}: blur {params['background_blur_half_res'] * 2:5.1f} px"]
            for name, rendered in results.items():
                error = float(((rendered.clamp(0, 1) - scene["bokeh"]) ** 2).sum())
                totals[name][0] += error
                totals[name][1] += rendered.numel()
                line.append(f"{name} {psnr(error, rendered.numel()):5.2f} dB")
            print("  ".join(line), flush=True)
    except D2FError as error:
        print(f"depth_scene_psnr.py: error: {error}", file=sys.stderr)
        return error.exit_code
    summary = ", ".join(f"{name} {psnr(*totals[name]):.2f} dB" for name in totals if totals[name][1])
    print(f"PSNR against the exact bokeh over {args.count} scenes {args.size[0]}x{args.size[1]}: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
