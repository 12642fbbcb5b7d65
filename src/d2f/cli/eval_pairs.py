"""``d2f eval --pairs CSV``: real-lens pairs, a model and baselines side by side (see
:mod:`d2f.real_lens` and docs/evaluation.md)."""

from __future__ import annotations

import argparse
import math
import sys
import time
from typing import TYPE_CHECKING

from d2f.errors import InputError

if TYPE_CHECKING:
    import torch

    from d2f.real_lens.report import SummaryRow
    from d2f.real_lens.sweeps import Sweep


def run_pairs(args: argparse.Namespace, device: torch.device) -> int:
    from tqdm import tqdm

    from d2f.cli import report_written
    from d2f.cli.eval import baselines, evaluates_model, model_renderer
    from d2f.real_lens.pairs import read_pairs_csv
    from d2f.real_lens.report import ALL, summarize, summary_path, write_pair_report, write_summary
    from d2f.real_lens.scoring import ScoredPair, baseline_renderer, score_pairs
    from d2f.real_lens.sheet import ContactSheets, sheet_path
    from d2f.real_lens.sweeps import aperture_sweeps

    pairs, errors = read_pairs_csv(args.pairs)
    if args.limit is not None:
        last_row = sorted([*(pair.row for pair in pairs), *(error.row for error in errors)])[: args.limit][-1]
        pairs = [pair for pair in pairs if pair.row <= last_row]
        errors = [error for error in errors if error.row <= last_row]
    outputs = []
    if args.out is not None:
        outputs += [args.out, summary_path(args.out)]
    if args.sheet is not None:
        outputs += [sheet_path(args.sheet, name) for name in dict.fromkeys(pair.set for pair in pairs)]
    for path in outputs:
        if path.exists() and not args.overwrite:
            raise InputError(f"{path}: already exists (pass --overwrite to replace it)")

    renderers = [baseline_renderer(name) for name in baselines(args)]
    hints = args.focus_hint or args.aperture
    if evaluates_model(args):
        renderers.append(model_renderer(args, device, hints=hints))
    methods = [renderer.name for renderer in renderers]
    sheets = visit = None
    if args.sheet is not None:
        model = renderers[-1].name if evaluates_model(args) else None
        shown = [method for method in methods if method != "identity"]  # the input itself
        sheets = ContactSheets(["input", *shown, "target", *(["defocus map"] if model else [])])

        def visit(scored, loaded, renderings):
            images = [loaded.image, *(renderings[method].image for method in shown), loaded.target]
            if model is not None:
                images.append(renderings[model].defocus)
            sheets.add(scored.pair.set, scored.pair.name, images)

    for error in errors:
        print(f"d2f eval: error: {error.message}", file=sys.stderr)
    start = time.perf_counter()
    scored: list[ScoredPair] = []
    quiet = len(pairs) <= 1 or getattr(args, "quiet", False)
    progress = tqdm(pairs, desc="d2f eval", unit="pair", file=sys.stderr, disable=quiet)
    for outcome in score_pairs(
        progress, renderers, focus_hint=args.focus_hint, aperture_hint=args.aperture, visit=visit
    ):
        if isinstance(outcome, ScoredPair):
            scored.append(outcome)
        else:
            errors.append(outcome)
            tqdm.write(f"d2f eval: error: {outcome.message}", file=sys.stderr)
    progress.close()
    seconds = time.perf_counter() - start

    sweeps = aperture_sweeps(scored)
    summary = summarize(scored, sweeps, methods)
    print(f"{len(scored)} of {len(scored) + len(errors)} pairs scored ({args.pairs}) in {seconds:.0f} s")
    if scored:
        print(format_summary(summary, methods))
        if sweeps:
            print()
            print(format_sweeps(sweeps, methods))
        if hints:
            print()
            given = next(row.hints for row in summary if row.group == ALL and row.method == methods[-1])
            print(f"hints given to {methods[-1]}: {given}")
    if args.out is not None:
        write_pair_report(args.out, scored, errors, sweeps, overwrite=args.overwrite)
        write_summary(summary_path(args.out), summary, overwrite=args.overwrite)
        report_written(args, args.out)
        report_written(args, summary_path(args.out))
    if sheets is not None and sheets.rows:
        for path in sheets.write(args.sheet, overwrite=args.overwrite):
            report_written(args, path)
    if errors:
        print(f"d2f eval: {len(errors)} of {len(scored) + len(errors)} pairs failed", file=sys.stderr)
    return max((error.exit_code for error in errors), default=0)


def format_summary(rows: list[SummaryRow], methods: list[str]) -> str:
    """Mean PSNR / SSIM / blur-map agreement per group (sets, then all), one column block per method."""
    groups = [row for row in rows if not row.group.startswith("scene ")]
    labels = list(dict.fromkeys(f"{row.group} ({row.pairs})" for row in groups))
    width = max(14, *(len(label) for label in labels))
    block = 22
    lines = [
        " " * width + "".join(f"{method[: block - 2]:>{block}}" for method in methods),
        f"{'set (pairs)':<{width}}" + f"{'PSNR   SSIM  agree':>{block}}" * len(methods),
    ]
    by_key = {(row.group, row.method): row for row in groups}
    for label in labels:
        group = label.rsplit(" (", 1)[0]
        cells = []
        for method in methods:
            values = by_key[group, method].values
            cells.append(
                f"{_number(values['psnr'], 2, 6)} {_number(values['ssim'], 3, 6)} "
                f"{_number(values['blur_agreement'], 3, 6)}"
            )
        lines.append(f"{label:<{width}}" + "".join(f"{cell:>{block}}" for cell in cells))
    return "\n".join(lines)


def format_sweeps(sweeps: list[Sweep], methods: list[str]) -> str:
    """Per scene at several apertures: the lens's and each method's aperture order, and the blur error."""
    labels = [
        f"{sweep.scene} (f/{', f/'.join(f'{number:g}' for number in sweep.f_numbers)})" for sweep in sweeps
    ]
    width = max(14, *(len(label) for label in labels))
    block = 16
    lines = [
        "aperture sweeps: does the background blur grow as the aperture opens (order, 1 = as the lens), "
        "and by how much does it miss the lens's (error, stops)?",
        " " * width + f"{'lens':>8}" + "".join(f"{method[: block - 2]:>{block}}" for method in methods),
        f"{'scene':<{width}}" + f"{'order':>8}" + f"{'order  error':>{block}}" * len(methods),
    ]
    for label, sweep in zip(labels, sweeps, strict=True):
        cells = [
            f"{_number(sweep.order[method], 2, 5)} {_number(sweep.blur_error[method], 2, 6)}"
            for method in methods
        ]
        lines.append(
            f"{label:<{width}}{_number(sweep.lens_order, 2, 8)}"
            + "".join(f"{cell:>{block}}" for cell in cells)
        )
    return "\n".join(lines)


def _number(value: float, digits: int, width: int) -> str:
    text = "-" if math.isnan(value) else f"{value:.{digits}f}"
    return f"{text:>{width}}"


__all__ = ["format_summary", "format_sweeps", "run_pairs"]
