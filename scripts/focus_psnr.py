"""How sharp a model keeps the in-focus subject: PSNR inside the in-focus mask, output against input.

    python scripts/focus_psnr.py                                    # the bundled d2f-lite
    python scripts/focus_psnr.py --model runs/lite_stage2k/model --textures textures --count 16

The scenes are a training config's synthetic validation set (``d2f train`` validates on
``SyntheticBokehDataset(val_count, size, seed=data.seed + 1, kernel_scale=...)``); by default
configs/lite_stage1.yaml's: 16 scenes of 512x768, seed 1, kernel scale 0.6. With
``--companion-focus-probability`` other objects also stand in the focus plane (and in the mask), with
``--subject-support-probability`` the subject stands on a pole or stem (in the mask too). With
``--scene-blur-scale`` a model that predicts relative defocus renders each scene at its own blur scale
(the largest true defocus in the frame, as the scene's aperture gives it) instead of its default. With
``--strength`` every defocus map is multiplied by that factor first, as ``d2f render --strength`` does; with
``--focus-range`` a depth model keeps that disparity offset around the focus sharp. With
``--perspective-probability`` that share of the scenes are perspective scenes (d2f-lite-2's training mix
draws half). With ``--focus-hint`` a model that predicts depth is told to focus on the subject (the
point of the in-focus mask farthest from its edge, the frame's edge included) instead of choosing its
own focus; a scene with nothing in focus gets no hint. Prints the PSNR of each scene, how close the
whole output is to the true bokeh (PSNR over every pixel of every scene), then the PSNR of all masked
pixels together.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch

from d2f.data.synthetic import SyntheticBokehDataset
from d2f.errors import D2FError
from d2f.models import CONFIGS, load_bundled, load_pretrained
from d2f.pipeline import predict
from d2f.real_lens.hints import deepest_point


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="d2f-lite", help="a bundled model name or a model folder")
    parser.add_argument("--textures", help="the texture folder of training (default: none)")
    parser.add_argument("--count", type=int, default=16, help="number of validation scenes")
    parser.add_argument("--size", type=int, nargs=2, default=(512, 768), metavar=("H", "W"))
    parser.add_argument("--kernel-scale", type=float, default=0.6, help="the config's data.kernel_scale")
    parser.add_argument("--seed", type=int, default=1, help="the scenes' seed (data.seed + 1)")
    parser.add_argument(
        "--companion-focus-probability", type=float, default=0.0, help="the config's data option (default 0)"
    )
    parser.add_argument(
        "--subject-support-probability", type=float, default=0.0, help="the config's data option (default 0)"
    )
    parser.add_argument(
        "--scene-blur-scale", action="store_true", help="relative models: give each scene's own blur scale"
    )
    parser.add_argument("--strength", type=float, default=1.0, help="scale the blur (default 1)")
    parser.add_argument(
        "--focus-range", type=float, help="depth models: keep offsets up to this sharp (default 0)"
    )
    parser.add_argument(
        "--perspective-probability", type=float, default=0.0, help="share of perspective scenes (default 0)"
    )
    parser.add_argument(
        "--focus-hint", action="store_true", help="depth models: focus on the subject, not their own choice"
    )
    args = parser.parse_args(argv)
    try:
        model = load_bundled(args.model) if args.model in CONFIGS else load_pretrained(Path(args.model))
        scenes = SyntheticBokehDataset(
            args.count,
            tuple(args.size),
            seed=args.seed,
            textures=args.textures,
            kernel_scale=args.kernel_scale,
            companion_focus_probability=args.companion_focus_probability,
            subject_support_probability=args.subject_support_probability,
            perspective_probability=args.perspective_probability,
        )
        squared_error, pixels = 0.0, 0.0
        truth_error, truth_pixels = 0.0, 0
        for scene in scenes:
            blur_scale = float(scene["defocus"].max()) if args.scene_blur_scale else None
            image = scene["image"].unsqueeze(0)
            in_focus = scene["focus_mask"][0].numpy() > 0.5
            options = {"focus": deepest_point(in_focus)} if args.focus_hint and in_focus.any() else {}
            if args.focus_range is not None:
                options["focus_range"] = args.focus_range
            output = predict(
                model, image, device="cpu", blur_scale=blur_scale, strength=args.strength, **options
            ).bokeh[0]
            mask = scene["focus_mask"]
            error = ((output - scene["image"]) ** 2 * mask).sum().item()
            count = mask.sum().item() * 3
            squared_error, pixels = squared_error + error, pixels + count
            truth_error += ((output - scene["bokeh"]) ** 2).sum().item()
            truth_pixels += output.numel()
            print(f"{scene['name']}: {_psnr(error, count):.2f} dB ({mask.mean().item():.0%} in focus)")
    except D2FError as error:
        print(f"focus_psnr.py: error: {error}", file=sys.stderr)
        return error.exit_code
    print(f"output vs true bokeh, PSNR over {args.count} scenes: {_psnr(truth_error, truth_pixels):.2f} dB")
    print(f"in-focus PSNR over {args.count} scenes: {_psnr(squared_error, pixels):.2f} dB")
    return 0


def _psnr(squared_error: float, count: float) -> float:
    if count == 0:
        return math.nan
    mean = squared_error / count
    return math.inf if mean == 0 else -10 * math.log10(mean)


if __name__ == "__main__":
    with torch.inference_mode():
        sys.exit(main())
