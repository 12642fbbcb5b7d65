"""Fit d2f-lite-2's global constants on the real-lens development set, one after the other.

1. How much blur an f-number makes, with the model told the focus and the f-numbers (``d2f eval
   --focus-hint --aperture``): ``d2f.render.lens.LENS_BLUR`` on the grid 0.03 x 2^(k/2), k = 0..4, or,
   for a model with a blur-range head, ``METRIC_LENS_BLUR`` on the grid 0.069 x 2^(k/2), k = -2..4.
2. For a model with a blur-range head, the preset's ``default_f_number`` (the f-number of its own look,
   which every photo without a known f-number gets), on the grid 1.4, 2, 2.8, 4, over both runs: the
   pairs told the focus and the f-numbers where known (the pairs without them take the default) and
   the same pairs fully automatic (every pair takes it): twice the pairs.
3. The preset's ``focus_sharpness`` (how tightly the model's own focus point follows the peak of its
   focus map), fully automatic (no hints), on the grid 1, 2, 4, 8, 16.

The rule (written before the first ``LENS_BLUR`` fit; docs/evaluation.md says which fits came after a
first look): for each constant the candidate with the highest mean PSNR over its renderings; candidates
within 0.02 dB of the best tie, and the higher mean SSIM wins. Only the development set is used (its
README allows fitting a few global constants on it); held-out pairs are never seen.

    python scripts/fit_lens_constants.py --pairs ../shared/real_lens/pairs.csv --model MODEL_DIR
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable

import numpy as np
import torch

import d2f.render.lens as lens
from d2f.io import array_to_tensor, tensor_to_array
from d2f.pipeline import predict
from d2f.real_lens.scoring import Renderer, Rendering, ScoredPair, score_pairs
from lens_pairs_script import model_and_pairs

LENS_BLUR_CANDIDATES = tuple(round(0.03 * 2 ** (k / 2), 4) for k in range(5))
METRIC_LENS_BLUR_CANDIDATES = tuple(round(0.069 * 2 ** (k / 2), 4) for k in range(-2, 5))
DEFAULT_F_NUMBER_CANDIDATES = (1.4, 2.0, 2.8, 4.0)
FOCUS_SHARPNESS_CANDIDATES = (1.0, 2.0, 4.0, 8.0, 16.0)

# Which runs score a candidate: told the focus and the f-numbers where known, fully automatic, or both.
RUNS = {"told": (True,), "automatic": (False,), "both": (True, False)}

# Mean PSNRs closer than this (dB) are a tie, decided by SSIM.
TIE_DB = 0.02


def main(argv: list[str] | None = None) -> int:
    started = model_and_pairs("fit_lens_constants", __doc__.split("\n\n")[0], argv)
    if isinstance(started, int):
        return started
    model, pairs = started
    torch.set_grad_enabled(False)

    def render(image: np.ndarray, given: dict) -> Rendering:
        output = predict(model, array_to_tensor(image).unsqueeze(0), **given)
        return Rendering(tensor_to_array(output.bokeh[0].float()), output.defocus[0, 0].float().numpy())

    renderer = Renderer("model", render, takes_hints=True)

    def means(runs: str) -> tuple[float, float]:
        scored = [
            outcome.scores["model"]
            for hints in RUNS[runs]
            for outcome in score_pairs(pairs, [renderer], focus_hint=hints, aperture_hint=hints)
            if isinstance(outcome, ScoredPair)
        ]
        return float(np.mean([s.psnr for s in scored])), float(np.mean([s.ssim for s in scored]))

    def set_lens(name: str) -> Callable[[float], None]:
        return lambda value: setattr(lens, name, value)

    def set_config(name: str) -> Callable[[float], None]:
        def apply(value: float) -> None:
            model.config = dataclasses.replace(model.config, **{name: value})

        return apply

    # (name, candidates, the runs scored, how to apply a candidate), fitted in this order.
    steps = [("LENS_BLUR", LENS_BLUR_CANDIDATES, "told", set_lens("LENS_BLUR"))]
    if model.config.blur_range:
        steps = [
            ("METRIC_LENS_BLUR", METRIC_LENS_BLUR_CANDIDATES, "told", set_lens("METRIC_LENS_BLUR")),
            ("default_f_number", DEFAULT_F_NUMBER_CANDIDATES, "both", set_config("default_f_number")),
        ]
    steps.append(("focus_sharpness", FOCUS_SHARPNESS_CANDIDATES, "automatic", set_config("focus_sharpness")))
    for name, candidates, runs, apply in steps:
        results = {}
        for candidate in candidates:
            apply(candidate)
            results[candidate] = means(runs)
            print(f"{name} {candidate:<7g} {runs}: PSNR {results[candidate][0]:.3f}  "
                  f"SSIM {results[candidate][1]:.4f}", flush=True)
        apply(best(results))
        print(f"best: {name} = {best(results):g}")
    return 0


def best(results: dict[float, tuple[float, float]]) -> float:
    """The candidate with the highest PSNR; within ``TIE_DB`` of it, the highest SSIM."""
    top = max(psnr for psnr, _ in results.values())
    tied = [candidate for candidate, (psnr, _) in results.items() if psnr >= top - TIE_DB]
    return max(tied, key=lambda candidate: results[candidate][1])


if __name__ == "__main__":
    sys.exit(main())
