"""``d2f synth``: write synthetic scenes with exact ground-truth bokeh to a folder.

Scene ``i`` of seed ``S`` is ``d2f.data.generate_scene([S, i], ...)``, the same as item ``i`` of
``SyntheticBokehDataset(seed=S)``: the same seed gives the same files, with any number of workers.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from d2f.errors import InputError

DESCRIPTION = """\
Generate COUNT synthetic scenes (all-in-focus photo, ground-truth bokeh, defocus, signed CoC, disparity,
in-focus mask, parameters) into OUT: original/ and bokeh/ (8-bit PNG, EBB!'s folder names), defocus/,
coc/, disparity/, focus_mask/ (16-bit PNG) and scene/ (JSON, written last). Each file is written
atomically; existing scenes of the same name are replaced. Textures are procedural plus scikit-image's
photos, or the images of --textures (images with an alpha channel serve as foreground cut-outs).
"""

EPILOG = "exit status: 0 all written; 2 bad arguments or a bad texture folder; 1 a failure while writing."


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "synth",
        parents=[common],
        help="write synthetic training scenes",
        description=DESCRIPTION,
        epilog=EPILOG,
    )
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder (created)")
    parser.add_argument("--count", required=True, type=int, metavar="N", help="number of scenes")
    parser.add_argument("--size", default="512x768", metavar="HxW", help="image size (default: 512x768)")
    parser.add_argument("--seed", default=0, type=int, metavar="S", help="random seed (default: 0)")
    parser.add_argument("--textures", type=Path, metavar="DIR", help="folder of photos and RGBA cut-outs")
    parser.add_argument("--workers", default=1, type=int, metavar="K", help="processes (default: 1)")
    parser.add_argument(
        "--kernel-scale",
        default=1.0,
        type=float,
        metavar="X",
        help="multiply the blur range (default: 1, background blur up to 70 px at half size)",
    )
    parser.add_argument(
        "--companion-focus-probability",
        default=0.0,
        type=float,
        metavar="P",
        help="chance that each other object stands in the focus plane beside the subject (default: 0)",
    )
    parser.add_argument(
        "--subject-support-probability",
        default=0.0,
        type=float,
        metavar="P",
        help="chance that the subject stands on a pole or stem reaching the frame edge (default: 0)",
    )
    parser.add_argument(
        "--device", default="cpu", metavar="{cpu,cuda}", help="where to render (default: cpu)"
    )
    parser.set_defaults(handler=run)


def parse_size(text: str) -> tuple[int, int]:
    """``"HxW"`` as ``(height, width)``; InputError naming the argument otherwise."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if match is None:
        raise InputError(f"--size: expected HEIGHTxWIDTH such as 512x768, got {text!r}")
    height, width = int(match[1]), int(match[2])
    if min(height, width) < 16:
        raise InputError(f"--size: expected both sides >= 16 pixels, got {height}x{width}")
    return height, width


def _check_arguments(args: argparse.Namespace) -> tuple[int, int]:
    size = parse_size(args.size)
    if args.count < 1:
        raise InputError(f"--count: expected a positive number of scenes, got {args.count}")
    if args.seed < 0:
        raise InputError(f"--seed: expected a non-negative integer, got {args.seed}")
    if args.workers < 1:
        raise InputError(f"--workers: expected a positive number of processes, got {args.workers}")
    if not args.kernel_scale >= 0 or args.kernel_scale == float("inf"):
        raise InputError(f"--kernel-scale: expected a finite number >= 0, got {args.kernel_scale}")
    for option in ("companion_focus_probability", "subject_support_probability"):
        value = getattr(args, option)
        if not 0 <= value <= 1:
            raise InputError(f"--{option.replace('_', '-')}: expected a number in [0, 1], got {value}")
    if args.device not in ("cpu", "cuda") and not args.device.startswith("cuda:"):
        raise InputError(f"--device: expected cpu or cuda, got {args.device!r}")
    if args.out.exists() and not args.out.is_dir():
        raise InputError(f"--out: {args.out} exists and is not a folder")
    return size


def _scene_options(args: argparse.Namespace) -> dict:
    """Keyword arguments of :func:`d2f.data.synthetic.generate_scene` set on the command line."""
    return {
        "kernel_scale": args.kernel_scale,
        "companion_focus_probability": args.companion_focus_probability,
        "subject_support_probability": args.subject_support_probability,
        "device": args.device,
    }


def _write_one(index: int, seed: int, size: tuple[int, int], textures, options: dict, out: Path) -> str:
    from d2f.data.synthetic import generate_scene, scene_name, write_scene

    scene = generate_scene([seed, index], size, textures, **options)
    name = scene_name(index)
    write_scene(scene, out, name)
    return name


# A worker process's texture bank, set once by _start_worker so that its image cache lasts.
_worker_textures = None


def _start_worker(threads: int, textures) -> None:
    import torch

    global _worker_textures
    torch.set_num_threads(threads)
    _worker_textures = textures


def _write_in_worker(index: int, seed: int, size: tuple[int, int], options: dict, out: Path) -> str:
    return _write_one(index, seed, size, _worker_textures, options, out)


def run(args: argparse.Namespace) -> int:
    size = _check_arguments(args)
    import torch
    from tqdm import tqdm

    from d2f.data.textures import TextureBank

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("--device: CUDA is not available on this machine")
    textures = TextureBank.from_folder(args.textures) if args.textures is not None else TextureBank.builtin()
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"--out: cannot create {args.out}: {error.strerror or error}") from None
    quiet = True if getattr(args, "quiet", False) else None  # None: a bar only on a terminal
    progress = tqdm(total=args.count, unit="scene", desc="d2f synth", disable=quiet, file=sys.stderr)
    with progress:
        if args.workers == 1:
            for index in range(args.count):
                _write_one(index, args.seed, size, textures, _scene_options(args), args.out)
                progress.update()
        else:
            _run_pool(args, size, textures, progress)
    if not getattr(args, "quiet", False):
        print(f"wrote {args.count} scenes to {args.out}", file=sys.stderr)
    return 0


def _run_pool(args: argparse.Namespace, size: tuple[int, int], textures, progress) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    threads = max(1, (os.cpu_count() or 1) // args.workers)
    # "spawn": each worker starts clean, whatever threads torch has started in this process.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        args.workers, mp_context=context, initializer=_start_worker, initargs=(threads, textures)
    ) as pool:
        futures = [
            pool.submit(_write_in_worker, index, args.seed, size, _scene_options(args), args.out)
            for index in range(args.count)
        ]
        try:
            for future in as_completed(futures):
                future.result()  # re-raises a worker's error here
                progress.update()
        except BaseException:
            for future in futures:
                future.cancel()
            raise
