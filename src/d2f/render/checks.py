"""Argument checks shared by the renderer's public functions.

Each check raises :class:`d2f.errors.InputError` with a message that names the argument and says what
was expected, so that bad input never surfaces as an internal PyTorch error.
"""

from __future__ import annotations

import torch

from d2f.errors import InputError


def check_tensor(value: object, name: str, *, channels: tuple[int, ...] | None = None) -> torch.Tensor:
    """A floating-point (N, C, H, W) tensor with N, H, W >= 1 and C in ``channels`` if given."""
    if not isinstance(value, torch.Tensor):
        raise InputError(f"{name}: expected a torch.Tensor, got {type(value).__name__}")
    if value.dim() != 4:
        raise InputError(f"{name}: expected shape (N, C, H, W), got {tuple(value.shape)}")
    if not value.is_floating_point():
        raise InputError(f"{name}: expected a floating-point dtype, got {value.dtype}")
    if min(value.shape[0], value.shape[2], value.shape[3]) < 1:
        raise InputError(f"{name}: expected a non-empty tensor, got shape {tuple(value.shape)}")
    if channels is not None and value.shape[1] not in channels:
        expected = " or ".join(str(c) for c in channels)
        raise InputError(f"{name}: expected {expected} channels, got shape {tuple(value.shape)}")
    return value


def check_finite(value: torch.Tensor, name: str) -> None:
    """No NaN or infinity anywhere in ``value`` (not checked while a CUDA graph is captured)."""
    if _capturing(value):
        return
    if not bool(torch.isfinite(value).all()):
        raise InputError(f"{name}: expected finite values, found NaN or inf")


def check_non_negative(value: torch.Tensor, name: str) -> None:
    """All values >= 0 (not checked while a CUDA graph is captured)."""
    if _capturing(value):
        return
    if bool((value < 0).any()):
        raise InputError(f"{name}: expected non-negative values, found a minimum of {float(value.min()):.4g}")


def check_per_image(value: torch.Tensor, name: str, batch: int) -> None:
    """A floating-point tensor of one value, or one per image (``batch``,), finite and >= 0 (values are
    not checked while a CUDA graph is captured)."""
    if not value.is_floating_point() or value.dim() > 1 or value.numel() not in (1, batch):
        raise InputError(
            f"{name}: expected a number or one floating-point value per image ({batch},), got "
            f"{value.dtype} of shape {tuple(value.shape)}"
        )
    check_finite(value, name)
    check_non_negative(value, name)


def _capturing(value: torch.Tensor) -> bool:
    """True while ``value``'s CUDA stream is being captured into a graph: reading values would break the
    capture, so checks of values are left to an eager call (which a capture needs first anyway)."""
    return value.is_cuda and torch.cuda.is_current_stream_capturing()


def check_same_size(reference: torch.Tensor, other: torch.Tensor, reference_name: str, name: str) -> None:
    """Same batch size and spatial size as ``reference``."""
    if other.shape[0] != reference.shape[0] or other.shape[2:] != reference.shape[2:]:
        raise InputError(
            f"{name}: expected batch and spatial size {(reference.shape[0], *reference.shape[2:])} "
            f"matching {reference_name}, got shape {tuple(other.shape)}"
        )


def compute_dtype(*tensors: torch.Tensor) -> torch.dtype:
    """float32 or higher: the renderer never computes in half precision, even under autocast."""
    dtype = torch.float32
    for tensor in tensors:
        dtype = torch.promote_types(dtype, tensor.dtype)
    return dtype
