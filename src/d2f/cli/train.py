"""``d2f train``: train stage 1 or stage 2 of D2F from a YAML config (see :mod:`d2f.train`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from d2f.cli import report_written
from d2f.errors import ConfigError, InputError

DESCRIPTION = """\
Train one stage of D2F as the config says, writing the run to DIR: config.yaml, metrics.csv, sample
sheets in samples/, checkpoints/last.pt and best.pt, and at the end the model in DIR/model (load it with
d2f render --weights DIR/model). Any config key can be overridden as key=value (e.g. run.steps=2000
optim.lr=3e-4 data.root=/data/ebb). --resume continues the run in DIR exactly where its last checkpoint
left it, with the config stored there. For several GPUs or nodes, launch the same command with torchrun:
torchrun --nproc_per_node=8 -m d2f train --config ... --out DIR
"""


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "train", parents=[common], help="train stage 1 or 2 from a config", description=DESCRIPTION
    )
    parser.add_argument(
        "--config", type=Path, metavar="YAML", help="configs/NAME.yaml (optional with --resume)"
    )
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="run directory")
    parser.add_argument(
        "--resume", action="store_true", help="continue the run in DIR from its last checkpoint"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from d2f.train.config import load_config
    from d2f.train.loop import resume_config, train

    if args.resume:
        config = resume_config(args.out, args.overrides)
        if args.config is not None:
            _check_same(load_config(args.config, args.overrides).to_dict(), config.to_dict(), args.config)
    elif args.config is None:
        raise InputError("--config: a config file is needed to start a run (or pass --resume)")
    else:
        config = load_config(args.config, args.overrides)
    progress = not (args.no_progress or getattr(args, "quiet", False))
    exported = train(config, args.out, resume=args.resume, progress=progress)
    report_written(args, exported)
    return 0


def _check_same(given: dict, stored: dict, path: Path, prefix: str = "") -> None:
    """A --config given with --resume must be the run's own (after the same overrides)."""
    for key in given:
        if isinstance(given[key], dict):
            _check_same(given[key], stored[key], path, f"{prefix}{key}.")
        elif given[key] != stored[key]:
            raise ConfigError(
                f"config key {prefix}{key}: {path} says {given[key]!r} but the run being resumed has "
                f"{stored[key]!r}; pass {prefix}{key}=... to change it, or leave out --config"
            )
