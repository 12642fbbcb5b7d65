"""``d2f demo``: render the sample photo that ships with d2f, with the bundled model.

Needs nothing but an installed d2f: the photo (``d2f/samples/coffee.jpg``, a 600x400 JPEG of
scikit-image's ``coffee`` picture, CC0 by Rachel Michetti) and the default model are inside the package.
The model options are those of ``d2f render``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from d2f.errors import D2FError, InputError

#: The sample photo inside the package.
SAMPLE_PHOTO = Path(__file__).resolve().parents[1] / "samples" / "coffee.jpg"
#: Where ``d2f demo`` writes without ``-o``: in the current folder, never inside the installed package.
DEFAULT_OUTPUT = Path("coffee_bokeh.jpg")


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    from d2f.cli.render import add_options

    parser = subparsers.add_parser(
        "demo",
        parents=[common],
        help="render the bundled sample photo",
        description=(
            "Render the sample photo that ships with d2f (scikit-image's coffee cup, CC0) into OUTPUT "
            f"(default: {DEFAULT_OUTPUT} in the current folder), with the bundled d2f-lite model unless "
            "another is given."
        ),
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        metavar="OUTPUT",
        help=f"output image file or folder (default: {DEFAULT_OUTPUT})",
    )
    add_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from d2f.cli.render import check_options, load_model, output_settings, plan_jobs, render_job
    from d2f.pipeline import resolve_device

    check_options(args)
    device = resolve_device(args.device)
    if not SAMPLE_PHOTO.is_file():
        raise D2FError(f"{SAMPLE_PHOTO}: the sample photo is missing from this installation of d2f")
    jobs, failures, _ = plan_jobs([SAMPLE_PHOTO], args.output, **output_settings(args))
    if failures:  # the one input is fine, so the problem is OUTPUT (exists, wrong kind, ...)
        raise InputError(failures[0].message)
    if not jobs:  # --skip-existing, and every output exists
        return 0
    model = load_model(args)
    job = jobs[0]
    try:
        render_job(model, job, args, device)
    except (RuntimeError, OSError, MemoryError) as error:
        if args.debug:
            raise
        raise D2FError(f"{job.source}: rendering failed: {error}") from None
    return 0
