"""The start shared by the scripts that run a model over the real-lens development pairs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from d2f.errors import D2FError, DataError
from d2f.models import D2F, load
from d2f.real_lens.pairs import LensPair, read_pairs_csv


def model_and_pairs(
    name: str, description: str, argv: list[str] | None = None
) -> tuple[D2F, list[LensPair]] | int:
    """Parse ``--pairs`` and ``--model`` from ``argv`` (the command line by default); the model and
    the pairs, or an exit status.

    Without the pairs file (the set lives in ../shared) it says so and returns 0; a pairs file that
    cannot be read, has a bad row, or a model that cannot be loaded: one line and the error's status.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--pairs", type=Path, default=Path("../shared/real_lens/pairs.csv"))
    parser.add_argument("--model", default="d2f-lite-2", help="a bundled name or a save_pretrained folder")
    args = parser.parse_args(argv)
    if not args.pairs.is_file():
        print(f"{name}: {args.pairs}: no such file (the real-lens set lives in ../shared)")
        return 0
    try:
        pairs, errors = read_pairs_csv(args.pairs)
        if errors:
            raise DataError(f"{args.pairs}: {errors[0].message}")
        return load(args.model), pairs
    except D2FError as error:
        print(f"{name}: error: {error}", file=sys.stderr)
        return error.exit_code
