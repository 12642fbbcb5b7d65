"""The training loop of D2F, in one function: :func:`train`.

One process, or one per GPU under ``torchrun`` (DistributedDataParallel: each process takes its shard of
every epoch, gradients are averaged, rank 0 alone validates, logs and saves). Per step: a batch, the
stage's forward pass (bf16 autocast on CUDA; the renderer stays fp32), the loss, backward, gradient
clipping, AdamW, the warm-up + cosine learning rate, and the EMA of the weights if enabled.

A run directory holds ``config.yaml``, ``metrics.csv``, ``samples/step_<N>.png`` (one sheet per
validation), ``checkpoints/last.pt`` and ``checkpoints/best.pt`` (lowest validation loss), optionally
``tensorboard/``, and at the end ``model/`` (``save_pretrained``: loadable by ``d2f.load`` and
``d2f render --weights``).
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
import yaml
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from d2f.errors import CheckpointError, ConfigError, InputError
from d2f.io import tensor_to_array, write_image
from d2f.metrics import psnr, ssim
from d2f.train.checkpoint import load_checkpoint, restore_rng_states, rng_states, save_checkpoint
from d2f.train.config import OptimConfig, TrainConfig, apply_overrides, config_from_dict
from d2f.train.data import build_datasets, collate, train_loader, val_loader
from d2f.train.depth import depth_metrics, depth_stage_loss
from d2f.train.ema import EMA
from d2f.train.model import build_model, check_init_architecture
from d2f.train.report import MetricsLog, depth_sample_sheet, sample_sheet
from d2f.train.stages import resize, scene_blur_scale, stage_loss, stage_module


@dataclass(frozen=True)
class Process:
    """Where this process stands in a (possibly distributed) run."""

    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def train(config: TrainConfig, out: str | Path, *, resume: bool = False, progress: bool = True) -> Path:
    """Train one stage as ``config`` says, writing the run to ``out``; returns the exported model's folder.

    ``resume=True`` continues the run in ``out`` from ``checkpoints/last.pt`` exactly (weights, optimiser,
    schedule, data order, EMA, generators), with ``config`` as given (normally the checkpoint's own, see
    :func:`resume_config`). Under ``torchrun`` every process calls this and the processes train together.
    """
    out = Path(out)
    checkpoint_path = out / "checkpoints" / "last.pt"
    check_init_architecture(config.model)
    if resume and not checkpoint_path.is_file():
        raise InputError(f"{out}: no checkpoint to resume from ({checkpoint_path} is missing)")
    if not resume and checkpoint_path.exists():
        raise InputError(f"{out}: already holds a run ({checkpoint_path}); pass --resume or another --out")
    process = _start_process(config.run.device)
    try:
        return _train(config, out, process, resume=resume, progress=progress)
    finally:
        if process.world_size > 1:
            dist.destroy_process_group()


def resume_config(out: str | Path, overrides: Sequence[str] = ()) -> TrainConfig:
    """The config stored in ``out``'s last checkpoint, with ``key=value`` overrides applied."""
    state = load_checkpoint(Path(out) / "checkpoints" / "last.pt")
    return config_from_dict(apply_overrides(state["config"], overrides))


def _train(config: TrainConfig, out: Path, process: Process, *, resume: bool, progress: bool) -> Path:
    run, device = config.run, process.device
    precision = _autocast(run.precision, device)
    torch.manual_seed(config.seed)  # the same initial weights in every process
    train_set, val_set = build_datasets(config.data)
    model = build_model(config.model).to(device)
    stage = stage_module(config.stage, model, batchnorm_frozen=config.model.freeze_batchnorm).train()
    trainable = [parameter for parameter in stage.parameters() if parameter.requires_grad]
    optimizer = _optimizer(trainable, config.optim)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_factor(config.optim, run.steps))
    step, best_val_loss, state = 0, math.inf, None
    if resume:
        state = _load_training_state(out / "checkpoints" / "last.pt", model, optimizer, schedule)
        step, best_val_loss = state["step"], state["best_val_loss"]
    ema = EMA(model, run.ema_decay) if run.ema_decay is not None else None
    if ema is not None and state is not None and "ema" in state:
        ema.load_state_dict(state["ema"])
    # Validation, samples and the exported model use the EMA weights when there are some.
    evaluated = stage_module(config.stage, ema.model) if ema is not None else stage
    network = stage
    if process.world_size > 1:
        # Some parameters never receive gradients (the coarsest decoder block's first residual unit has
        # no second input to refine); static_graph would not find the tensors in a StageOutput.
        device_ids = [device.index] if device.type == "cuda" else None
        network = DistributedDataParallel(stage, device_ids=device_ids, find_unused_parameters=True)
    batches = iter(
        train_loader(
            train_set,
            config.data,
            run.batch_size,
            seed=config.seed,
            rank=process.rank,
            world_size=process.world_size,
            start_step=step,
            pin_memory=device.type == "cuda",
        )
    )
    log = None
    if process.is_main:
        for folder in ("checkpoints", "samples"):
            (out / folder).mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
        log = MetricsLog(out, resume_step=step, tensorboard=run.tensorboard)
    bar = tqdm(
        total=run.steps,
        initial=step,
        desc=f"stage {config.stage}",
        unit="step",
        disable=not (progress and process.is_main),
        dynamic_ncols=True,
    )
    if step == 0 and process.is_main:  # where the run starts from: the reference for every later row
        log.write(
            0, {"lr": schedule.get_last_lr()[0], **_validate(config, evaluated, val_set, precision, device)}
        )
        stage.train()
    window_loss, window_steps, window_start = 0.0, 0, time.perf_counter()
    session_start = window_start
    while step < run.steps:
        batch = {key: value.to(device, non_blocking=True) for key, value in next(batches).items()}
        loss, _ = _batch_loss(config, network, model, batch, precision)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.optim.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(trainable, config.optim.grad_clip)
        optimizer.step()
        schedule.step()
        if ema is not None:
            ema.update(model)
        step += 1
        window_loss, window_steps = window_loss + loss.detach(), window_steps + 1  # no sync per step
        bar.update(1)

        out_of_time = _out_of_time(run.time_limit, session_start, process)
        validate = step % run.val_every == 0 or step == run.steps or out_of_time
        if not (validate or step % run.log_every == 0):
            continue
        seconds = time.perf_counter() - window_start
        values = {
            "lr": schedule.get_last_lr()[0],
            "train_loss": _mean_over_processes(float(window_loss) / window_steps, process),
            "images_per_second": window_steps * run.batch_size * process.world_size / seconds,
        }
        bar.set_postfix(loss=f"{values['train_loss']:.4f}", img_s=f"{values['images_per_second']:.1f}")
        if validate and process.is_main:
            values.update(_validate(config, evaluated, val_set, precision, device))
            stage.train()  # back to training mode (with frozen parts frozen) after evaluating
            if run.sample_count > 0:
                sheet = _sample_sheet(config, evaluated, val_set, precision, device)
                write_image(out / "samples" / f"step_{step:06d}.png", sheet, overwrite=True)
                stage.train()
            state = {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": schedule.state_dict(),
                "step": step,
                "config": config.to_dict(),
                "rng": rng_states(),
                "best_val_loss": min(best_val_loss, values["val_loss"]),
                **({"ema": ema.state_dict()} if ema is not None else {}),
            }
            save_checkpoint(out / "checkpoints" / "last.pt", state)
            if values["val_loss"] < best_val_loss:
                best_val_loss = values["val_loss"]
                save_checkpoint(out / "checkpoints" / "best.pt", state)
        if validate and process.world_size > 1:
            dist.barrier()  # the other processes wait while rank 0 validates and saves
        if log is not None:
            log.write(step, values)
        window_loss, window_steps, window_start = 0.0, 0, time.perf_counter()
        if out_of_time:
            break
    bar.close()
    exported = out / "model"
    if process.is_main:
        log.close()
        (ema.model if ema is not None else model).save_pretrained(exported)
    if process.world_size > 1:
        dist.barrier()
    return exported


def _batch_loss(config: TrainConfig, network, model, batch: dict, precision) -> tuple[torch.Tensor, object]:
    """The stage's forward pass (under ``precision``) and total loss on one batch: (loss, output)."""
    with precision:
        if config.stage == "depth":
            output = network(batch["image"])
        else:
            output = network(batch["image"], batch["bokeh"], scene_blur_scale(model, batch))
    if config.stage == "depth":
        loss, _ = depth_stage_loss(config.loss, output, batch["disparity"], batch.get("focus_mask"))
    else:
        loss, _ = stage_loss(config.loss, output, batch.get("defocus"), batch.get("focus_mask"))
    return loss, output


def _out_of_time(limit: float | None, start: float, process: Process) -> bool:
    """Whether ``limit`` seconds have passed since ``start`` (in any process: they all stop together)."""
    if limit is None:
        return False
    late = time.perf_counter() - start >= limit
    if process.world_size > 1:
        flag = torch.tensor([float(late)], device=process.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        late = bool(flag.item())
    return late


def _load_training_state(path: Path, model, optimizer, schedule) -> dict:
    """Restore weights, optimiser, schedule and generators from a checkpoint; returns the checkpoint."""
    state = load_checkpoint(path)
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["scheduler"])
    except (RuntimeError, ValueError, KeyError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"{path}: does not fit this run's model or optimiser ({first_line})") from None
    restore_rng_states(state["rng"])
    return state


@torch.no_grad()
def _validate(config: TrainConfig, stage, dataset, precision, device: torch.device) -> dict[str, float]:
    """Mean validation loss, and PSNR / SSIM of the 8-bit predictions (stage 1: at half resolution);
    for the depth stage, the depth metrics instead (see :func:`_validate_depth`)."""
    if config.stage == "depth":
        return _validate_depth(config, stage, dataset, precision, device)
    stage.eval()
    total_loss, count, psnrs, ssims = 0.0, 0, [], []
    for batch in val_loader(dataset, config.data, config.run.batch_size):
        batch = {key: value.to(device) for key, value in batch.items()}
        with precision:
            output = stage(batch["image"], batch["bokeh"], scene_blur_scale(stage.model, batch))
        loss, _ = stage_loss(config.loss, output, batch.get("defocus"), batch.get("focus_mask"))
        total_loss, count = total_loss + float(loss) * len(batch["image"]), count + len(batch["image"])
        for prediction, target in zip(output.prediction, output.target, strict=True):
            prediction, target = tensor_to_array(prediction), tensor_to_array(target)
            psnrs.append(min(psnr(prediction, target), 100.0))  # equal images would make the mean inf
            if min(prediction.shape[:2]) >= 7:
                ssims.append(ssim(prediction, target))
    return {
        "val_loss": total_loss / count,
        "val_psnr": sum(psnrs) / len(psnrs),
        "val_ssim": sum(ssims) / len(ssims) if ssims else math.nan,
    }


@torch.no_grad()
def _validate_depth(config: TrainConfig, stage, dataset, precision, device: torch.device) -> dict[str, float]:
    """Mean loss, and the means over images of AbsRel, delta < 1.25 and Spearman's correlation of the
    predicted disparity, upsampled to each image's size (:func:`d2f.train.depth.depth_metrics`)."""
    stage.eval()
    total_loss, count, metrics = 0.0, 0, {"absrel": [], "delta1": [], "spearman": []}
    for batch in val_loader(dataset, config.data, config.run.batch_size):
        batch = {key: value.to(device) for key, value in batch.items()}
        loss, output = _batch_loss(config, stage, stage.model, batch, precision)
        total_loss, count = total_loss + float(loss) * len(batch["image"]), count + len(batch["image"])
        disparity = resize(output.disparity, tuple(batch["disparity"].shape[-2:]))
        for name, values in depth_metrics(disparity, batch["disparity"].float()).items():
            metrics[name].extend(values.tolist())
    return {"val_loss": total_loss / count, **{f"val_{name}": sum(v) / len(v) for name, v in metrics.items()}}


@torch.no_grad()
def _sample_sheet(config: TrainConfig, stage, dataset, precision, device: torch.device):
    """The first validation images as a sheet: input | defocus | stage-1 bokeh | [output |] ground truth
    (depth stage: input | predicted disparity | true disparity | focus map)."""
    count = min(config.run.sample_count, len(dataset))
    batch = {
        key: value.to(device) for key, value in collate([dataset[index] for index in range(count)]).items()
    }
    stage.eval()
    if config.stage == "depth":
        with precision:
            output = stage(batch["image"])
        focus = torch.softmax(output.focus_logits.flatten(1), dim=1).reshape(output.focus_logits.shape)
        return depth_sample_sheet(batch["image"], output.disparity, batch["disparity"], focus)
    with precision:
        output = stage(batch["image"], batch["bokeh"], scene_blur_scale(stage.model, batch))
    fused = output.prediction if config.stage == 2 else None
    return sample_sheet(batch["image"], output.defocus, output.bokeh_small, batch["bokeh"], fused)


def _optimizer(parameters: list[torch.nn.Parameter], config: OptimConfig) -> torch.optim.AdamW:
    """AdamW; weight decay on convolution kernels only (not biases or normalisation weights)."""
    decayed = [parameter for parameter in parameters if parameter.dim() >= 2]
    others = [parameter for parameter in parameters if parameter.dim() < 2]
    groups = [
        {"params": decayed, "weight_decay": config.weight_decay},
        {"params": others, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas)


def _lr_factor(config: OptimConfig, total_steps: int):
    """Multiplier of the base learning rate at each step: linear warm-up, then cosine to ``min_lr_ratio``."""
    warmup = config.warmup_steps

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        return config.min_lr_ratio + (1 - config.min_lr_ratio) * cosine

    return factor


def _autocast(precision: str, device: torch.device):
    """bf16 autocast for the networks on CUDA ('auto' or 'bf16'); full precision on the CPU."""
    if precision == "bf16" and device.type != "cuda":
        raise ConfigError("config key run.precision: bf16 autocast needs CUDA; use fp32 or auto on the CPU")
    if device.type == "cuda" and precision in ("auto", "bf16"):
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _start_process(device_name: str) -> Process:
    """Join the process group under torchrun (NCCL on CUDA, gloo on the CPU); pick the device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device_name.startswith("cuda") or (device_name == "auto" and torch.cuda.is_available())
    if use_cuda and not torch.cuda.is_available():
        raise ConfigError("config key run.device: cuda was requested but CUDA is not available")
    if not use_cuda:
        device = torch.device("cpu")
    elif world_size > 1:
        device = torch.device("cuda", local_rank)  # one GPU per process
    else:
        device = torch.device("cuda" if device_name == "auto" else device_name)
    if device.type == "cuda" and device.index is not None:
        torch.cuda.set_device(device)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return Process(rank=rank, world_size=world_size, device=device)


def _mean_over_processes(value: float, process: Process) -> float:
    if process.world_size == 1:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=process.device)
    dist.all_reduce(tensor)
    return float(tensor) / process.world_size


__all__ = ["resume_config", "train"]
