"""Quality on real lenses: the bundled model and both baselines on the shared real-lens pairs.

Runs ``d2f eval --pairs ../shared/real_lens/pairs.csv --model d2f-lite --baseline identity --baseline
gaussian`` (see docs/evaluation.md) and prints its tables; where the shared pairs are absent it says so
and exits 0. Further arguments go to ``d2f eval`` (another model, ``--out``, ``--sheet``, ...):

    python benchmarks/real_lens.py
    python benchmarks/real_lens.py --out runs/real_lens/report.csv --sheet runs/real_lens/sheets
    python benchmarks/real_lens.py --weights runs/my_model/model
"""

from __future__ import annotations

import sys
from pathlib import Path

from d2f.cli import main

PAIRS = Path(__file__).resolve().parents[1] / ".." / "shared" / "real_lens" / "pairs.csv"


def run(arguments: list[str]) -> int:
    if not PAIRS.is_file():
        print(f"real-lens evaluation skipped: {PAIRS.resolve()} is absent (the shared development set)")
        return 0
    weights_given = any(flag in arguments for flag in ("--model", "--weights", "--stage1"))
    model = [] if weights_given else ["--model", "d2f-lite"]
    baselines = ["--baseline", "identity", "--baseline", "gaussian"]
    return main(["eval", "--pairs", str(PAIRS), *model, *baselines, *arguments])


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
