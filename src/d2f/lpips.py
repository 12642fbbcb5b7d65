"""LPIPS (AlexNet, v0.1), built only from weight files already on this machine.

LPIPS needs two files: torchvision's ImageNet AlexNet (``alexnet-owt-7be5be79.pth``) and the
perceptual calibration of the ``lpips`` package (``weights/v0.1/alex.pth``). Nothing is ever downloaded:
:func:`find_lpips_weights` looks in a folder given by the user, the torch hub cache and an installed
``lpips`` package, and :func:`load_lpips` returns ``None`` with the reason when a file is missing.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from torch import nn

from d2f.errors import CheckpointError, InputError

ALEXNET_FILE = "alexnet-owt-7be5be79.pth"
LINEAR_FILE = "alex.pth"

# Per-channel shift and scale applied to inputs in [-1, 1] (v0.1 of the metric).
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)
# AlexNet feature indices after which LPIPS taps the five ReLU outputs.
_TAPS = (2, 5, 8, 10, 12)
_CHANNELS = (64, 192, 384, 256, 256)


class LPIPS(nn.Module):
    """Learned perceptual distance of two images (lower is closer).

    ``forward(output, target)`` takes (N, 3, H, W) tensors in [0, 1] and returns (N,) distances.
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = _alexnet_features()
        self.linear = nn.ModuleList(nn.Conv2d(channels, 1, 1, bias=False) for channels in _CHANNELS)
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def _taps(self, image: torch.Tensor) -> list[torch.Tensor]:
        x = (2 * image - 1 - self.shift) / self.scale
        taps, start = [], 0
        for stop in _TAPS:
            x = self.features[start:stop](x)
            # Unit length along channels, so that each layer compares feature directions.
            taps.append(x / (x.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10))
            start = stop
        return taps

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if output.dim() != 4 or output.shape[1] != 3 or output.shape != target.shape:
            raise InputError(
                f"output: expected (N, 3, H, W) like the target {tuple(target.shape)}, "
                f"got {tuple(output.shape)}"
            )
        distance = output.new_zeros(output.shape[0])
        for linear, first, second in zip(self.linear, self._taps(output), self._taps(target), strict=True):
            distance = distance + linear((first - second) ** 2).mean(dim=(1, 2, 3))
        return distance

    def load_weights(self, alexnet_path: Path, linear_path: Path) -> LPIPS:
        """Load torchvision's AlexNet checkpoint and the lpips package's linear layers (strictly)."""
        alexnet_state = _load_state(alexnet_path)
        features = {
            key.removeprefix("features."): value
            for key, value in alexnet_state.items()
            if key.startswith("features.") and int(key.split(".")[1]) < _TAPS[-1]
        }
        linear_state = _load_state(linear_path)
        # The lpips package stores layer k as lin<k>.model.1.weight (a Dropout precedes the conv).
        linear = {f"{index}.weight": linear_state.get(f"lin{index}.model.1.weight") for index in range(5)}
        try:
            self.features.load_state_dict(features)
            self.linear.load_state_dict({key: value for key, value in linear.items() if value is not None})
        except RuntimeError as error:
            first_line = str(error).strip().splitlines()[0]
            raise CheckpointError(
                f"{alexnet_path} / {linear_path}: not LPIPS AlexNet weights ({first_line})"
            ) from None
        return self


def _alexnet_features() -> nn.Sequential:
    """torchvision's AlexNet ``features`` to its fifth ReLU (same indices: its keys load as they are)."""
    return nn.Sequential(
        nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(64, 192, kernel_size=5, padding=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(192, 384, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
    )


def find_lpips_weights(folder: str | Path | None = None) -> tuple[Path, Path] | str:
    """Paths of the AlexNet and linear-layer files, or a sentence saying which one was not found.

    ``folder``, when given, must hold both files. Otherwise AlexNet comes from the torch hub cache
    (``<hub>/checkpoints/``) and the linear layers from that cache or an installed ``lpips`` package.
    """
    if folder is not None:
        folder = Path(folder)
        candidates_alexnet = [folder / ALEXNET_FILE]
        candidates_linear = [folder / LINEAR_FILE]
    else:
        hub = Path(torch.hub.get_dir()) / "checkpoints"
        candidates_alexnet = [hub / ALEXNET_FILE]
        candidates_linear = [hub / LINEAR_FILE]
        spec = importlib.util.find_spec("lpips")
        for location in (spec.submodule_search_locations or []) if spec else []:
            candidates_linear.append(Path(location) / "weights" / "v0.1" / LINEAR_FILE)
    alexnet_path = next((path for path in candidates_alexnet if path.is_file()), None)
    linear_path = next((path for path in candidates_linear if path.is_file()), None)
    if alexnet_path is None:
        return f"no AlexNet weights at {candidates_alexnet[0]}"
    if linear_path is None:
        return f"no LPIPS v0.1 linear weights ({LINEAR_FILE}) at {' or '.join(map(str, candidates_linear))}"
    return alexnet_path, linear_path


def load_lpips(folder: str | Path | None = None) -> tuple[LPIPS | None, str]:
    """The metric from local files, or ``(None, reason)`` when they are not there. Never downloads."""
    found = find_lpips_weights(folder)
    if isinstance(found, str):
        return None, found
    return LPIPS().load_weights(*found), f"LPIPS weights from {found[0]} and {found[1]}"


def _load_state(path: Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # any unpickling failure: not a checkpoint
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({type(error).__name__})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a state dict, got {type(state).__name__}")
    return state


__all__ = ["ALEXNET_FILE", "LINEAR_FILE", "LPIPS", "find_lpips_weights", "load_lpips"]
