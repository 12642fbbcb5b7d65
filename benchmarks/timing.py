"""Timing and memory helpers shared by the pipeline benchmarks (run from this folder's scripts)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from d2f.models import D2F
from d2f.render import saturation_weight, weighted_layered_render


def median_seconds(function: Callable[[], object], runs: int, device: str) -> float:
    """Median wall time of ``runs`` calls after one warm-up call (allocator, kernel plans)."""
    function()
    times = []
    for _ in range(runs):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        function()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def graph_replay_seconds(function: Callable[[], object], runs: int) -> float:
    """Median wall time of replaying ``function`` captured as a CUDA graph (no Python, no launches).

    One eager call on a side stream comes first, as capturing needs (allocator, cuFFT plans, checks).
    """
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        function()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        function()
    return median_seconds(graph.replay, runs, "cuda")


def pipeline_split(model: D2F, image: torch.Tensor, runs: int, precision: str = "fp32") -> dict:
    """Median seconds end to end and of each step run alone, on the inputs the pipeline gives it."""
    device = image.device.type
    image_small = F.interpolate(
        image, size=model.stage1_size(*image.shape[-2:]), mode="bilinear", align_corners=False
    )
    defocus = model.predict_defocus(image_small)
    rendered_defocus = defocus.clamp(0, 1) if model.config.clamp_defocus else defocus

    def render() -> torch.Tensor:
        weight = saturation_weight(image_small, model.radiance_net(image_small))
        return weighted_layered_render(image_small, rendered_defocus, weight)

    bokeh_small = render()
    return {
        "end_to_end": median_seconds(lambda: model(image, precision=precision), runs, device),
        "defocus_network": median_seconds(lambda: model.predict_defocus(image_small), runs, device),
        "radiance_and_renderer": median_seconds(render, runs, device),
        "fusion": median_seconds(lambda: model.fuse(image, defocus, bokeh_small), runs, device),
    }


def peak_rss_bytes() -> int:
    """This process's peak resident set size so far."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("VmHWM not found in /proc/self/status")
