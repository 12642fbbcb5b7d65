"""``d2f eval``: measure a model or a baseline on a folder of image pairs (see :mod:`d2f.evaluation`)."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from d2f.cli import report_written
from d2f.errors import InputError

DESCRIPTION = """\
Render each photo of a data folder and compare it with its ground-truth bokeh: PSNR and SSIM (8-bit RGB,
full image, scikit-image's SSIM with a 7x7 window), the runtime per image, LPIPS (AlexNet, v0.1) when its
weights are on this machine, and, where subject_mask/<name>.png exists, subject sharpness and background
blur match. DIR holds original/ and bokeh/ (or is an EBB! root with Training/). Prints a per-image table
and the means; --out also writes them as CSV.
"""


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "eval", parents=[common], help="measure a model or a baseline on image pairs", description=DESCRIPTION
    )
    parser.add_argument("--data", required=True, type=Path, metavar="DIR", help="folder of image pairs")
    parser.add_argument("--split", choices=("train", "val294"), help="EBB! split (val294: pairs 4400-4693)")
    method = parser.add_argument_group("what to evaluate (one of)")
    method.add_argument("--weights", type=Path, metavar="PATH", help="d2f's own format (save_pretrained)")
    method.add_argument("--stage1", type=Path, metavar="PATH", help="the paper's stage-1 checkpoint")
    method.add_argument("--stage2", type=Path, metavar="PATH", help="the paper's stage-2 checkpoint")
    method.add_argument(
        "--baseline",
        choices=("identity", "gaussian"),
        help="identity: the input itself; gaussian: a sigma-6 px Gaussian blur",
    )
    parser.add_argument("--out", type=Path, metavar="CSV", help="write the per-image report here")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    parser.add_argument("--limit", type=int, metavar="N", help="evaluate only the first N pairs")
    parser.add_argument("--device", default="auto", metavar="{auto,cpu,cuda}", help="where models run")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32", help="model precision")
    parser.add_argument(
        "--lpips",
        type=Path,
        metavar="DIR",
        help="folder with alexnet-owt-7be5be79.pth and alex.pth (default: torch hub cache)",
    )
    parser.add_argument("--no-lpips", action="store_true", help="skip LPIPS")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from d2f.evaluation import BASELINES, evaluate, find_pairs, write_report
    from d2f.lpips import load_lpips
    from d2f.pipeline import resolve_device

    _check_options(args)
    device = resolve_device(args.device)
    pairs = find_pairs(args.data, args.split)
    if args.limit is not None:
        pairs = pairs[: args.limit]
    if args.out is not None and args.out.exists() and not args.overwrite:
        raise InputError(f"{args.out}: already exists (pass --overwrite to replace it)")
    if args.baseline is not None:
        method, label = BASELINES[args.baseline], f"baseline {args.baseline}"
    else:
        method, label = _model_method(args, device)
    lpips = None
    if not args.no_lpips:
        lpips, notice = load_lpips(args.lpips)
        if lpips is None and args.lpips is not None:
            raise InputError(f"--lpips: {notice}")
        if lpips is None:
            print(f"d2f eval: LPIPS skipped: {notice}", file=sys.stderr)
        else:
            lpips.to(device)
    results = []
    progress = tqdm(pairs, desc="d2f eval", unit="image", file=sys.stderr, disable=len(pairs) <= 1)
    for result in evaluate(progress, method, lpips=lpips):
        results.append(result)
        progress.set_postfix(psnr=f"{result.psnr:.2f}")
    print(format_table(results, label))
    if args.out is not None:
        write_report(results, args.out, overwrite=args.overwrite)
        report_written(args, args.out)
    return 0


def format_table(results: list, label: str) -> str:
    """Per-image rows and a final ``mean`` row, as aligned text."""
    from d2f.evaluation import measured_columns, summarize

    columns = measured_columns(results)
    headers = {
        "psnr": "PSNR dB",
        "ssim": "SSIM",
        "seconds": "s/image",
        "lpips": "LPIPS",
        "subject_sharpness": "subj.sharp",
        "background_blur_match": "bg.blur.match",
    }
    width = max(8, *(len(result.name) for result in results))
    lines = [
        f"{label}: {len(results)} images",
        f"{'name':<{width}}  " + "  ".join(f"{headers[column]:>13}" for column in columns),
    ]
    rows = [(result.name, {column: getattr(result, column) for column in columns}) for result in results]
    rows.append(("mean", summarize(results)))
    for name, values in rows:
        lines.append(f"{name:<{width}}  " + "  ".join(f"{_format(values[column]):>13}" for column in columns))
    return "\n".join(lines)


def _format(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:.4f}"


def _check_options(args: argparse.Namespace) -> None:
    kinds = [
        args.weights is not None,
        args.stage1 is not None or args.stage2 is not None,
        args.baseline is not None,
    ]
    if sum(kinds) != 1:
        raise InputError("pass exactly one of --weights PATH, --stage1 PATH --stage2 PATH, --baseline NAME")
    if (args.stage1 is None) != (args.stage2 is None):
        raise InputError("--stage1 and --stage2 go together: pass both official checkpoint files")
    if args.limit is not None and args.limit < 1:
        raise InputError(f"--limit: expected a positive integer, got {args.limit}")
    if args.lpips is not None and args.no_lpips:
        raise InputError("--lpips and --no-lpips contradict each other")


def _model_method(args: argparse.Namespace, device):
    from d2f.cli.render import load_model
    from d2f.pipeline import render_image

    model = load_model(args).to(device).eval()
    label = f"model {args.weights}" if args.weights is not None else f"model {args.stage1} + {args.stage2}"

    def method(image):
        return render_image(image, model, device, precision=args.precision)

    return method, label
