"""Write the weights of a training checkpoint as a model folder, like the one a finished run leaves.

A run writes ``model/`` only when it ends. This turns a checkpoint (``checkpoints/last.pt`` or
``best.pt``) of a run that stopped early into the same kind of folder (``save_pretrained``): loadable
by ``d2f.load``, usable as ``model.init`` of a next stage and by ``scripts/export_bundled.py``. The
checkpoint's EMA weights are written when it has some (they are what a finished run exports).

    python scripts/checkpoint_to_model.py runs/lite_stage1g/checkpoints/last.pt runs/lite_stage1g/model540
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from d2f.errors import CheckpointError, D2FError, InputError
from d2f.train.checkpoint import load_checkpoint
from d2f.train.config import apply_overrides, config_from_dict
from d2f.train.model import build_model

# Only the config's model section matters here: the checkpoint's weights replace whatever the run started
# from, and the run's data folders need not exist on this machine.
_DETACHED = (
    "stage=1",
    "model.init=null",
    "model.encoder_weights=null",
    "data.dataset=synthetic",
    "data.textures=null",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path, help="a run's checkpoints/last.pt or best.pt")
    parser.add_argument("output", type=Path, help="the model folder to write (must not exist)")
    args = parser.parse_args(argv)
    try:
        step, weights = convert(args.checkpoint, args.output)
    except D2FError as error:
        print(f"checkpoint_to_model: error: {error}", file=sys.stderr)
        return error.exit_code
    print(f"{args.output}: the {weights} weights of {args.checkpoint} at step {step}")
    return 0


def convert(checkpoint: Path, output: Path) -> tuple[int, str]:
    """Write ``checkpoint``'s model to ``output``; returns its step and which weights were written."""
    if output.exists():
        raise InputError(f"{output}: exists already (give a new folder)")
    state = load_checkpoint(checkpoint)
    config = config_from_dict(apply_overrides(state["config"], _DETACHED))
    model = build_model(config.model)
    weights = "ema" if "ema" in state else "model"
    try:
        model.load_state_dict(state[weights])
    except RuntimeError as error:
        message = f"{checkpoint}: its weights do not fit its own architecture ({error})"
        raise CheckpointError(message) from None
    model.eval().save_pretrained(output)
    return int(state["step"]), weights


if __name__ == "__main__":
    sys.exit(main())
