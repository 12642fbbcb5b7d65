"""The reports of a real-lens evaluation: one row per pair and method, and the summary.

The summary has one row per method and group: each ``set`` of the CSV, ``all`` pairs, and each aperture
sweep (``scene <name>``, see :mod:`d2f.real_lens.sweeps`). Means skip undefined (NaN) values; a set's
sweep columns are the means over its scenes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from d2f.evaluation import format_value, write_csv
from d2f.real_lens.hints import FROM_MASK, FROM_TILES
from d2f.real_lens.pairs import RowError
from d2f.real_lens.scoring import ScoredPair
from d2f.real_lens.sweeps import Sweep

#: The measures of each pair and method, in the order of the reports.
PAIR_MEASURES = ("psnr", "ssim", "blur_agreement", "subject_sharpness", "background_blur_match")
PAIR_COLUMNS = (
    "name",
    "set",
    "method",
    *PAIR_MEASURES,
    "background_blur",
    "lens_background_blur",
    "focus_x",
    "focus_y",
    "f_number",
    "input_f_number",
    "note",
    "error",
)
SWEEP_MEASURES = ("aperture_order", "lens_aperture_order", "blur_error_stops")
SUMMARY_COLUMNS = ("method", "group", "pairs", *PAIR_MEASURES, *SWEEP_MEASURES, "hints")
#: The group of every pair in the summary.
ALL = "all"


@dataclass
class SummaryRow:
    """One method's means over one group of pairs (NaN where nothing defined was measured)."""

    method: str
    group: str
    pairs: int
    values: dict[str, float]
    hints: str


def summarize(scored: list[ScoredPair], sweeps: list[Sweep], methods: list[str]) -> list[SummaryRow]:
    """Rows by group (sets in the CSV's order, then ``all``, then each sweep), each with every method."""
    sets = list(dict.fromkeys(item.pair.set for item in scored))
    rows = []
    for group in [*sets, ALL]:
        members = [item for item in scored if group in (ALL, item.pair.set)]
        group_sweeps = [sweep for sweep in sweeps if group in (ALL, sweep.set)]
        for method in methods:
            values = {
                measure: _mean(getattr(item.scores[method], measure) for item in members)
                for measure in PAIR_MEASURES
            }
            values.update(_sweep_means(group_sweeps, method))
            rows.append(SummaryRow(method, group, len(members), values, describe_hints(members, method)))
    for sweep in sweeps:
        for method in methods:
            values = dict.fromkeys(PAIR_MEASURES, math.nan)
            values.update(_sweep_means([sweep], method))
            members = [item for item in scored if item.pair.name in sweep.pairs]
            hints = describe_hints(members, method)
            rows.append(SummaryRow(method, f"scene {sweep.scene}", len(sweep.pairs), values, hints))
    return rows


def _sweep_means(sweeps: list[Sweep], method: str) -> dict[str, float]:
    return {
        "aperture_order": _mean(sweep.order[method] for sweep in sweeps),
        "lens_aperture_order": _mean(sweep.lens_order for sweep in sweeps),
        "blur_error_stops": _mean(sweep.blur_error[method] for sweep in sweeps),
    }


def _mean(values: Iterable[float | None]) -> float:
    defined = [value for value in values if value is not None and not math.isnan(value)]
    return float(np.mean(defined)) if defined else math.nan


def describe_hints(scored: list[ScoredPair], method: str) -> str:
    """Which hints ``method`` was given on these pairs, in words ("none" for none)."""
    given = [item for item in scored if item.scores[method].hints]
    if not given:
        return "none"
    parts = []
    focused = [item for item in given if "focus" in item.scores[method].hints]
    if focused:
        sources = [item.focus_source for item in focused]
        counts = [f"{sources.count(source)} from the {source}" for source in (FROM_MASK, FROM_TILES)]
        parts.append(f"focus on {len(focused)} pairs ({', '.join(counts)})")
    with_aperture = [item for item in given if "f_number" in item.scores[method].hints]
    if with_aperture:
        parts.append(f"f-numbers on {len(with_aperture)} pairs")
    return "; ".join(parts)


def write_pair_report(
    path: str | Path,
    scored: list[ScoredPair],
    errors: list[RowError],
    sweeps: list[Sweep],
    *,
    overwrite: bool = False,
) -> Path:
    """One row per pair and method (a failed pair: one row with its ``error``), in the CSV's order."""
    blur = {}
    for sweep in sweeps:
        for index, name in enumerate(sweep.pairs):
            for method, values in sweep.blur.items():
                blur[name, method] = (values[index], sweep.lens_blur[index])
    rows: list[tuple[int, dict[str, object]]] = []
    for item in scored:
        for method, score in item.scores.items():
            focus = score.hints.get("focus")
            background, lens_background = blur.get((item.pair.name, method), (None, None))
            row = {
                "name": item.pair.name,
                "set": item.pair.set,
                "method": method,
                **{measure: getattr(score, measure) for measure in PAIR_MEASURES},
                "background_blur": background,
                "lens_background_blur": lens_background,
                "focus_x": None if focus is None else focus[0],
                "focus_y": None if focus is None else focus[1],
                "f_number": score.hints.get("f_number"),
                "input_f_number": score.hints.get("input_f_number"),
                "note": "; ".join(item.notes),
            }
            rows.append((item.pair.row, row))
    rows += [(error.row, {"name": error.name, "set": error.set, "error": error.message}) for error in errors]
    rows.sort(key=lambda entry: entry[0])  # stable: methods keep their order within a pair
    return write_csv(path, PAIR_COLUMNS, [row for _, row in rows], overwrite=overwrite)


def write_summary(path: str | Path, rows: list[SummaryRow], *, overwrite: bool = False) -> Path:
    """The summary rows (see :func:`summarize`) as CSV."""
    records = [
        {"method": row.method, "group": row.group, "pairs": row.pairs, **row.values, "hints": row.hints}
        for row in rows
    ]
    return write_csv(path, SUMMARY_COLUMNS, records, overwrite=overwrite)


def summary_path(report: str | Path) -> Path:
    """``report_summary.csv`` beside ``report.csv``."""
    report = Path(report)
    return report.with_name(f"{report.stem}_summary{report.suffix or '.csv'}")


__all__ = [
    "ALL",
    "PAIR_COLUMNS",
    "PAIR_MEASURES",
    "SUMMARY_COLUMNS",
    "SWEEP_MEASURES",
    "SummaryRow",
    "describe_hints",
    "format_value",
    "summarize",
    "summary_path",
    "write_csv",
    "write_pair_report",
    "write_summary",
]
