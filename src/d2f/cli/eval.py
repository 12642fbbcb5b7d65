"""``d2f eval``: measure a model or baselines on image pairs: a folder (``--data``, see
:mod:`d2f.evaluation`) or real-lens pairs listed in a CSV (``--pairs``, see :mod:`d2f.real_lens` and
:mod:`d2f.cli.eval_pairs`).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from d2f.cli import report_written
from d2f.errors import InputError

if TYPE_CHECKING:
    import torch

    from d2f.real_lens.scoring import Renderer

DESCRIPTION = """\
Render each photo of a set of pairs and compare it with the ground-truth bokeh.

--data DIR: a folder with original/ and bokeh/ (or an EBB! root with Training/); one method. Prints a
per-image table and the means of PSNR and SSIM (8-bit RGB, full image, scikit-image's SSIM with a 7x7
window), the runtime per image, LPIPS (AlexNet, v0.1) when its weights are on this machine, and, where
subject_mask/<name>.png exists, subject sharpness and background blur match.

--pairs CSV: real-lens pairs (columns name, original, bokeh; optional set, f_original, f_bokeh,
focus_mask; paths relative to the CSV's folder); a model and any baselines side by side. Per pair
PSNR, SSIM, blur-map agreement (does the output blur where the lens did?) and, with a focus mask,
subject sharpness and background blur match; per set and overall their means; per scene shot at
several apertures, whether the blur follows the aperture. See docs/evaluation.md.

The model is the bundled d2f-lite unless weights are given; with --baseline alone only the baselines
are evaluated (add --model d2f-lite to evaluate it beside them).
"""

EPILOG = """\
exit status: 0 every pair scored; 2 bad usage, a bad CSV or a bad row (missing or unreadable file: the
other rows are still scored and reported); 1 rendering failed for some pair.
"""


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    from d2f.cli.render import add_model_options

    parser = subparsers.add_parser(
        "eval",
        parents=[common],
        help="measure a model or baselines on image pairs",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, metavar="DIR", help="folder of image pairs (EBB! layout)")
    source.add_argument("--pairs", type=Path, metavar="CSV", help="CSV of real-lens pairs")
    parser.add_argument("--split", choices=("train", "val294"), help="EBB! split (val294: pairs 4400-4693)")
    parser.add_argument(
        "--baseline",
        action="append",
        choices=("identity", "gaussian"),
        help="identity: the input itself; gaussian: a sigma-6 px Gaussian blur (repeat for both)",
    )
    add_model_options(parser)
    parser.add_argument(
        "--out",
        type=Path,
        metavar="CSV",
        help="write the per-image report here (with --pairs also <name>_summary.csv beside it)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing report files and sheets")
    parser.add_argument("--limit", type=int, metavar="N", help="evaluate only the first N pairs")
    hints = parser.add_argument_group("real-lens pairs only")
    hints.add_argument(
        "--focus-hint",
        action="store_true",
        help="tell the model where each photo is focused (inside focus_mask, else the tile the lens kept "
        "sharpest): the render option focus",
    )
    hints.add_argument(
        "--aperture",
        action="store_true",
        help="tell the model each pair's f_bokeh and f_original: the render options f_number and "
        "input_f_number",
    )
    hints.add_argument(
        "--sheet", type=Path, metavar="DIR", help="write a contact sheet per set here (DIR/<set>.jpg)"
    )
    lpips = parser.add_argument_group("--data only")
    lpips.add_argument(
        "--lpips",
        type=Path,
        metavar="DIR",
        help="folder with alexnet-owt-7be5be79.pth and alex.pth (default: torch hub cache)",
    )
    lpips.add_argument("--no-lpips", action="store_true", help="skip LPIPS")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from d2f.pipeline import resolve_device

    _check_options(args)
    device = resolve_device(args.device)
    if args.pairs is not None:
        from d2f.cli.eval_pairs import run_pairs

        return run_pairs(args, device)
    return _run_folder(args, device)


def baselines(args: argparse.Namespace) -> list[str]:
    """The baselines asked for, each once, in the order given."""
    return list(dict.fromkeys(args.baseline or []))


def evaluates_model(args: argparse.Namespace) -> bool:
    """A model is evaluated when weights are given or no baseline is (then the bundled model)."""
    return (
        any(getattr(args, flag) is not None for flag in ("model", "weights", "stage1")) or not args.baseline
    )


def _check_options(args: argparse.Namespace) -> None:
    from d2f.cli.render import check_model_options, options_from_args

    check_model_options(args)
    if args.limit is not None and args.limit < 1:
        raise InputError(f"--limit: expected a positive integer, got {args.limit}")
    if args.data is not None:
        used = [flag for flag in ("focus_hint", "aperture", "sheet") if getattr(args, flag)]
        if used:
            raise InputError(f"--{used[0].replace('_', '-')}: only with --pairs")
        if len(baselines(args)) + evaluates_model(args) != 1:
            raise InputError(
                "--data evaluates one method: pass one --baseline, or model weights (or neither: the "
                "bundled model), not both"
            )
    else:
        if args.split is not None:
            raise InputError("--split: only with --data (an EBB! folder)")
        if args.lpips is not None:
            raise InputError("--lpips: only with --data (real-lens pairs are not scored with LPIPS)")
    if args.lpips is not None and args.no_lpips:
        raise InputError("--lpips and --no-lpips contradict each other")
    if not evaluates_model(args):
        changed = list(options_from_args(args).changed())
        if args.background_blur is not None:
            changed.append("background_blur")
        hints = [flag for flag in ("focus_hint", "aperture") if getattr(args, flag)]
        for name in [*changed, *hints]:
            raise InputError(
                f"--{name.replace('_', '-')}: applies to a model, and only baselines are evaluated "
                "(add --model d2f-lite or other weights)"
            )


def model_renderer(args: argparse.Namespace, device: torch.device, *, hints: bool = False) -> Renderer:
    """The model the flags ask for, as a :class:`d2f.real_lens.scoring.Renderer` with the render flags.

    Raises InputError before anything is rendered when the model cannot take the render options or,
    with ``hints``, the hints that ``--focus-hint`` and ``--aperture`` would pass.
    """
    from d2f.cli.render import load_model, options_from_args
    from d2f.io import array_to_tensor, tensor_to_array
    from d2f.options import render_options
    from d2f.pipeline import background_blur_scale, predict
    from d2f.real_lens.scoring import Renderer, Rendering

    model = load_model(args).to(device).eval()
    options = options_from_args(args)
    if hints:
        _check_hints(model, options, args)

    def render(image, given):
        blur_scale = None
        if args.background_blur is not None:
            blur_scale = background_blur_scale(model, image.shape[:2], args.background_blur)
        output = predict(
            model,
            array_to_tensor(image).unsqueeze(0),
            render_options(options, **given),
            device=device,
            precision=args.precision,
            blur_scale=blur_scale,
        )
        bokeh = tensor_to_array(output.bokeh[0].float().cpu())
        return Rendering(bokeh, output.defocus[0, 0].float().cpu().numpy())

    return Renderer(model_name(args), render, takes_hints=hints)


def model_name(args: argparse.Namespace) -> str:
    """How the reports name the model: its bundled name, its weights' path, or ``official``."""
    from d2f.models.presets import DEFAULT_MODEL

    if args.stage1 is not None:
        return "official"
    if args.weights is not None:
        return str(args.weights)
    return args.model if args.model is not None else DEFAULT_MODEL


def _check_hints(model, options, args: argparse.Namespace) -> None:
    from d2f.options import render_options

    wanted = []
    if args.focus_hint:
        if options.focus is not None:
            raise InputError("--focus-hint and --focus contradict each other: pass one")
        wanted.append(("--focus-hint", {"focus": (0.0, 0.0)}))
    if args.aperture:
        if options.f_number is not None or options.input_f_number is not None:
            raise InputError("--aperture and --f-number/--input-f-number contradict each other: pass one")
        wanted.append(("--aperture", {"f_number": 2.0, "input_f_number": 16.0}))
    for flag, example in wanted:
        try:
            model.check_supported(render_options(options, **example))
        except InputError as error:
            problem = str(error).split(": ", 1)[-1]
            raise InputError(f"{flag}: {problem}") from None


def _run_folder(args: argparse.Namespace, device: torch.device) -> int:
    from tqdm import tqdm

    from d2f.evaluation import BASELINES, evaluate, find_pairs, write_report
    from d2f.lpips import load_lpips

    pairs = find_pairs(args.data, args.split)
    if args.limit is not None:
        pairs = pairs[: args.limit]
    if args.out is not None and args.out.exists() and not args.overwrite:
        raise InputError(f"{args.out}: already exists (pass --overwrite to replace it)")
    if args.baseline:
        method, label = BASELINES[args.baseline[0]], f"baseline {args.baseline[0]}"
    else:
        renderer = model_renderer(args, device)
        method, label = (lambda image: renderer.render(image, {}).image), f"model {renderer.name}"
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
    quiet = len(pairs) <= 1 or getattr(args, "quiet", False)
    progress = tqdm(pairs, desc="d2f eval", unit="image", file=sys.stderr, disable=quiet)
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
