"""Write a model whose weights lie on the straight line between two models of one architecture.

Each floating-point tensor of the chosen parts becomes ``weight * FIRST + (1 - weight) * SECOND``;
every other tensor (the other parts, BatchNorm's step counters) is SECOND's. Two runs that continue
one another with different losses (stage 1g and 1h of d2f-lite) trade one measure for another; the
models between them show that trade-off without training anything. With ``--parts defocus_net
radiance_net`` stage 1 is interpolated and the fusion network is SECOND's, so SECOND may be a finished
stage 2 and FIRST a stage-1 model whose fusion network was never trained.

    python scripts/interpolate_models.py runs/lite_stage1g/model540 runs/lite_stage2k/model \\
        runs/mix75 --weight 0.75 --parts defocus_net radiance_net
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from d2f.errors import CheckpointError, D2FError, InputError
from d2f.models import D2F, load_pretrained

PARTS = ("defocus_net", "radiance_net", "fusion_net")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("first", type=Path, help="a model folder (save_pretrained)")
    parser.add_argument("second", type=Path, help="a model folder of the same architecture")
    parser.add_argument("output", type=Path, help="the model folder to write (must not exist)")
    parser.add_argument("--weight", type=float, required=True, help="FIRST's share, in [0, 1]")
    parser.add_argument(
        "--parts", nargs="+", choices=PARTS, default=list(PARTS), help="what to mix (default: all)"
    )
    args = parser.parse_args(argv)
    try:
        if args.output.exists():
            raise InputError(f"{args.output}: exists already (give a new folder)")
        first, second = load_pretrained(args.first), load_pretrained(args.second)
        interpolate(first, second, args.weight, args.parts).save_pretrained(args.output)
    except D2FError as error:
        print(f"interpolate_models: error: {error}", file=sys.stderr)
        return error.exit_code
    shares = f"{args.weight:g} x {args.first} + {1 - args.weight:g} x {args.second}"
    print(f"{args.output}: {shares} ({', '.join(args.parts)})")
    return 0


def interpolate(first: D2F, second: D2F, weight: float, parts: list[str] | tuple[str, ...] = PARTS) -> D2F:
    """SECOND, its ``parts`` moved to ``weight * FIRST + (1 - weight) * SECOND`` (floating tensors only)."""
    if not (math.isfinite(weight) and 0 <= weight <= 1):
        raise InputError(f"weight: expected a number in [0, 1], got {weight}")
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        raise InputError(f"parts: unknown {', '.join(unknown)} (choose from {', '.join(PARTS)})")
    if first.config != second.config:
        raise CheckpointError("the two models have different architectures (their config.json differ)")
    first_state, state = first.state_dict(), second.state_dict()
    prefixes = tuple(f"{part}." for part in parts)
    for key, value in state.items():
        if key.startswith(prefixes) and value.is_floating_point():
            state[key] = weight * first_state[key] + (1 - weight) * value
    second.load_state_dict(state)
    return second


if __name__ == "__main__":
    sys.exit(main())
