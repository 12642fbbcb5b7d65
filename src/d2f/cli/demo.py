"""``d2f demo``: render the sample photo that ships with d2f, with the bundled model.

Needs nothing but an installed d2f: the photo (``d2f/samples/coffee.jpg``, a 600x400 JPEG of
scikit-image's ``coffee`` picture, CC0 by Rachel Michetti) and the default model are inside the package.
The model options are those of ``d2f render``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from d2f.errors import D2FError, InputError

#: The sample photo inside the package.
SAMPLE_PHOTO = Path(__file__).resolve().parents[1] / "samples" / "coffee.jpg"


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    from d2f.cli.render import add_options

    parser = subparsers.add_parser(
        "demo",
        parents=[common],
        help="render the bundled sample photo",
        description=(
            "Render the sample photo that ships with d2f (scikit-image's coffee cup, CC0) into OUTPUT, "
            "with the bundled d2f-lite model unless another is given."
        ),
    )
    parser.add_argument(
        "-o", "--output", required=True, type=Path, metavar="OUTPUT", help="output image file (or folder)"
    )
    add_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from d2f.cli.render import check_options, load_model, plan_jobs, render_job
    from d2f.pipeline import resolve_device

    check_options(args)
    device = resolve_device(args.device)
    if not SAMPLE_PHOTO.is_file():
        raise D2FError(f"{SAMPLE_PHOTO}: the sample photo is missing from this installation of d2f")
    jobs, failures = plan_jobs(
        [SAMPLE_PHOTO], args.output, save_defocus=args.save_defocus, overwrite=args.overwrite
    )
    if failures:  # the one input is fine, so the problem is OUTPUT (exists, wrong kind, ...)
        raise InputError(failures[0].message)
    model = load_model(args)
    job = jobs[0]
    try:
        render_job(model, job, args, device)
    except (RuntimeError, OSError, MemoryError) as error:
        if args.debug:
            raise
        raise D2FError(f"{job.source}: rendering failed: {error}") from None
    print(f"wrote {job.output}", file=sys.stderr)
    return 0
