"""The ``d2f`` command-line tool.

Each sub-command lives in its own module ``d2f.cli.<name>`` with a ``register(subparsers, common)``
function that adds its parser (with ``parents=[common]``, which brings ``--debug``) and sets
``handler`` (a function of the parsed arguments returning an exit code).
Heavy imports (torch, models) stay inside the handlers so that ``d2f --help`` is instant.

Every sub-command reports each file it writes once, on stderr, as ``wrote PATH`` (:func:`report_written`);
``--quiet`` silences these lines and progress bars, never errors.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from collections.abc import Sequence

from d2f._version import __version__
from d2f.errors import D2FError

#: Sub-command modules, in the order ``d2f --help`` lists them.
SUBCOMMANDS: tuple[str, ...] = ("render", "demo", "app", "train", "eval", "synth")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="d2f",
        description="Photo-realistic bokeh from a single all-in-focus photo (Defocus to Focus).",
    )
    parser.add_argument("--version", action="version", version=f"d2f {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    parser.add_argument("-q", "--quiet", action="store_true", help="no 'wrote PATH' lines or progress bars")
    # --debug and --quiet also after the sub-command; SUPPRESS keeps top-level ones from being reset.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    common.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=argparse.SUPPRESS,
        help="no 'wrote PATH' lines or progress bars (errors are still shown)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"d2f.cli.{name}").register(subparsers, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the tool; returns the exit code (0 success, 1 runtime failure, 2 usage or input error)."""
    parser = build_parser()
    args = parser.parse_args(_attach_negative_values(sys.argv[1:] if argv is None else list(argv)))
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.handler(args))
    except D2FError as error:
        if args.debug:
            raise
        print(f"d2f {args.command}: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print(f"d2f {args.command}: interrupted", file=sys.stderr)
        return 130


def _attach_negative_values(argv: list[str]) -> list[str]:
    """``--focus -5,10`` as ``--focus=-5,10``: argparse takes a value that starts with a minus and is not
    a plain number for an option, and would answer with its usage; joined, the option's own check says
    what is wrong in one line."""
    joined: list[str] = []
    for token in argv:
        previous = joined[-1] if joined else ""
        takes_it = previous.startswith("--") and previous != "--" and "=" not in previous
        if takes_it and _NEGATIVE_VALUE.match(token):
            joined[-1] = f"{previous}={token}"
        else:
            joined.append(token)
    return joined


#: A value such as ``-5,10`` or ``-1e3``: a minus, then a digit or a point.
_NEGATIVE_VALUE = re.compile(r"^-[0-9.]")


def report_written(args: argparse.Namespace, path: object) -> None:
    """``wrote PATH`` on stderr (above any progress bar), unless ``--quiet``."""
    if getattr(args, "quiet", False):
        return
    from tqdm import tqdm

    tqdm.write(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
