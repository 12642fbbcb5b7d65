"""Draw d2f-lite-2's known failure on synthetic scenes: a subject told to be in focus comes out soft.

    python scripts/failure_sheet.py                    # -> docs/lite2_failures.jpg

Synthetic validation scenes (``SyntheticBokehDataset(16, (512, 768), seed=1, kernel_scale=0.6)``, as
scripts/focus_psnr.py; procedural and scikit-image textures, ours to show) where the subject is flat:
the photo, d2f-lite-2 told to focus on the subject (its deepest mask point), the same told the scene's
true disparity, the predicted and the true disparity (near = bright). The predicted depth varies inside
the subject and blurs across its outline, so the lens blurs parts of it; given the true depth the
same pipeline keeps it sharp.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from contact_sheet import REPO, grey, layout
from d2f.data.synthetic import SyntheticBokehDataset
from d2f.models import load
from d2f.pipeline import predict
from d2f.real_lens.hints import deepest_point

COLUMNS = ("input", "d2f-lite-2, focus on the subject", "the same, given the true depth",
           "predicted depth", "true depth")
SCENES = (1, 2, 5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "lite2_failures.jpg")
    parser.add_argument("--row-height", type=int, default=200, help="height of each row in pixels")
    args = parser.parse_args(argv)
    model = load("d2f-lite-2")
    scenes = SyntheticBokehDataset(max(SCENES) + 1, (512, 768), seed=1, kernel_scale=0.6)
    rows = []
    with torch.inference_mode():
        for index in SCENES:
            scene = scenes[index]
            image, truth = scene["image"][None], scene["disparity"][None]
            focus = deepest_point(scene["focus_mask"][0].numpy() > 0.5)
            output = predict(model, image, focus=focus)
            given = predict(model, image, focus=focus, disparity=truth)
            truth = (truth - truth.min()) / (truth.max() - truth.min())
            size = image.shape[-2:]
            rows.append([image[0], output.bokeh[0], given.bokeh[0], grey(output.disparity[0], size),
                         grey(truth[0], size)])
    sheet = layout(rows, COLUMNS, args.row_height)
    sheet.save(args.output, quality=88)
    print(f"wrote {args.output} ({sheet.width}x{sheet.height})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
