"""``d2f app``: a local web app to click where the focus goes and drag the render options (docs/app.md)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

DESCRIPTION = (
    "Start a web app on this machine (127.0.0.1 only) to render bokeh interactively: load a photo, click "
    "to set the focus, drag the sliders, compare before and after, download the full-resolution result "
    "with the photo's metadata. Open the printed address in a browser; Ctrl+C stops it. Nothing is "
    "written to disk but what you download. Without a weights option it uses the bundled d2f-lite-2, "
    "the model that predicts depth and so focuses where you click (d2f-lite where d2f-lite-2 is not "
    "installed; --model d2f-lite for the default model of d2f render, which keeps its own focus)."
)

#: The app's model when no weights option is given: the one that takes a focus point, if it is installed.
APP_MODEL = "d2f-lite-2"


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    from d2f.cli.render import add_weights_arguments

    parser = subparsers.add_parser(
        "app",
        parents=[common],
        help="local web app: click to focus, drag the options",
        description=DESCRIPTION,
    )
    parser.add_argument(
        "--port", type=int, default=8765, metavar="N", help="port on 127.0.0.1 (default 8765; 0: a free one)"
    )
    add_weights_arguments(parser, default=f"the bundled {APP_MODEL} when installed, else d2f-lite")
    parser.add_argument(
        "--device",
        default="auto",
        metavar="{auto,cpu,cuda}",
        help="where to run (default: auto, CUDA when available)",
    )
    parser.add_argument(
        "--precision", choices=("fp32", "bf16"), default="fp32", help="as for d2f render (default fp32)"
    )
    parser.add_argument(
        "--max-megapixels", type=float, default=50.0, metavar="MP", help="refuse larger photos (default 50)"
    )
    parser.add_argument(
        "--preview-side",
        type=int,
        default=768,
        metavar="PX",
        help="long side of the previews shown while dragging (default 768)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from d2f.app import AppServer, Studio
    from d2f.errors import InputError
    from d2f.pipeline import resolve_device

    if not 0 <= args.port <= 65535:
        raise InputError(f"--port: expected 0 to 65535, got {args.port}")
    if not args.max_megapixels > 0:
        raise InputError(f"--max-megapixels: expected a positive number, got {args.max_megapixels:g}")
    if args.preview_side < 64:
        raise InputError(f"--preview-side: expected at least 64 pixels, got {args.preview_side}")
    device = resolve_device(args.device)
    studio = Studio(
        app_model(args),
        device=device,
        precision=args.precision,
        max_megapixels=args.max_megapixels,
        preview_side=args.preview_side,
    )
    try:
        server = AppServer(studio, args.port)
    except OSError as error:
        reason = error.strerror or error
        raise InputError(f"--port: cannot listen on 127.0.0.1:{args.port} ({reason})") from None
    print(f"d2f app: open {server.url} in a browser (Ctrl+C stops it)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("d2f app: stopped", file=sys.stderr)
    finally:
        server.server_close()
    return 0


def app_model(args: argparse.Namespace) -> torch.nn.Module:
    """The model the weights flags ask for; without any, the bundled :data:`APP_MODEL` (clicks set its
    focus), else what ``d2f render`` would use (:func:`d2f.cli.render.load_weights`)."""
    from d2f.cli.render import load_weights
    from d2f.models.presets import is_bundled, load_bundled

    no_weights_flag = all(getattr(args, name) is None for name in ("model", "weights", "stage1", "stage2"))
    if no_weights_flag and is_bundled(APP_MODEL):
        return load_bundled(APP_MODEL)
    return load_weights(args)
