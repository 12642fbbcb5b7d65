"""What a run writes as it goes: ``metrics.csv``, sample sheets and (optionally) TensorBoard logs."""

from __future__ import annotations

import csv
import importlib.util
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from d2f.io import colorize_defocus, tensor_to_array

#: Columns of ``metrics.csv``; validation columns are empty on rows without a validation.
COLUMNS = (
    "step", "lr", "train_loss", "images_per_second", "val_loss", "val_psnr", "val_ssim",
    "val_absrel", "val_delta1", "val_spearman",
)


class MetricsLog:
    """Appends rows to ``DIR/metrics.csv`` (and TensorBoard scalars when available and wanted).

    On resume, rows after the step the run continues from are dropped first, so the file never holds
    two histories.
    """

    def __init__(self, directory: Path, *, resume_step: int = 0, tensorboard: bool = True):
        self.path = directory / "metrics.csv"
        kept = []
        if resume_step > 0 and self.path.is_file():
            with self.path.open(newline="") as file:
                kept = [row for row in csv.DictReader(file) if int(row["step"]) <= resume_step]
        with self.path.open("w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(kept)
        self.writer = None
        if tensorboard and importlib.util.find_spec("tensorboard") is not None:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(directory / "tensorboard"), purge_step=resume_step + 1)

    def write(self, step: int, values: dict[str, float]) -> None:
        row = {column: _format(values.get(column)) for column in COLUMNS}
        row["step"] = str(step)
        with self.path.open("a", newline="") as file:
            csv.DictWriter(file, fieldnames=COLUMNS).writerow(row)
        if self.writer is not None:
            for name, value in values.items():
                self.writer.add_scalar(name, value, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def sample_sheet(
    image: torch.Tensor,
    defocus: torch.Tensor,
    bokeh_small: torch.Tensor,
    target: torch.Tensor,
    output: torch.Tensor | None = None,
) -> Image.Image:
    """One row per image: input | defocus | stage-1 bokeh | [output |] ground truth, at (H, W).

    Args:
        image, target: (N, 3, H, W) in [0, 1]; output: (N, 3, H, W) or None (stage 1 has no fused output).
        defocus: (N, 1, h, w) shown through a colour map; bokeh_small: (N, 3, h, w); both are
            upsampled to (H, W) for display.
    """
    size = image.shape[-2:]
    defocus = torch.nn.functional.interpolate(
        defocus.float(), size=size, mode="bilinear", align_corners=False
    )
    bokeh = torch.nn.functional.interpolate(
        bokeh_small.float(), size=size, mode="bilinear", align_corners=False
    )
    rows = []
    for index in range(image.shape[0]):
        tiles = [
            tensor_to_array(image[index]),
            colorize_defocus(defocus[index, 0].cpu()),
            tensor_to_array(bokeh[index]),
            *([tensor_to_array(output[index])] if output is not None else []),
            tensor_to_array(target[index]),
        ]
        rows.append(np.concatenate(tiles, axis=1))
    return Image.fromarray(np.concatenate(rows, axis=0))


def depth_sample_sheet(
    image: torch.Tensor, disparity: torch.Tensor, target: torch.Tensor, focus: torch.Tensor
) -> Image.Image:
    """One row per image: input | predicted disparity | true disparity | focus map, at (H, W).

    Args:
        image: (N, 3, H, W) in [0, 1].
        disparity, target: (N, 1, h, w) and (N, 1, H, W) disparities (near = large), each shown
            normalised to its own range through the colour map, near bright.
        focus: (N, 1, h, w) the focus map's probabilities, shown relative to each image's largest.
    """
    size = image.shape[-2:]
    rows = []
    for index in range(image.shape[0]):
        maps = []
        for values in (disparity[index], target[index], focus[index]):
            values = torch.nn.functional.interpolate(
                values[None].float(), size=size, mode="bilinear", align_corners=False
            )[0, 0].cpu()
            low, high = values.min(), values.max()
            maps.append(colorize_defocus((values - low) / (high - low).clamp_min(1e-6)))
        rows.append(np.concatenate([tensor_to_array(image[index]), *maps], axis=1))
    return Image.fromarray(np.concatenate(rows, axis=0))


def _format(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.6g}"


__all__ = ["COLUMNS", "MetricsLog", "depth_sample_sheet", "sample_sheet"]
