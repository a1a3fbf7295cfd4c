"""The one training loop. It runs a family's phases and knows nothing about diffusion or GANs.

It owns: AdamW with warm-up, gradient accumulation and clipping, EMA, optional bf16 autocast,
seeding, the step or time budget, checkpoints (on a cadence, and on a stop request: Ctrl-C,
SIGTERM or the caller's `should_stop`), exact resume, sample grids, JSONL stats and progress
events (genforge.progress: step, total, loss, images/s, ETA, the newest preview), and training
on several processes under torchrun (training.distributed): every process trains its share of
each step; rank 0 alone writes, previews, evaluates and exports.
"""
from __future__ import annotations

import json
import math
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from .. import io, progress as events
from ..config import RunConfig
from ..errors import ConfigError
from ..families import Family, ModelSpec, check_size
from ..modalities import Dataset, Modality
from . import distributed as dist
from .compiling import CompileClock, check_compiler, compiled_view
from .devices import adamw, autocast, resolve_device
from .ema import EMA
from .health import (DIVERGED, MAX_ROLLBACKS, ROLLBACK_LR_FACTOR, LossWatch, TrainingDiverged,
                     check_same_run, mark_diverged, recovery)
from .session import loss_fields, stop_requests, tensorboard
from .speed import choose_precision, in_layout
from .state import (CHECKPOINT_NAME, DataStream, Progress, load_checkpoint, read_checkpoint_meta,
                    save_checkpoint)


def lr_factor(t, step: int, done: float) -> float:
    """The learning rate's multiplier: linear warm-up over t.warmup_steps, then constant or a
    cosine decay to zero at the end of the budget (done: its share spent, by steps or minutes)."""
    warm = min(1.0, (step + 1) / max(1, t.warmup_steps))
    if t.lr_schedule == "cosine":
        return warm * 0.5 * (1 + math.cos(math.pi * done))
    return warm


@dataclass
class TrainResult:
    run_dir: Path
    status: str              # "finished", "interrupted" or "already finished"
    progress: Progress
    device: str
    precision: str
    parameters: int
    compile: dict | None = None  # --compile: this session's compilation and step times


def train(run_dir: Path, config: RunConfig, dataset: Dataset, family: Family, modality: Modality,
          *, on_export: Callable[[torch.nn.Module, ModelSpec, Progress], None] | None = None,
          on_evaluate: Callable[[torch.nn.Module, ModelSpec, Progress], None] | None = None,
          should_stop: Callable[[], bool] | None = None) -> TrainResult:
    """Train (or resume) the run in run_dir until its budget is spent or a stop is requested.

    config's augmentation must be resolved (config.resolve_augment): the caller knows the data.
    on_export(ema_module, spec, progress) exports the model at the end; on_evaluate is called
    with the same arguments every train.eval_every steps and at the end (its time is not counted
    against the training budget). should_stop() is asked after every step; True saves a
    checkpoint and returns with status "interrupted", as Ctrl-C and SIGTERM do.
    """
    t = config.train
    if t.steps is None and t.minutes is None:
        raise ConfigError("no training budget: give --steps N or --minutes M")
    if config.augment.augment == "auto":
        raise ValueError("resolve --augment auto for the dataset first (config.resolve_augment)")
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    here = dist.world()
    dist.check_split(t.grad_accum, here.size)
    device = here.device(resolve_device(t.device))
    if here.size > 1:
        events.note("train", here.describe(device), rank=here.rank, process_start=True)
    labelled = dataset.labels is not None
    modality = modality.bind(dataset.vocabulary)
    spec = ModelSpec.for_dataset(dataset, modality)

    torch.manual_seed(t.seed)  # weights: the same seed gives the same initial network
    check_size(family, spec, config)  # refused before anything is allocated
    model = family.build(spec, config).to(device)
    dist.wait_for_rank0(here)  # reading and auditing the data may take longer on some
    dist.broadcast_module(model, here)  # rank 0's initial weights everywhere, whatever happened
    ema = EMA(family.exported(model), t.ema_decay)
    phases = family.phases(config, spec)
    trained = {phase.name: phase.parameters(model) for phase in phases}
    optimizers: dict[str, torch.optim.Optimizer] = {}
    for phase in phases:
        if phase.optimizer_name not in optimizers:
            optimizers[phase.optimizer_name] = adamw(
                trained[phase.name], device, lr=t.lr * phase.lr_scale, betas=phase.betas,
                weight_decay=t.weight_decay)
    generator = torch.Generator(device).manual_seed(t.seed + 1)  # reseeded per micro-batch
    checkpoint = run_dir / CHECKPOINT_NAME
    progress = Progress()
    resuming = checkpoint.exists()
    dist.wait_for_rank0(here)  # every process has looked before rank 0 writes one
    if resuming:
        meta = read_checkpoint_meta(checkpoint)
        recovered = recovery(run_dir, meta, config)
        check_same_run(meta, config, spec, checkpoint, recovering=recovered is not None)
        progress = load_checkpoint(checkpoint, model=model, ema=ema.module, optimizers=optimizers,
                                   generator=generator)
        dist.wait_for_rank0(here)  # every process has read what rank 0 may now change
        if recovered:  # a deliberate rerun after a divergence stop: recorded, and fresh chances
            progress.recoveries.append({**recovered, "rollbacks_before": progress.rollbacks})
            progress.rollbacks, progress.lr_scale = 0, 1.0
            if here.main:
                (run_dir / DIVERGED).unlink()
            events.note("train", f"recovering {run_dir} from its divergence stop at step "
                        f"{recovered['after_step']} with {'; '.join(recovered['changes'])}",
                        step=progress.step)
        saved = checkpoint.stat().st_mtime
        events.note("train", f"resuming {run_dir} from step {progress.step} (saved "
                    f"{time.strftime('%H:%M', time.localtime(saved))}, "
                    f"{max(0.0, time.time() - saved) / 60:.0f} minutes ago)",
                    step=progress.step, saved=saved)
    stream = dist.ShardedStream(DataStream(len(dataset), t.seed, progress.epoch, progress.offset),
                                t.batch_size, t.grad_accum, here)
    if here.main:
        io.write_json(run_dir / "config.json", config.to_dict())

    preview_s = 0.0  # the last preview's duration: the final one is kept inside --minutes too

    def budget_spent() -> bool:
        """Steps or minutes used up; a time budget trains at least one step (a model, however
        short the budget), and keeps room for the final preview."""
        return ((t.steps is not None and progress.step >= t.steps)
                or (t.minutes is not None and progress.step > 0
                    and progress.elapsed_s + preview_s >= t.minutes * 60))

    def budget_done() -> float:
        """Share of the budget spent, 0..1 (the larger of steps and minutes when both are set)."""
        shares = [progress.step / t.steps if t.steps else 0.0,
                  progress.elapsed_s / (t.minutes * 60) if t.minutes else 0.0]
        return min(1.0, max(shares))

    def eta() -> float | None:
        """Training seconds left: the time budget's rest, or the step budget at the recent pace."""
        left = [t.minutes * 60 - progress.elapsed_s] if t.minutes is not None else []
        if t.steps is not None and progress.step:
            left.append((t.steps - progress.step) * progress.elapsed_s / progress.step)
        return max(0.0, min(left)) if left else None

    last_saved = time.perf_counter()

    def write_checkpoint() -> None:
        nonlocal last_saved
        progress.epoch, progress.offset = stream.stream.epoch, stream.stream.offset
        if not here.main:
            return
        save_checkpoint(checkpoint, model=model, ema=ema.module, optimizers=optimizers,
                        generator=generator, progress=progress, config=config.to_dict(),
                        spec=spec.to_dict())
        last_saved = time.perf_counter()

    def checkpoint_due() -> bool:
        """Every checkpoint_every steps, and after checkpoint_minutes of wall time, so a
        kill -9 loses at most that much work however fast or slow the steps are."""
        return (progress.step % t.checkpoint_every == 0
                or time.perf_counter() - last_saved >= t.checkpoint_minutes * 60)

    def preview() -> None:
        nonlocal preview_s
        if not here.main:
            return
        started = time.perf_counter()
        seeds = list(range(t.preview_count))
        labels = (torch.arange(t.preview_count) % spec.num_classes) if labelled else None
        x = family.sample(ema.module, seeds, labels, item_shape=spec.model_shape, device=device,
                          config=config, spec=spec)
        image = modality.preview(modality.from_model(x.cpu()),
                                 columns=spec.num_classes if labelled and spec.num_classes <= 16 else None)
        path = run_dir / "samples" / f"step-{progress.step:07d}.png"
        path.parent.mkdir(exist_ok=True)
        io.write_with(path, lambda tmp: image.save(tmp, format="PNG"))
        preview_s = time.perf_counter() - started
        bar.update(progress.step, force=True, preview=str(path))

    def evaluate() -> float:
        """Run the evaluation hook on the EMA weights; return the seconds it took."""
        started = time.perf_counter()
        write_checkpoint()  # an evaluation can take minutes: don't risk the steps before it
        if here.main:
            on_evaluate(ema.module, spec, progress)
        model.train()
        return time.perf_counter() - started

    if progress.precision is None or t.precision != "auto":  # a resumed run keeps its choice
        # measured on rank 0 alone: every process must train in the same precision
        progress.precision = dist.broadcast_object(
            choose_precision(config, dataset, family, modality) if here.main else None, here)
    amp_dtype = torch.bfloat16 if progress.precision["precision"] == "bf16" else None
    layout = progress.precision.get("layout")  # measured with the precision, else the kind's
    parameters = sum(p.numel() for p in model.parameters())
    result = TrainResult(run_dir, "already finished", progress, str(device),
                         "bfloat16" if amp_dtype else "fp32", parameters)
    if budget_spent():
        if on_export and here.main:
            on_export(ema.module, spec, progress)
        return result

    watch = LossWatch()
    # what the losses call: the model, or (--compile) compiled networks sharing its parameters
    if t.compile:
        check_compiler(device)
    forward = compiled_view(model) if t.compile else model
    clock = CompileClock() if t.compile else None

    def train_step(lr: float) -> tuple[dict[str, float], str | None]:
        """Run each due phase once; return the phase losses, or a reason to roll back."""
        losses = {}
        for number, phase in enumerate(phases):
            if progress.step % phase.interval:
                continue
            # Only this phase's parameters collect gradients (a GAN's G step leaves D's alone).
            wanted = {id(p) for p in trained[phase.name]}
            for p in model.parameters():
                p.requires_grad_(id(p) in wanted)
            optimizer = optimizers[phase.optimizer_name]
            for group in optimizer.param_groups:
                group["lr"] = lr * phase.lr_scale
            optimizer.zero_grad(set_to_none=True)
            phase_loss = 0.0
            for k, index in stream.next_step():  # this process's micro-batches of the step
                # noise (and dropout) of micro-batch k: the same whichever process computes it
                seed = dist.noise_seed(t.seed, progress.step, number, k)
                generator.manual_seed(seed)
                torch.manual_seed(seed + 1)
                images = _to_device(in_layout(modality.to_model(dataset.items[index]), layout),
                                    device)
                labels = _to_device(dataset.labels[index], device) if labelled else None
                with autocast(progress.precision["precision"], device):
                    loss = phase.loss(forward, images, labels, generator)
                (loss / t.grad_accum).backward()
                phase_loss += loss.item() / t.grad_accum  # a sync point, once per micro-batch
            # one all-reduce per phase, after its micro-batches: none during accumulation
            phase_loss = dist.sum_gradients(trained[phase.name], phase_loss, here)
            if phase.gather is not None:  # statistics every process saw, summed (ADA's)
                phase.gather(model, lambda x: dist.sum_tensor(x, here))
            problem = watch.problem(phase.name, phase_loss)
            if t.grad_clip > 0 and problem is None:
                norm = torch.nn.utils.clip_grad_norm_(trained[phase.name], t.grad_clip)
                if not torch.isfinite(norm):
                    problem = f"the {phase.name} gradient norm became {norm.item()}"
            if problem:
                return losses, problem
            optimizer.step()
            losses[phase.name] = phase_loss
        return losses, None

    def roll_back(problem: str) -> None:
        """Restore the last checkpoint and lower the learning rate, or give up with an error.
        Every process finds the same problem (the losses and gradients are summed over all)."""
        if progress.rollbacks >= MAX_ROLLBACKS:
            message = (f"{problem} at step {progress.step} after {progress.rollbacks} rollbacks "
                       "with a lower learning rate; the last good checkpoint is kept: lower --lr "
                       "or raise --warmup-steps and rerun in the same folder (it continues from "
                       "there, and the recovery is recorded)")
            if here.main:
                mark_diverged(run_dir, progress.step, progress.rollbacks, message)
            raise TrainingDiverged(message)
        failed_at, spent = progress.step, progress.elapsed_s
        restored = load_checkpoint(checkpoint, model=model, ema=ema.module,
                                   optimizers=optimizers, generator=generator)
        restored.rollbacks, restored.lr_scale = progress.rollbacks + 1, progress.lr_scale * ROLLBACK_LR_FACTOR
        restored.elapsed_s = spent  # the time was spent all the same
        vars(progress).update(vars(restored))
        stream.stream = DataStream(len(dataset), t.seed, progress.epoch, progress.offset)
        message = (f"{problem} at step {failed_at}; rolled back to the checkpoint at step "
                   f"{progress.step} and lowered the learning rate to {t.lr * progress.lr_scale:.3g} "
                   f"(rollback {progress.rollbacks} of at most {MAX_ROLLBACKS})")
        warnings.warn(message, stacklevel=2)
        stats_file.write(json.dumps({"step": progress.step, "event": "rollback",
                                     "message": message}) + "\n")
        stats_file.flush()
        write_checkpoint()  # the lower learning rate must survive a stop
        dist.wait_for_rank0(here)

    # rank 0 logs; the others' lines go nowhere (and their progress events are muted by the caller)
    stats_file = open(run_dir / "stats.jsonl" if here.main else os.devnull, "a", encoding="utf-8")
    writer = tensorboard(run_dir) if t.tensorboard and here.main else None
    bar = events.task("train", total=t.steps, unit="step", run=str(run_dir))
    bar.done = progress.step  # a resumed run continues from its step
    window: dict[str, list[float]] = {}
    window_start, window_images = time.perf_counter(), 0
    try:
        with bar, stop_requests() as stop:
            # the budget's clock starts here: previews count against --minutes
            session_start = time.perf_counter() - progress.elapsed_s
            if progress.step == 0:
                preview()
            if not resuming:
                write_checkpoint()  # something to roll back to from the first step
            (preview_s,) = dist.rank0_decisions([preview_s], here, slow=True)
            model.train()
            while not budget_spent():
                lr = t.lr * progress.lr_scale * lr_factor(t, progress.step, budget_done())
                if clock:
                    clock.start()
                losses, problem = train_step(lr)
                if clock:
                    clock.stop()
                if problem:
                    (progress.elapsed_s,) = dist.rank0_decisions(
                        [time.perf_counter() - session_start], here)
                    roll_back(problem)
                    continue
                if here.main:  # the others' EMA is never used
                    ema.update(family.exported(model), progress.step)
                progress.step += 1
                progress.images_seen += t.batch_size
                progress.last_loss = losses.get(phases[0].name, progress.last_loss)
                progress.elapsed_s = time.perf_counter() - session_start
                for name, value in losses.items():
                    window.setdefault(name, []).append(value)
                window_images += t.batch_size
                bar.update(progress.step, eta_s=eta(), loss=progress.last_loss, lr=lr)
                if progress.step % t.log_every == 0 or budget_spent():
                    seconds = time.perf_counter() - window_start
                    record = {"step": progress.step, "images_seen": progress.images_seen,
                              **loss_fields(window, phases), "lr": lr,
                              "images_per_s": window_images / seconds,
                              "elapsed_s": round(progress.elapsed_s, 3), **family.stats(model)}
                    stats_file.write(json.dumps(record) + "\n")
                    stats_file.flush()
                    if writer:
                        for key, value in record.items():
                            if key not in ("step", "images_seen", "elapsed_s"):
                                writer.add_scalar(key, value, progress.step)
                    if "loss" in record:
                        progress.window_loss = record["loss"]
                        progress.best_loss = min(progress.best_loss or math.inf, record["loss"])
                    bar.update(progress.step, images_per_s=round(record["images_per_s"], 1),
                               training_s=round(progress.elapsed_s, 1),
                               **{k: v for k, v in record.items() if k.startswith("loss")})
                    window, window_start, window_images = {}, time.perf_counter(), 0
                # rank 0's clock, and a stop request from any process: all decide alike
                asked = stop["stop"] or (should_stop is not None and should_stop())
                progress.elapsed_s, due, asked = dist.rank0_decisions(
                    [progress.elapsed_s, checkpoint_due()], here, asked=asked)
                evaluating = on_evaluate and t.eval_every and progress.step % t.eval_every == 0
                if due:
                    write_checkpoint()
                if progress.step % t.sample_every == 0:
                    preview()
                if evaluating:
                    session_start += evaluate()
                if due or evaluating or progress.step % t.sample_every == 0:
                    (preview_s,) = dist.rank0_decisions([preview_s], here, slow=True)
                if asked:
                    result.status = "interrupted"
                    break
            else:
                result.status = "finished"
            if result.status == "finished" and progress.step % t.sample_every:
                preview()  # inside the budget: its time was kept free (budget_spent)
                progress.elapsed_s = time.perf_counter() - session_start
            write_checkpoint()
            if (result.status == "finished" and on_evaluate and t.eval_every
                    and progress.step % t.eval_every):
                evaluate()
            bar.info["status"] = result.status
    finally:
        stats_file.close()
        if writer:
            writer.close()
    if clock:
        result.compile = clock.record()
    if on_export and here.main:
        on_export(ema.module, spec, progress)
    return result



def _to_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A batch on the training device; to a GPU from pinned memory, without waiting for the copy."""
    if device.type == "cuda":
        return x.pin_memory().to(device, non_blocking=True)
    return x.to(device)
