"""Capture a model's call on a CUDA graph, replay it on a new photo, and run the same call eagerly."""

from __future__ import annotations

from typing import Any

import torch


def replay_and_eager(model: torch.nn.Module, image: torch.Tensor, **call: Any) -> tuple[Any, Any]:
    """``(captured, eager)``: the graph's outputs after replaying it on new random values of ``image``
    (a CUDA tensor, overwritten), and an eager call on those values; ``call`` goes to every call."""
    with torch.inference_mode():
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # the eager call a capture needs first
            model(image, **call)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            captured = model(image, **call)
        image.copy_(torch.rand_like(image))
        graph.replay()
        return captured, model(image, **call)
