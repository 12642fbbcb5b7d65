"""``d2f render``: render bokeh for image files or whole folders.

Exit status: 0 when every image was rendered (or skipped by ``--skip-existing``); otherwise the most
serious class of failure, 2 when any input or output path was bad (unreadable image, existing output
without ``--overwrite``, ...) and 1 when the inputs were fine but rendering or writing failed. Each
failure is one line on stderr naming the file; the other images are still rendered. Usage errors (bad
flags, no model, a bad checkpoint) stop at once. Each file written is reported once on stderr.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from d2f.cli import report_written
from d2f.errors import D2FError, InputError

if TYPE_CHECKING:
    import torch

    from d2f.pipeline import DepthInput

DESCRIPTION = """\
Render bokeh for image files or folders. Without -o, PHOTO.jpg is rendered to PHOTO_bokeh.jpg beside it
(a folder's earlier results, *_bokeh and the like, are not rendered again). With one input file and an
OUTPUT with an image extension, OUTPUT is the output file; otherwise OUTPUT is a folder (created if
needed) that receives each image under its own name. A folder input contributes its image files (sorted,
not recursive). The output format follows the output extension. Images are read upright (EXIF
orientation applied) and in RGB (alpha dropped); outputs keep the input size exactly and are written
atomically. JPEG, PNG, WebP, TIFF and AVIF outputs keep the input's colour profile and EXIF (camera,
lens, exposure, date, place).
"""

EPILOG = """\
exit status: 0 all rendered (or skipped); 2 a bad input or output path (or bad usage, no model, a bad
checkpoint); 1 rendering or writing failed. With several inputs the others are still rendered.
"""


@dataclass(frozen=True)
class Job:
    """One image to render: where it comes from and where its results go."""

    source: Path
    output: Path
    defocus: Path | None
    defocus_color: Path | None
    depth: Path | None = None
    depth_color: Path | None = None

    def targets(self) -> list[Path]:
        """Every file this job writes, the bokeh first."""
        maps = (self.defocus, self.defocus_color, self.depth, self.depth_color)
        return [self.output, *(path for path in maps if path is not None)]


@dataclass(frozen=True)
class Failure:
    path: Path
    message: str
    exit_code: int


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "render",
        parents=[common],
        help="render bokeh for images or folders",
        description=DESCRIPTION,
        epilog=EPILOG,
    )
    parser.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="image files or folders")
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="OUTPUT",
        help="output file (one input) or folder (default: PHOTO_bokeh.EXT beside each photo)",
    )
    add_options(parser)
    add_depth_arguments(parser)
    parser.set_defaults(handler=run)


def add_depth_arguments(parser: argparse.ArgumentParser) -> None:
    """``--depth`` and its companions: render one photo from your own depth map."""
    group = parser.add_argument_group(
        "your own depth map (one input; the depth options then work with any model)"
    )
    group.add_argument(
        "--depth",
        type=Path,
        metavar="PATH",
        help="depth or disparity map of the photo (8/16-bit PNG, TIFF, .npy, .pfm; any size, same aspect)",
    )
    group.add_argument(
        "--depth-kind",
        choices=("disparity", "depth"),
        default="disparity",
        help="disparity: larger values are nearer (default); depth: larger values are farther",
    )
    group.add_argument(
        "--depth-invalid",
        type=float,
        metavar="V",
        help="a value that marks unknown pixels, besides 0, NaN and inf (filled from their neighbours)",
    )
    group.add_argument(
        "--depth-scale",
        type=float,
        metavar="S",
        help="the map is metric: its values times S are metres (depth) or 1/m (disparity), e.g. 0.001 for "
        "millimetres; the blur then follows the scene's measured depth range, as a real lens's does",
    )


def _depth_input(args: argparse.Namespace) -> DepthInput | None:
    """``--depth`` read as :func:`d2f.pipeline.depth_input`, or None without it."""
    if getattr(args, "depth", None) is None:
        if getattr(args, "depth_scale", None) is not None:
            raise InputError("--depth-scale: only with --depth, the map whose units it gives")
        return None
    from d2f.pipeline import depth_input

    return depth_input(args.depth, args.depth_kind, args.depth_invalid, args.depth_scale)


def add_options(parser: argparse.ArgumentParser) -> None:
    """The options ``d2f render`` shares with ``d2f demo``: the model, how to run it, what to write."""
    add_model_options(parser)
    parser.add_argument(
        "--quality", type=int, default=95, metavar="Q", help="JPEG/WebP quality, 1-100 (default 95)"
    )
    parser.add_argument(
        "--max-megapixels", type=float, default=50.0, metavar="MP", help="refuse larger images (default 50)"
    )
    parser.add_argument(
        "--save-defocus",
        action="store_true",
        help="also write <stem>_defocus.png (16-bit) and <stem>_defocus_color.png",
    )
    parser.add_argument(
        "--save-depth",
        action="store_true",
        help="also write <stem>_depth.png (the disparity, 16-bit, near = bright) and <stem>_depth_color.png; "
        "models that predict depth, or a given depth map",
    )
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument("--overwrite", action="store_true", help="replace existing output files")
    existing.add_argument(
        "--skip-existing",
        action="store_true",
        help="leave existing output files as they are and render only what is missing (re-running a batch)",
    )


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """The options that choose the model and how it renders (shared with ``d2f eval``)."""
    add_weights_arguments(parser)
    parser.add_argument(
        "--device",
        default="auto",
        metavar="{auto,cpu,cuda}",
        help="where to run (default: auto, CUDA when available)",
    )
    parser.add_argument(
        "--precision",
        choices=("fp32", "bf16"),
        default="fp32",
        help="bf16: bfloat16 autocast for the networks (faster on GPUs; default fp32)",
    )
    add_render_arguments(parser)
    parser.add_argument(
        "--background-blur",
        type=float,
        metavar="PX",
        help="only for models trained to predict relative defocus (none of the bundled ones): blur the "
        "farthest background into a disc of PX pixels of the photo; with the bundled models use "
        "--strength or --f-number",
    )


def add_weights_arguments(
    parser: argparse.ArgumentParser, default: str = "the bundled d2f-lite model"
) -> None:
    """Which model to load (see :func:`load_weights`); shared with ``d2f app``, whose ``default`` differs."""
    weights = parser.add_argument_group(f"model weights (default: {default})")
    weights.add_argument(
        "--model",
        metavar="NAME|PATH",
        help="a bundled model by name (d2f-lite, d2f-lite-2) or a folder in d2f's own format",
    )
    weights.add_argument("--stage1", type=Path, metavar="PATH", help="the paper's stage-1 checkpoint")
    weights.add_argument("--stage2", type=Path, metavar="PATH", help="the paper's stage-2 checkpoint")
    weights.add_argument(
        "--weights",
        type=Path,
        metavar="PATH",
        help="d2f's own format: a folder from save_pretrained or its model.safetensors",
    )


def add_render_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per render option, from its description in :mod:`d2f.options` (parsed there too)."""
    from d2f.options import option_specs

    group = parser.add_argument_group("how to render (see d2f.options.RenderOptions)")
    for spec in option_specs():
        group.add_argument(spec.flag, dest=spec.name, type=str, metavar=spec.metavar, help=spec.help)


def options_from_args(args: argparse.Namespace):
    """The :class:`d2f.options.RenderOptions` the render flags ask for (errors name the flag)."""
    from d2f.options import option_specs, options_from_flags

    values = {}
    for spec in option_specs():
        text = getattr(args, spec.name, None)
        values[spec.name] = None if text is None else spec.parse(text)
    return options_from_flags(values)


def run(args: argparse.Namespace) -> int:
    from d2f.pipeline import resolve_device

    check_options(args)
    device = resolve_device(args.device)
    if getattr(args, "depth", None) is not None and (len(args.inputs) != 1 or args.inputs[0].is_dir()):
        raise InputError("--depth: give exactly one input photo with its depth map")
    depth = _depth_input(args)
    jobs, failures, skipped = plan_jobs(args.inputs, args.output, **output_settings(args))
    for failure in failures:
        _report(failure)
    total = len(jobs) + len(failures) + skipped
    if jobs:
        model = load_model(args)
        failures += _render_all(model, jobs, args, device, depth)
    if skipped and not getattr(args, "quiet", False):
        print(f"d2f render: skipped {skipped} of {total} inputs whose outputs all exist", file=sys.stderr)
    if failures and total > 1:
        print(f"d2f render: {len(failures)} of {total} inputs failed", file=sys.stderr)
    return max((failure.exit_code for failure in failures), default=0)


def check_options(args: argparse.Namespace) -> None:
    if not 1 <= args.quality <= 100:
        raise InputError(f"--quality: expected an integer from 1 to 100, got {args.quality}")
    if not args.max_megapixels > 0:
        raise InputError(f"--max-megapixels: expected a positive number, got {args.max_megapixels:g}")
    depth_scale = getattr(args, "depth_scale", None)
    if depth_scale is not None and not 0 < depth_scale < math.inf:
        raise InputError(f"--depth-scale: expected a finite number > 0, got {depth_scale:g}")
    check_model_options(args)


def check_model_options(args: argparse.Namespace) -> None:
    """Check the flags of :func:`add_model_options` (the model itself is checked by :func:`load_model`)."""
    options_from_args(args)
    blur = args.background_blur
    if blur is not None and not 0 <= blur < float("inf"):
        raise InputError(f"--background-blur: expected a finite number of pixels >= 0, got {blur:g}")
    chosen = [flag for flag in ("model", "weights", "stage1") if getattr(args, flag) is not None]
    if len(chosen) > 1:
        flags = " and ".join(f"--{flag}" for flag in chosen)
        raise InputError(f"{flags} cannot be combined: pass one kind of weights")
    if (args.stage1 is None) != (args.stage2 is None):
        raise InputError("--stage1 and --stage2 go together: pass both official checkpoint files")


#: Name endings of the files d2f writes beside a photo: not rendered again from a folder without -o.
OUTPUT_STEM_SUFFIXES = ("_bokeh", "_defocus", "_defocus_color", "_depth", "_depth_color")


def output_settings(args: argparse.Namespace) -> dict[str, bool]:
    """The keywords of :func:`plan_jobs` that the flags set."""
    return {
        "save_defocus": args.save_defocus,
        "save_depth": args.save_depth,
        "overwrite": args.overwrite,
        "skip_existing": args.skip_existing,
    }


def plan_jobs(
    inputs: list[Path],
    output: Path | None,
    *,
    save_defocus: bool,
    overwrite: bool,
    save_depth: bool = False,
    skip_existing: bool = False,
) -> tuple[list[Job], list[Failure], int]:
    """Expand folders, pick each output path and check it.

    Returns the jobs, the failures and how many inputs were skipped because all their outputs exist
    (``skip_existing``). Problems with one input are returned as failures (the others still render); an
    OUTPUT that cannot be what the inputs need raises InputError. ``output`` None writes each result
    beside its photo as ``<stem>_bokeh<ext>``.
    """
    from d2f.io import IMAGE_EXTENSIONS, format_for_path

    sources: list[Path] = []
    failures: list[Failure] = []
    for path in inputs:
        if path.is_dir():
            images = sorted(
                child
                for child in path.iterdir()
                if child.suffix.lower() in IMAGE_EXTENSIONS
                and not child.name.startswith(".")
                and not (output is None and child.stem.endswith(OUTPUT_STEM_SUFFIXES))
                and child.is_file()
            )
            if not images:
                failures.append(Failure(path, f"{path}: folder has no image files", 2))
            sources += images
        elif not path.exists():
            failures.append(Failure(path, f"{path}: no such file or folder", 2))
        else:
            sources.append(path)

    if output is not None:
        _check_output_name(output)
    single_file = output is not None and (
        len(inputs) == 1 and not inputs[0].is_dir() and not output.is_dir() and _names_an_image_file(output)
    )
    if (
        output is not None
        and not single_file
        and not output.is_dir()
        and (output.exists() or _names_an_image_file(output))
    ):
        raise InputError(f"{output}: with several inputs or a folder input, OUTPUT must be a folder")

    jobs: list[Job] = []
    claimed: dict[Path, Path] = {}
    skipped = 0
    for source in sources:
        if output is None:
            target = source.with_name(f"{source.stem}_bokeh{source.suffix}")
        else:
            target = output if single_file else output / source.name

        def beside(suffix: str, wanted: bool, target: Path = target) -> Path | None:
            return target.with_name(f"{target.stem}{suffix}.png") if wanted else None

        job = Job(
            source,
            target,
            beside("_defocus", save_defocus),
            beside("_defocus_color", save_defocus),
            beside("_depth", save_depth),
            beside("_depth_color", save_depth),
        )
        targets = job.targets()
        if skip_existing and all(path.is_file() for path in targets):
            skipped += 1
            continue
        try:
            format_for_path(target)
            for path in targets:
                if path.resolve() == source.resolve():
                    raise InputError(f"{source}: its output {path} would replace the input itself")
                if path.resolve() in claimed:
                    other = claimed[path.resolve()]
                    raise InputError(f"{source}: its output {path} is also the output of {other}")
                if path.is_dir():
                    raise InputError(f"{source}: its output {path} is an existing folder")
                if not overwrite and not skip_existing and path.exists():
                    raise InputError(
                        f"{path}: already exists (use --overwrite to replace it, --skip-existing to keep it)"
                    )
        except InputError as error:
            failures.append(Failure(source, str(error), error.exit_code))
            continue
        claimed.update((path.resolve(), source) for path in targets)
        jobs.append(job)
    return jobs, failures, skipped


def _check_output_name(output: Path) -> None:
    """Refuse an OUTPUT that looks like a file name in a format d2f cannot write (``out.xyz``): it would
    otherwise become a folder of that name. An existing folder is taken as it is."""
    from d2f.io import format_for_path

    if output.suffix and not output.is_dir() and not _names_an_image_file(output):
        try:
            format_for_path(output)
        except InputError as error:
            raise InputError(f"{error}; to render into a folder of that name, create it first") from None


def _names_an_image_file(path: Path) -> bool:
    from PIL import Image

    return path.suffix.lower() in Image.registered_extensions()


def _make_output_folder(folder: Path) -> None:
    from d2f.io import os_error_reason

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"{folder}: cannot create the output folder: {os_error_reason(error)}") from None


def load_model(args: argparse.Namespace) -> torch.nn.Module:
    """The model the flags ask for, checked against ``--background-blur`` and the render options."""
    model = load_weights(args)
    with_depth = getattr(args, "depth", None) is not None
    try:
        model.check_supported(options_from_args(args), with_depth=with_depth)
    except InputError as error:
        raise InputError(f"--{str(error).replace('_', '-')}") from None
    if getattr(args, "save_depth", False) and not model.config.predicts_depth and not with_depth:
        raise InputError(
            "--save-depth: this model predicts defocus, not depth, so there is no depth map to save; "
            "use a model that predicts depth or give a depth map"
        )
    if getattr(args, "background_blur", None) is not None and model.config.blur_scale is None:
        raise InputError(
            "--background-blur: this model predicts D2F defocus itself, not relative to a blur scale "
            "(no bundled model does); use --strength to scale its blur"
        )
    return model


def load_weights(args: argparse.Namespace) -> torch.nn.Module:
    """The model the flags ask for; without any weights flag the bundled default model.

    ``--model`` takes what :func:`d2f.load` takes: a bundled model's name or else a path in d2f's own
    format; a folder that happens to have a model's name is reached as ``./NAME``.
    """
    from d2f.models import load, load_official, load_pretrained
    from d2f.pipeline import default_model

    if args.stage1 is not None:
        return load_official(args.stage1, args.stage2, map_location="cpu")
    if args.weights is not None:
        return load_pretrained(args.weights)
    if args.model is not None:
        try:
            return load(args.model)
        except InputError as error:
            raise InputError(f"--model: {error}") from None
    try:
        return default_model()
    except InputError:
        raise InputError(
            "no model available (this installation of d2f has no bundled model): pass --stage1 PATH "
            "--stage2 PATH for the paper's checkpoints or --weights PATH for d2f's own format"
        ) from None


def _render_all(
    model: torch.nn.Module,
    jobs: list[Job],
    args: argparse.Namespace,
    device: torch.device,
    depth: DepthInput | None = None,
) -> list[Failure]:
    from tqdm import tqdm

    failures: list[Failure] = []
    quiet = len(jobs) <= 1 or getattr(args, "quiet", False)
    progress = tqdm(jobs, desc="d2f render", unit="image", file=sys.stderr, disable=quiet)
    for job in progress:
        try:
            render_job(model, job, args, device, depth)
        except D2FError as error:
            if args.debug:
                raise
            failures.append(Failure(job.source, str(error), error.exit_code))
        except (RuntimeError, OSError, MemoryError) as error:
            if args.debug:
                raise
            failures.append(Failure(job.source, f"{job.source}: rendering failed: {_first_line(error)}", 1))
        else:
            continue
        _report(failures[-1], progress)
    progress.close()
    return failures


def render_job(
    model: torch.nn.Module,
    job: Job,
    args: argparse.Namespace,
    device: torch.device,
    depth: DepthInput | None = None,
) -> None:
    """Render one photo (from ``depth`` where given) and write its files, each reported once; if one
    fails, none stays behind."""
    from d2f.errors import ImageTooLargeError
    from d2f.io import read_image_and_metadata
    from d2f.pipeline import background_blur_scale, matching_depth, predict

    try:
        image, metadata = read_image_and_metadata(job.source, max_megapixels=args.max_megapixels)
    except ImageTooLargeError as error:
        raise ImageTooLargeError(f"{error}; raise the limit with --max-megapixels") from None
    blur_scale = None
    if args.background_blur is not None:
        blur_scale = background_blur_scale(model, tuple(image.shape[-2:]), args.background_blur)
    try:
        output = predict(
            model,
            image.unsqueeze(0),
            options_from_args(args),
            device=device,
            precision=args.precision,
            blur_scale=blur_scale,
            disparity=None if depth is None else matching_depth(depth.disparity, tuple(image.shape[-2:]), 1),
            disparity_range=None if depth is None else depth.disparity_range,
        )
    except InputError as error:  # e.g. a focus point outside this photo: say which photo
        raise InputError(f"{job.source}: {error}") from None
    if job.depth is not None and output.disparity is None:
        raise InputError("--save-depth: this render has no depth map to save")
    _make_output_folder(job.output.parent)  # only now, so that failures leave no empty folders
    written: list[Path] = []
    try:
        for path, write in _writers(job, output, image.shape[-2:], metadata, args):
            if getattr(args, "skip_existing", False) and path.is_file():
                continue
            write(path)
            written.append(path)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    for path in written:
        report_written(args, path)


def _writers(job: Job, output, size, metadata, args: argparse.Namespace) -> list[tuple[Path, object]]:
    """(path, function that writes it) for each file of the job, the bokeh first."""
    import torch.nn.functional as F

    from d2f.io import (
        write_defocus,
        write_defocus_color,
        write_disparity,
        write_disparity_color,
        write_image,
    )

    def at_photo_size(values: torch.Tensor) -> torch.Tensor:
        # Upsampled as the fusion step upsamples the defocus map.
        return F.interpolate(values.float(), size=size, mode="bilinear", align_corners=False)[0].cpu()

    bokeh = output.bokeh[0].float().cpu()
    writers = [
        (job.output, lambda path: write_image(
            path, bokeh, quality=args.quality, overwrite=args.overwrite, metadata=metadata
        )),
    ]
    if job.defocus is not None and job.defocus_color is not None:
        defocus = at_photo_size(output.defocus)
        writers.append((job.defocus, lambda path: write_defocus(path, defocus, overwrite=args.overwrite)))
        writers.append(
            (job.defocus_color, lambda path: write_defocus_color(path, defocus, overwrite=args.overwrite))
        )
    if job.depth is not None and job.depth_color is not None:
        disparity = at_photo_size(output.disparity)
        writers.append((job.depth, lambda path: write_disparity(path, disparity, overwrite=args.overwrite)))
        writers.append(
            (job.depth_color, lambda path: write_disparity_color(path, disparity, overwrite=args.overwrite))
        )
    return writers


def _report(failure: Failure, progress: object | None = None) -> None:
    line = f"d2f render: error: {failure.message}"
    if progress is not None:
        from tqdm import tqdm

        tqdm.write(line, file=sys.stderr)
    else:
        print(line, file=sys.stderr)


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
