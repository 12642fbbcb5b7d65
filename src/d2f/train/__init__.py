"""Training D2F: stage 1 (defocus and radiance networks, learned through the renderer) and stage 2
(the fusion network), on EBB! or synthetic scenes, on a CPU, a GPU or many (under ``torchrun``).

>>> from d2f.train import load_config, train
>>> config = load_config("configs/smoke.yaml", ["run.steps=100"])
>>> train(config, "runs/smoke")  # doctest: +SKIP

Modules: :mod:`~d2f.train.config` (typed YAML configs), :mod:`~d2f.train.losses`,
:mod:`~d2f.train.stages` (the two stages as modules), :mod:`~d2f.train.data` (batches that survive
interruptions), :mod:`~d2f.train.loop` (the loop), :mod:`~d2f.train.checkpoint`, :mod:`~d2f.train.report`.
"""

from d2f.train.config import TrainConfig, load_config
from d2f.train.loop import resume_config, train

__all__ = ["TrainConfig", "load_config", "resume_config", "train"]
