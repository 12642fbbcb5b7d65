"""Fit ``d2f.render.lens.LENS_BLUR``, the one constant that maps an f-number to an amount of blur.

The rule, fixed before looking at any result: on the real-lens development set's aperture sweeps (the
rows of ``pairs.csv`` that share a photo and give ``f_bokeh``), render each pair with the focus and
aperture hints of ``d2f eval --focus-hint --aperture`` for each candidate constant, and keep the
candidate with the smallest mean blur error (``|log2(output blur / lens blur)|``, in stops, see
:mod:`d2f.real_lens.sweeps`) over the sweeps' scenes. Only the development set is used (its README
allows fitting a few global constants on it); the held-out pairs are never seen.

    python scripts/fit_lens_blur.py --pairs ../shared/real_lens/pairs.csv --model d2f-lite
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

import d2f.render.lens as lens
from d2f.io import array_to_tensor, tensor_to_array
from d2f.models import load
from d2f.pipeline import predict
from d2f.real_lens.pairs import read_pairs_csv
from d2f.real_lens.scoring import Renderer, Rendering, ScoredPair, score_pairs
from d2f.real_lens.sweeps import aperture_sweeps

CANDIDATES = (0.02, 0.03, 0.05, 0.07, 0.1, 0.14)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=Path, default=Path("../shared/real_lens/pairs.csv"))
    parser.add_argument("--model", default="d2f-lite", help="a bundled name or a save_pretrained folder")
    parser.add_argument("--candidates", type=float, nargs="+", default=CANDIDATES)
    args = parser.parse_args()
    if not args.pairs.is_file():
        print(f"fit_lens_blur: {args.pairs}: no such file (the real-lens set lives in ../shared)")
        return 0
    torch.set_grad_enabled(False)
    model = load(args.model)
    pairs, errors = read_pairs_csv(args.pairs)
    if errors:
        print(f"fit_lens_blur: error: {errors[0].message}", file=sys.stderr)
        return 2
    apertures: dict[Path, set[float]] = {}
    for pair in pairs:
        if pair.f_bokeh is not None:
            apertures.setdefault(pair.original, set()).add(pair.f_bokeh)
    pairs = [pair for pair in pairs if len(apertures.get(pair.original, ())) >= 2]

    def render(image: np.ndarray, given: dict) -> Rendering:
        output = predict(model, array_to_tensor(image).unsqueeze(0), **given)
        return Rendering(tensor_to_array(output.bokeh[0].float()), output.defocus[0, 0].float().numpy())

    renderer = Renderer("model", render, takes_hints=True)
    errors_by_candidate = {}
    for candidate in args.candidates:
        lens.LENS_BLUR = candidate
        scored = [
            outcome
            for outcome in score_pairs(pairs, [renderer], focus_hint=True, aperture_hint=True)
            if isinstance(outcome, ScoredPair)
        ]
        sweeps = aperture_sweeps(scored)
        errors_by_candidate[candidate] = float(np.mean([sweep.blur_error["model"] for sweep in sweeps]))
        orders = ", ".join(f"{sweep.order['model']:.2f}" for sweep in sweeps)
        print(f"LENS_BLUR {candidate:<6g} mean blur error {errors_by_candidate[candidate]:.3f} stops "
              f"over {len(sweeps)} scenes (aperture order {orders})", flush=True)
    best = min(errors_by_candidate, key=errors_by_candidate.get)
    print(f"best: LENS_BLUR = {best:g} ({errors_by_candidate[best]:.3f} stops)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
