"""The one training loop. It runs a family's phases and knows nothing about diffusion or GANs.

It owns: AdamW with warm-up, gradient accumulation and clipping, EMA, optional bf16 autocast,
seeding, the step or time budget, checkpoints (on a cadence and on Ctrl-C/SIGTERM), exact resume,
sample grids, JSONL stats and the progress bar.
"""
from __future__ import annotations

import json
import math
import signal
import time
from collections.abc import Callable
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from .. import io
from ..config import RunConfig, config_from_dict
from ..errors import CheckpointError, ConfigError, GenforgeError
from ..families import Family, ModelSpec
from ..modalities import Dataset, Modality
from .ema import EMA
from .state import (CHECKPOINT_NAME, DataStream, Progress, load_checkpoint, read_checkpoint_meta,
                    save_checkpoint)
from .devices import autocast_dtype, resolve_device


class TrainingDiverged(GenforgeError):
    """The loss became NaN or infinite."""


@dataclass
class TrainResult:
    run_dir: Path
    status: str              # "finished", "interrupted" or "already finished"
    progress: Progress
    device: str
    precision: str
    parameters: int


@contextmanager
def _stop_requests():
    """Turn SIGINT/SIGTERM into a flag checked between steps, so a stop writes a checkpoint first."""
    flag = {"stop": False}

    def handler(signum, frame):
        if flag["stop"]:  # a second Ctrl-C means "now"
            raise KeyboardInterrupt
        flag["stop"] = True

    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[sig] = signal.signal(sig, handler)
        except ValueError:  # not the main thread (e.g. a web worker): no handlers, no flag
            pass
    try:
        yield flag
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _check_same_run(meta: dict, config: RunConfig, spec: ModelSpec, path: Path) -> None:
    """Resuming with options that change the model or the data would silently mix two runs."""
    diffs = config_from_dict(meta["config"]).differences(config)
    if diffs:
        raise CheckpointError(f"{path.parent} holds a run with other settings ({'; '.join(diffs)}); "
                              "rerun with the same options to resume, or choose a new run folder")
    if meta["spec"] != spec.to_dict():
        raise CheckpointError(f"{path.parent} was trained on data of another shape or classes "
                              f"({meta['spec']['item_shape']} vs {list(spec.item_shape)})")


def train(run_dir: Path, config: RunConfig, dataset: Dataset, family: Family, modality: Modality,
          *, on_export: Callable[[torch.nn.Module, ModelSpec, Progress], None] | None = None,
          on_evaluate: Callable[[torch.nn.Module, ModelSpec, Progress], None] | None = None) -> TrainResult:
    """Train (or resume) the run in run_dir until its budget is spent or a stop is requested.

    on_export(ema_module, spec, progress) exports the model at the end; on_evaluate is called
    with the same arguments every train.eval_every steps and at the end (its time is not counted
    against the training budget).
    """
    t = config.train
    if t.steps is None and t.minutes is None:
        raise ConfigError("no training budget: give --steps N or --minutes M")
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(t.device)
    amp_dtype = autocast_dtype(t.precision, device)
    labelled = dataset.labels is not None
    spec = ModelSpec(modality.name, dataset.item_shape, tuple(dataset.class_names) if labelled else ())

    torch.manual_seed(t.seed)  # weights: the same seed gives the same initial network
    model = family.build(spec, config).to(device)
    ema = EMA(model, t.ema_decay)
    phases = family.phases(config)
    optimizers = {p.name: torch.optim.AdamW(p.parameters(model), lr=t.lr * p.lr_scale,
                                            weight_decay=t.weight_decay) for p in phases}
    generator = torch.Generator(device).manual_seed(t.seed + 1)  # training noise
    checkpoint = run_dir / CHECKPOINT_NAME
    progress = Progress()
    if checkpoint.exists():
        _check_same_run(read_checkpoint_meta(checkpoint), config, spec, checkpoint)
        progress = load_checkpoint(checkpoint, model=model, ema=ema.module, optimizers=optimizers,
                                   generator=generator)
    stream = DataStream(len(dataset), t.seed, progress.epoch, progress.offset)
    io.write_json(run_dir / "config.json", config.to_dict())

    def budget_spent() -> bool:
        return ((t.steps is not None and progress.step >= t.steps)
                or (t.minutes is not None and progress.elapsed_s >= t.minutes * 60))

    def write_checkpoint() -> None:
        progress.epoch, progress.offset = stream.epoch, stream.offset
        save_checkpoint(checkpoint, model=model, ema=ema.module, optimizers=optimizers,
                        generator=generator, progress=progress, config=config.to_dict(),
                        spec=spec.to_dict())

    def preview() -> None:
        seeds = list(range(t.preview_count))
        labels = (torch.arange(t.preview_count) % spec.num_classes) if labelled else None
        x = family.sample(ema.module, seeds, labels, item_shape=spec.item_shape, device=device,
                          sigma_min=config.diffusion.sigma_min, sigma_max=config.diffusion.sigma_max)
        image = modality.preview(modality.from_model(x.cpu()),
                                 columns=spec.num_classes if labelled and spec.num_classes <= 16 else None)
        path = run_dir / "samples" / f"step-{progress.step:07d}.png"
        path.parent.mkdir(exist_ok=True)
        io.write_with(path, lambda tmp: image.save(tmp, format="PNG"))

    def evaluate() -> float:
        """Run the evaluation hook on the EMA weights; return the seconds it took."""
        started = time.perf_counter()
        write_checkpoint()  # an evaluation can take minutes: don't risk the steps before it
        on_evaluate(ema.module, spec, progress)
        model.train()
        return time.perf_counter() - started

    parameters = sum(p.numel() for p in model.parameters())
    result = TrainResult(run_dir, "already finished", progress, str(device),
                         str(amp_dtype).replace("torch.", "") if amp_dtype else "fp32", parameters)
    if budget_spent():
        if on_export:
            on_export(ema.module, spec, progress)
        return result

    micro = t.batch_size // t.grad_accum
    stats_file = open(run_dir / "stats.jsonl", "a", encoding="utf-8")
    writer = _tensorboard(run_dir) if t.tensorboard else None
    bar = tqdm(total=t.steps, initial=progress.step, disable=not t.progress, unit="step",
               dynamic_ncols=True, desc="training")
    window_loss, window_n, window_start, window_images = 0.0, 0, time.perf_counter(), 0
    try:
        with _stop_requests() as stop:
            if progress.step == 0:
                preview()
            session_start = time.perf_counter() - progress.elapsed_s
            model.train()
            while not budget_spent():
                lr = t.lr * min(1.0, (progress.step + 1) / max(1, t.warmup_steps))
                for phase in phases:
                    if progress.step % phase.interval:
                        continue
                    optimizer = optimizers[phase.name]
                    for group in optimizer.param_groups:
                        group["lr"] = lr * phase.lr_scale
                    optimizer.zero_grad(set_to_none=True)
                    phase_loss = 0.0
                    for _ in range(t.grad_accum):
                        index = stream.next(micro)
                        images = modality.to_model(dataset.items[index]).to(device)
                        labels = dataset.labels[index].to(device) if labelled else None
                        with (torch.autocast(device.type, amp_dtype) if amp_dtype else nullcontext()):
                            loss = phase.loss(model, images, labels, generator)
                        (loss / t.grad_accum).backward()
                        phase_loss += loss.item() / t.grad_accum  # a sync point, once per micro-batch
                    if not math.isfinite(phase_loss):
                        raise TrainingDiverged(
                            f"the {phase.name} loss became {phase_loss} at step {progress.step}; the "
                            "last checkpoint is kept: lower --lr or raise --warmup-steps and rerun")
                    params = [p for g in optimizer.param_groups for p in g["params"]]
                    if t.grad_clip > 0:
                        torch.nn.utils.clip_grad_norm_(params, t.grad_clip)
                    optimizer.step()
                ema.update(model, progress.step)
                progress.step += 1
                progress.images_seen += t.batch_size
                progress.last_loss = phase_loss
                progress.elapsed_s = time.perf_counter() - session_start
                window_loss, window_n, window_images = window_loss + phase_loss, window_n + 1, window_images + t.batch_size
                bar.update(1)
                if progress.step % t.log_every == 0 or budget_spent():
                    seconds = time.perf_counter() - window_start
                    record = {"step": progress.step, "images_seen": progress.images_seen,
                              "loss": window_loss / window_n, "lr": lr,
                              "images_per_s": window_images / seconds,
                              "elapsed_s": round(progress.elapsed_s, 3)}
                    stats_file.write(json.dumps(record) + "\n")
                    stats_file.flush()
                    if writer:
                        for key in ("loss", "lr", "images_per_s"):
                            writer.add_scalar(key, record[key], progress.step)
                    postfix = {"loss": f"{record['loss']:.4f}", "img/s": f"{record['images_per_s']:.0f}"}
                    if t.minutes is not None:  # tqdm's own ETA only knows step budgets
                        left = max(0.0, t.minutes * 60 - progress.elapsed_s)
                        postfix["time left"] = f"{int(left // 60)}:{int(left % 60):02d}"
                    bar.set_postfix(postfix)
                    window_loss, window_n, window_start, window_images = 0.0, 0, time.perf_counter(), 0
                if progress.step % t.checkpoint_every == 0:
                    write_checkpoint()
                if progress.step % t.sample_every == 0:
                    preview()
                if on_evaluate and t.eval_every and progress.step % t.eval_every == 0:
                    session_start += evaluate()
                if stop["stop"]:
                    result.status = "interrupted"
                    break
            else:
                result.status = "finished"
            write_checkpoint()
            if result.status == "finished" and progress.step % t.sample_every:
                preview()
            if (result.status == "finished" and on_evaluate and t.eval_every
                    and progress.step % t.eval_every):
                evaluate()
    finally:
        bar.close()
        stats_file.close()
        if writer:
            writer.close()
    if on_export:
        on_export(ema.module, spec, progress)
    return result


def _tensorboard(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ConfigError("--tensorboard needs the tensorboard package: pip install tensorboard") from None
    return SummaryWriter(str(run_dir / "tensorboard"))
