"""Evaluation on real-lens pairs: photos a camera took of the same scene at two apertures.

``d2f eval --pairs CSV`` runs it; see ``docs/evaluation.md``. The parts:

- :mod:`~d2f.real_lens.pairs`: the CSV of pairs, checked row by row, and reading a pair's images;
- :mod:`~d2f.real_lens.hints`: the focus point and f-numbers a model may be told;
- :mod:`~d2f.real_lens.scoring`: rendering with each method and measuring (:mod:`d2f.metrics`);
- :mod:`~d2f.real_lens.sweeps`: scenes at several apertures, and whether the blur follows the aperture;
- :mod:`~d2f.real_lens.report`: the per-pair and summary CSV files;
- :mod:`~d2f.real_lens.sheet`: contact sheets to look at.
"""
