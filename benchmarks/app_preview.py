"""Latency of ``d2f app``'s previews for a 12-megapixel photo, with the bundled model.

    python benchmarks/app_preview.py [--runs 5] [--threads N] [--side 768] [--full]

Loads a 4000x3000 JPEG (the bundled sample photo enlarged) into a :class:`d2f.app.Studio` as an upload
would, then prints: the decoding time, the first preview (which runs the networks on the preview-size
copy), and the median of ``--runs`` later previews as a slider moves (each with a new strength, so
nothing but the network outputs is reused), alone and with the JPEG encoding the page receives.
``--full`` adds one full-resolution render (networks, blur, fusion and JPEG encoding with metadata).
Target (issue 23): a preview after the first pass in at most 0.5 s on the 2-core CPU.
"""

from __future__ import annotations

import argparse
import io
import json
import time

import torch
from PIL import Image

from d2f.app import Studio
from d2f.cli.demo import SAMPLE_PHOTO
from d2f.io import encode_image
from d2f.pipeline import default_model
from timing import median_seconds

SIZE = (4000, 3000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--side", type=int, default=768, help="preview long side (the app's default)")
    parser.add_argument("--full", action="store_true", help="also time one full-resolution render")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    buffer = io.BytesIO()
    Image.open(SAMPLE_PHOTO).resize(SIZE, Image.BICUBIC).save(buffer, format="JPEG", quality=92)
    studio = Studio(default_model(), preview_side=args.side)

    start = time.perf_counter()
    photo = studio.load(buffer.getvalue(), "large.jpg")
    load_seconds = time.perf_counter() - start

    start = time.perf_counter()
    studio.preview(photo.id, studio.options({}))
    first_seconds = time.perf_counter() - start

    strengths = iter([0.5 + 0.05 * step for step in range(4 * args.runs + 4)])

    def preview() -> object:
        return studio.preview(photo.id, studio.options({"strength": next(strengths), "aperture_blades": 6}))

    def preview_as_jpeg() -> bytes:
        return encode_image(preview().bokeh, "JPEG", quality=92)

    preview_seconds = median_seconds(preview, args.runs, "cpu")
    answer_seconds = median_seconds(preview_as_jpeg, args.runs, "cpu")
    figures = {
        "photo": f"{SIZE[0]}x{SIZE[1]}",
        "preview": "x".join(str(side) for side in reversed(photo.preview.shape[-2:])),
        "threads": torch.get_num_threads(),
        "decode_s": round(load_seconds, 3),
        "first_preview_s": round(first_seconds, 3),
        "preview_median_s": round(preview_seconds, 3),
        "preview_with_jpeg_median_s": round(answer_seconds, 3),
        "target_s": 0.5,
    }
    if args.full:
        start = time.perf_counter()
        download = studio.render_full(photo.id, studio.options({"strength": 1.5}))
        figures["full_render_s"] = round(time.perf_counter() - start, 2)
        figures["full_render_mb"] = round(len(download.data) / 2**20, 1)
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
