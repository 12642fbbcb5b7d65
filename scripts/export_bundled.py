"""Write a trained model as the float16 bundle that ships inside the package.

    python scripts/export_bundled.py runs/lite-stage2/model            # -> src/d2f/weights/d2f-lite/
    python scripts/export_bundled.py MODEL_DIR --name d2f-lite --output /tmp/bundle --overwrite

MODEL_DIR is a folder written by ``save_pretrained`` (``d2f train`` leaves one as ``model/`` in its run
folder). Its architecture must be the named preset's (``d2f.models.CONFIGS``). The script prints the
parameter count, the bundle's size, and how far the float16 bundle's output on the sample photo is from
the float32 model's.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import torch

from d2f.cli.demo import SAMPLE_PHOTO
from d2f.errors import CheckpointError, D2FError, InputError
from d2f.io import read_image
from d2f.models import CONFIGS, DEFAULT_MODEL, D2FConfig, load_pretrained, presets
from d2f.models.checkpoint import WEIGHTS_NAME
from d2f.models.config import INFERENCE_SETTINGS

#: The bundle must stay small enough to ship inside the package.
MAX_BUNDLE_MB = 25.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="a folder written by save_pretrained")
    parser.add_argument("--name", default=DEFAULT_MODEL, choices=sorted(CONFIGS), help="the preset")
    parser.add_argument("--output", type=Path, help="bundle folder (default: src/d2f/weights/NAME)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing bundle")
    args = parser.parse_args(argv)
    try:
        return export(args.source, args.name, args.output or presets.BUNDLE_ROOT / args.name, args.overwrite)
    except D2FError as error:
        print(f"export_bundled: error: {error}", file=sys.stderr)
        return error.exit_code


def export(source: Path, name: str, destination: Path, overwrite: bool) -> int:
    model = load_pretrained(source)
    # The preset's inference settings, chosen after training, replace the run's.
    settings = {setting: getattr(CONFIGS[name], setting) for setting in INFERENCE_SETTINGS}
    model.config = dataclasses.replace(model.config, **settings)
    if model.config != CONFIGS[name]:
        differing = [
            field.name
            for field in dataclasses.fields(D2FConfig)
            if getattr(model.config, field.name) != getattr(CONFIGS[name], field.name)
        ]
        raise CheckpointError(f"{source}: not the {name} architecture (differs in {', '.join(differing)})")
    half_mb = sum(2 * value.numel() for value in model.state_dict().values()) / 2**20
    if half_mb > MAX_BUNDLE_MB:
        raise CheckpointError(f"{source}: {half_mb:.1f} MB in float16, above the {MAX_BUNDLE_MB:g} MB limit")
    if (destination / WEIGHTS_NAME).exists() and not overwrite:
        raise InputError(f"{destination}: a bundle exists already (use --overwrite to replace it)")
    presets.export_bundle(model, destination, label=str(source))
    bundle = load_pretrained(destination)
    size_mb = (destination / WEIGHTS_NAME).stat().st_size / 2**20
    image = read_image(SAMPLE_PHOTO).unsqueeze(0)
    with torch.inference_mode():
        difference = (bundle(image).bokeh - model(image).bokeh).abs().max().item()
    parameters = sum(parameter.numel() for parameter in model.parameters())
    print(f"wrote {destination}: {parameters / 1e6:.2f} M parameters, {size_mb:.1f} MB")
    print(f"float16 bundle vs float32 model on {SAMPLE_PHOTO.name}: max abs difference {difference:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
