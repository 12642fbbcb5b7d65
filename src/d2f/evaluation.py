"""Evaluate a bokeh renderer on a folder of image pairs, under the protocol of :mod:`d2f.metrics`.

A method is any function from an (H, W, 3) uint8 photo to an (H, W, 3) uint8 rendering: a trained model
(through :func:`d2f.pipeline.render_image`) or one of the two baselines every model must beat:

- ``identity``: the sharp input itself;
- ``gaussian``: the whole image blurred with a Gaussian of sigma 6 px at full resolution (Pillow's
  ``GaussianBlur(6)``, whose radius is the sigma).

Data folders hold ``original/<name>.<ext>`` and ``bokeh/<name>.<ext>`` (and optionally
``subject_mask/<name>.png``, white on the in-focus subject), or are an EBB! root whose ``Training/``
folder holds them; the split ``val294`` selects pairs 4400-4693 and ``train`` pairs 0-4399.
"""

from __future__ import annotations

import csv
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFilter

from d2f.errors import DataError, InputError
from d2f.io import IMAGE_EXTENSIONS, open_image, read_image, tensor_to_array
from d2f.lpips import LPIPS
from d2f.metrics import psnr, ssim, structural_measures

#: A renderer under evaluation: (H, W, 3) uint8 photo -> (H, W, 3) uint8 bokeh.
Method = Callable[[np.ndarray], np.ndarray]

#: Pair numbers of the EBB! splits, as used by the community: Val294 is the usual test split.
SPLITS: dict[str, range] = {"train": range(0, 4400), "val294": range(4400, 4694)}

#: Sigma in pixels of the gaussian baseline.
GAUSSIAN_SIGMA = 6


def identity_baseline(image: np.ndarray) -> np.ndarray:
    """The floor of every method: the sharp input, unchanged."""
    return image.copy()


def gaussian_baseline(image: np.ndarray) -> np.ndarray:
    """The whole image blurred with a Gaussian of sigma 6 px (Pillow's ``GaussianBlur(6)``)."""
    return np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(GAUSSIAN_SIGMA)))


BASELINES: dict[str, Method] = {"identity": identity_baseline, "gaussian": gaussian_baseline}


@dataclass(frozen=True)
class EvalPair:
    """One evaluation sample: the sharp photo, its ground-truth bokeh and optionally a subject mask."""

    name: str
    original: Path
    bokeh: Path
    subject_mask: Path | None = None


@dataclass
class ImageResult:
    """Measures of one rendered image; ``None`` where a measure was not taken (NaN: undefined)."""

    name: str
    psnr: float
    ssim: float
    seconds: float
    lpips: float | None = None
    subject_sharpness: float | None = None
    background_blur_match: float | None = None


def find_pairs(root: str | Path, split: str | None = None) -> list[EvalPair]:
    """The pairs of a data folder (see the module docstring), sorted by name (numerically when possible).

    Raises :class:`DataError` naming the folder or file when the layout is wrong, a photo has no
    ground truth, or the split selects nothing.
    """
    root = Path(root)
    if split is not None and split not in SPLITS:
        raise InputError(f"split: expected one of {', '.join(SPLITS)}, got {split!r}")
    if not root.is_dir():
        raise DataError(f"{root}: no such data folder")
    folder = root if (root / "original").is_dir() else root / "Training"
    if not (folder / "original").is_dir() or not (folder / "bokeh").is_dir():
        raise DataError(
            f"{root}: expected original/ and bokeh/ folders (or Training/original/ and Training/bokeh/)"
        )
    originals = _images_by_name(folder / "original")
    ground_truths = _images_by_name(folder / "bokeh")
    if split is not None:
        numbers = SPLITS[split]
        originals = {
            name: path for name, path in originals.items() if name.isdigit() and int(name) in numbers
        }
    if not originals:
        selection = f" of split {split!r}" if split else ""
        raise DataError(f"{folder / 'original'}: no images{selection}")
    pairs = []
    for name in sorted(
        originals, key=lambda name: (not name.isdigit(), int(name) if name.isdigit() else 0, name)
    ):
        if name not in ground_truths:
            raise DataError(f"{originals[name]}: no ground truth bokeh/{name}.* beside it")
        mask = folder / "subject_mask" / f"{name}.png"
        pairs.append(EvalPair(name, originals[name], ground_truths[name], mask if mask.is_file() else None))
    return pairs


def evaluate(
    pairs: Iterable[EvalPair],
    method: Method,
    *,
    lpips: LPIPS | None = None,
    synchronize: Callable[[], None] | None = None,
) -> Iterator[ImageResult]:
    """Render each pair's photo with ``method`` and measure it against the ground truth, one at a time.

    ``seconds`` is the time of the ``method`` call alone (``synchronize``, e.g.
    ``torch.cuda.synchronize``, is called before the clock stops).
    """
    for pair in pairs:
        image, target = _read_rgb(pair.original), _read_rgb(pair.bokeh)
        if image.shape != target.shape:
            raise DataError(
                f"{pair.bokeh}: size {target.shape[1]}x{target.shape[0]} differs from its photo's "
                f"{image.shape[1]}x{image.shape[0]} ({pair.original})"
            )
        start = time.perf_counter()
        output = method(image)
        if synchronize is not None:
            synchronize()
        seconds = time.perf_counter() - start
        if not isinstance(output, np.ndarray) or output.dtype != np.uint8 or output.shape != image.shape:
            raise InputError(
                f"method: expected an {image.shape} uint8 array for {pair.name}, "
                f"got {getattr(output, 'dtype', type(output).__name__)} {getattr(output, 'shape', '')}"
            )
        result = ImageResult(pair.name, psnr(output, target), ssim(output, target), seconds)
        if lpips is not None:
            result.lpips = _lpips_distance(lpips, output, target)
        if pair.subject_mask is not None:
            mask = np.asarray(open_image(pair.subject_mask).convert("L"))
            if mask.shape != image.shape[:2]:
                raise DataError(
                    f"{pair.subject_mask}: size {mask.shape[1]}x{mask.shape[0]} differs from its photo's "
                    f"{image.shape[1]}x{image.shape[0]}"
                )
            measures = structural_measures(output, image, target, mask)
            result.subject_sharpness = measures.subject_sharpness
            result.background_blur_match = measures.background_blur_match
        yield result


def summarize(results: list[ImageResult]) -> dict[str, float]:
    """Mean of each measure over the images where it was taken and is defined (NaN where none is)."""
    summary = {}
    for field in fields(ImageResult):
        if field.name == "name":
            continue
        values = [getattr(result, field.name) for result in results]
        values = [value for value in values if value is not None and not math.isnan(value)]
        summary[field.name] = float(np.mean(values)) if values else float("nan")
    return summary


def measured_columns(results: list[ImageResult]) -> list[str]:
    """The measures taken for at least one image, in the order of :class:`ImageResult`."""
    return [
        field.name
        for field in fields(ImageResult)
        if field.name != "name" and any(getattr(result, field.name) is not None for result in results)
    ]


def write_report(results: list[ImageResult], path: str | Path, *, overwrite: bool = False) -> Path:
    """Per-image CSV (one row per image, then a ``mean`` row), written atomically."""
    columns = measured_columns(results)
    summary = summarize(results)
    rows = [{column: asdict(result)[column] for column in ["name", *columns]} for result in results]
    rows.append({"name": "mean", **{column: summary[column] for column in columns}})
    return write_csv(path, ["name", *columns], rows, overwrite=overwrite, format_cell=_format_report_cell)


def write_csv(
    path: str | Path,
    columns: Iterable[str],
    rows: list[dict[str, object]],
    *,
    overwrite: bool = False,
    format_cell: Callable[[object], str] | None = None,
) -> Path:
    """Write rows atomically (a temporary file beside ``path``, then renamed); each cell through
    ``format_cell``, :func:`format_value` by default."""
    format_cell = format_cell or format_value
    path = Path(path)
    if path.exists() and not overwrite:
        raise InputError(f"{path}: already exists (pass overwrite=True / --overwrite to replace it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=list(columns))
            writer.writeheader()
            for row in rows:
                writer.writerow({key: format_cell(value) for key, value in row.items()})
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def format_value(value: object) -> str:
    """A CSV cell: empty for None and NaN, 6 significant digits for floats."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _format_report_cell(value: object) -> str:
    """The per-image report's cell: as :func:`format_value`, but an undefined measure reads ``nan``."""
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return format_value(value)


def _images_by_name(folder: Path) -> dict[str, Path]:
    images: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file():
            if path.stem in images:
                raise DataError(f"{path}: two images named {path.stem!r} in {folder}")
            images[path.stem] = path
    return images


def _read_rgb(path: Path) -> np.ndarray:
    # Decoded by Pillow (EXIF orientation applied) and kept as 8-bit RGB, as the protocol requires.
    return tensor_to_array(read_image(path, max_megapixels=None))


def _lpips_distance(lpips: LPIPS, output: np.ndarray, target: np.ndarray) -> float:
    device = next(lpips.parameters()).device
    tensors = [
        torch.from_numpy(x).permute(2, 0, 1)[None].float().div(255).to(device) for x in (output, target)
    ]
    with torch.inference_mode():
        return float(lpips(*tensors)[0])


__all__ = [
    "BASELINES",
    "GAUSSIAN_SIGMA",
    "SPLITS",
    "EvalPair",
    "ImageResult",
    "Method",
    "evaluate",
    "find_pairs",
    "format_value",
    "gaussian_baseline",
    "identity_baseline",
    "measured_columns",
    "summarize",
    "write_csv",
    "write_report",
]
