"""A training run, end to end: open and audit the data, run the one training loop, export the
model, and write what the run did (RUN/summary.json, summary.md). Rerunning the same call in the
same run folder resumes it.
"""
from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import audit as auditing, io, progress as events
from .config import SMALL_DATASET, RunConfig, config_from_dict, resolve_augment
from .data import (DEFAULT_PRESET, dataset_info, family_choice, open_training_data,
                   resolve_config)
from .errors import ConfigError, GenforgeError
from .evaluation import best_so_far, in_training_evaluator
from .export import export_model
from .families import FAMILIES, ModelSpec
from .modalities import MODALITIES
from .training import distributed
from .training.health import check_same_run, health, recovery
from .training.loop import TrainResult, train as run_loop
from .training.speed import choose_precision, seconds_per_step
from .training.state import CHECKPOINT_NAME, read_checkpoint_meta


def train(data: str | None = None, run: str | Path = "runs/genforge", *,
          preset: str | None = DEFAULT_PRESET, family: str = "auto",
          config: RunConfig | None = None, progress: events.Reporter | None = None,
          should_stop: Callable[[], bool] | None = None, **options: Any) -> dict:
    """Train (or resume, if run already holds a checkpoint) and export the model to run/model.

    Example: genforge.train("fashion-mnist-sample", "runs/demo", minutes=4)
    family "auto" picks the family measured best for the data's content kind. options are any
    training option by its CLI name with underscores (steps, minutes,
    batch_size, resolution, ...). progress receives progress events (genforge.progress.Event);
    should_stop() is asked after every step: True saves a checkpoint and stops, and rerunning
    resumes. Returns the run summary (also written to run/summary.json).
    Under torchrun every process calls this with the same arguments and trains its share of each
    step (training.distributed); rank 0 alone writes files and reports progress.
    """
    if progress is not None:
        with events.reporting(progress):
            return train(data, run, preset=preset, family=family, config=config,
                         should_stop=should_stop, **options)
    here = distributed.world()  # under torchrun: every process runs this; rank 0 writes
    try:
        with distributed.quiet_unless_main(here):
            summary = _train(data, run, preset, family, config, should_stop, here, options)
    except BaseException:
        distributed.finish(here, clean=False)
        raise
    distributed.finish(here)
    return summary


def _micro_batches(run: Path, config: RunConfig, processes: int) -> int:
    """--grad-accum when not given: a resumed run's own (on any number of processes), else the
    preset's shared over the processes (distributed.shared_split)."""
    if (run / CHECKPOINT_NAME).is_file():
        try:
            stored = read_checkpoint_meta(run / CHECKPOINT_NAME)["config"]
            return config_from_dict(stored).train.grad_accum
        except GenforgeError:
            pass  # the loop says what is wrong with the checkpoint
    return distributed.shared_split(config.train.grad_accum, processes)


def _train(data, run, preset, family, config, should_stop, here, options) -> dict:
    started = time.perf_counter()
    if config is None:
        config = resolve_config(data, preset, family, **options)
        if options.get("grad_accum") is None:  # a run keeps its split; a new one shares the batch
            split = _micro_batches(Path(run), config, here.size)
            if split != config.train.grad_accum:
                config = resolve_config(data, preset, family, **{**options, "grad_accum": split})
    run = Path(run)
    check_before_data(config)
    dataset, audit_record = open_training_data(config.data)
    for message in audit_record["warnings"]:
        warnings.warn(message)
    config = resolve_augment(config, len(dataset), dataset.item_shape)
    if len(dataset) < SMALL_DATASET:
        warnings.warn(f"{dataset.source} holds only {len(dataset)} items: a model trained on so few "
                      "is likely to copy them; check with 'genforge evaluate MODEL --data DATA' "
                      "(memorised_share); augmentation (--augment ada for GANs, nonleaking for "
                      "long diffusion runs, symmetry for discrete level models) makes copying "
                      "less likely")
    run.mkdir(parents=True, exist_ok=True)
    if here.main:
        io.write_json(run / "data_report.json", {"source": dataset.source, **dataset.report.to_dict()})
        io.write_json(run / "audit.json", audit_record)
    info = dataset_info(dataset)
    timing = {"setup_s": round(time.perf_counter() - started, 1)}
    # a GAN's generator loss does not settle the way a denoiser's does: no "far above best" check
    judge = lambda state: health(state, single_phase=config.family != "gan")  # noqa: E731

    export = exporter(run, config, info, judge, timing)
    looping = time.perf_counter()
    # rank 0 evaluates (its extractor loaded there alone); the others wait for it
    evaluator = (in_training_evaluator(run, config, dataset) if here.main
                 else (lambda *args: None) if config.train.eval_every else None)
    result = run_loop(run, config, dataset, FAMILIES[config.family], MODALITIES[config.data.kind],
                      on_export=export, on_evaluate=evaluator, should_stop=should_stop)
    timing["training_s"] = round(time.perf_counter() - looping - timing.get("export_s", 0), 1)
    timing["wall_s"] = round(time.perf_counter() - started, 1)
    summary = _summary(result, config, info, dataset.report.summary(), timing["wall_s"])
    summary["timing"] = timing
    summary["precision_choice"] = result.progress.precision
    summary["health"] = judge(result.progress)
    if summary["health"]["status"] != "ok":
        warnings.warn(f"training was unstable: {'; '.join(summary['health']['notes'])}; look at "
                      f"{run / 'samples'} before using the model, and consider a lower --lr")
    summary["family_choice"] = family_choice(config, family)
    summary["audit"] = auditing.short_line(audit_record)
    summary["processes"] = here.size
    if here.main:
        io.write_json(run / "summary.json", summary)
        io.write_text(run / "summary.md", summary_markdown(summary))
    return summary


def exporter(run: Path, config: RunConfig, info: dict, judge: Callable, timing: dict,
             tuned_from: dict | None = None) -> Callable:
    """The loop's on_export hook: RUN/model from the EMA module, timed into timing["export_s"],
    reported as an "export" task."""
    def export(module, spec: ModelSpec, state) -> None:
        exporting = time.perf_counter()
        with events.task("export", total=1, unit="model", model=str(run / "model")) as task:
            export_model(run / "model", module, spec, config, dataset=info,
                         training={"steps": state.step, "images_seen": state.images_seen,
                                   "seconds": round(state.elapsed_s, 1),
                                   "health": judge(state)}, tuned_from=tuned_from)
            task.update(1)
        timing["export_s"] = round(time.perf_counter() - exporting, 1)
    return export


def check_before_data(config: RunConfig) -> None:
    """What training would refuse that costs nothing to know: refused before the data is read
    and before anything is written."""
    t = config.train
    if t.steps is None and t.minutes is None:
        raise ConfigError("no training budget: give --steps N or --minutes M")
    if config.family == "consistency":
        raise ConfigError("consistency models are tuned from a trained diffusion model, not "
                          "trained from scratch: train with --family diffusion, then 'genforge "
                          "distill RUN/model --minutes M'")
    reason = FAMILIES[config.family].supports(MODALITIES[config.data.kind])
    if reason:
        raise ConfigError(f"{reason}: use --family {MODALITIES[config.data.kind].family} "
                          "(or --family auto)")


def preflight(data: str | None = None, run: str | Path = "runs/genforge", *,
              preset: str | None = DEFAULT_PRESET, family: str = "auto",
              config: RunConfig | None = None, measure: bool = True, **options: Any) -> dict:
    """What `train` with these arguments would do, checked as training checks it, without
    writing to the run folder: the data (items, shape, classes, what is skipped or left out), the
    family and why, the run folder (new, or resuming from step N: the settings must match), and
    the budget in steps and minutes at this machine's speed, measured on a few real steps."""
    asked = family
    config = config or resolve_config(data, preset, family, **options)
    check_before_data(config)
    dataset, audit_record = open_training_data(config.data)
    config = resolve_augment(config, len(dataset), dataset.item_shape)
    modality = MODALITIES[config.data.kind]
    spec = ModelSpec.for_dataset(dataset, modality)
    checkpoint = Path(run) / CHECKPOINT_NAME
    state, done = "new run", 0
    if checkpoint.exists():
        meta = read_checkpoint_meta(checkpoint)
        recovered = recovery(Path(run), meta, config)
        check_same_run(meta, config, spec, checkpoint, recovering=recovered is not None)
        done = int(meta["progress"]["step"])
        state = f"resumes from step {done}" + (
            f", recovering from its divergence stop with {'; '.join(recovered['changes'])}"
            if recovered else "")
    t = config.train
    budget: dict[str, Any] = {"steps": t.steps, "minutes": t.minutes, "done": done}
    if measure:
        with events.task("measure", total=None, unit="step"):
            choice = choose_precision(config, dataset, FAMILIES[config.family], modality)
            speed = (seconds_per_step(config, dataset, FAMILIES[config.family], modality,
                                      precision=choice["precision"])
                     if "seconds_per_step" not in choice else  # measured just now: no need again
                     {"seconds_per_step": choice["seconds_per_step"][choice["precision"]],
                      "device": "cpu", "precision": choice["precision"],
                      "measured_steps": choice.get("measured_steps", 3)})
        budget["precision_why"] = choice["why"]
        per_step = speed["seconds_per_step"]
        left = [t.steps - done] if t.steps is not None else []
        if t.minutes is not None:
            left.append(max(0, int(t.minutes * 60 / per_step)) - done)
        budget.update(speed, expected_steps=done + max(0, min(left)),
                      expected_minutes=round(max(0, min(left)) * per_step / 60, 2))
    report = dataset.report
    return {
        "data": {"source": dataset.source, "kind": dataset.kind, "items": len(dataset),
                 "item_shape": list(dataset.item_shape),
                 "classes": dataset.class_names if dataset.labels is not None else [],
                 "found": report.found, "skipped": len(report.skipped),
                 "first_skipped": report.skipped[0] if report.skipped else None,
                 "left_out": audit_record["training"]["left_out"],
                 "warnings": audit_record["warnings"]},
        "family": family_choice(config, asked), "preset": preset, "augment": config.augment.augment,
        "run": {"folder": str(run), "state": state}, "budget": budget, "config": config.to_dict(),
    }


def _summary(result: TrainResult, config: RunConfig, dataset: dict, report: str,
             session_s: float) -> dict:
    p = result.progress
    samples = sorted((result.run_dir / "samples").glob("step-*.png"))
    return {
        "status": result.status, "run": str(result.run_dir), "model": str(result.run_dir / "model"),
        "latest_samples": str(samples[-1]) if samples else None,
        "family": config.family, "preset_hash": config.hash(), "dataset": dataset,
        "data_report": report, "parameters": result.parameters, "device": result.device,
        "precision": result.precision, "steps": p.step, "images_seen": p.images_seen,
        "training_seconds": round(p.elapsed_s, 1), "session_seconds": round(session_s, 1),
        "images_per_second": round(p.images_seen / p.elapsed_s, 1) if p.elapsed_s else None,
        "final_loss": p.last_loss, "best": best_so_far(result.run_dir),
        **({"compile": result.compile} if result.compile else {}),
    }


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def summary_markdown(s: dict) -> str:
    """The run summary as a few lines of Markdown (also written to RUN/summary.md)."""
    d = s["dataset"]
    classes = f", {len(d['class_names'])} classes" if d["class_names"] else ""
    return (f"# genforge run: {s['status']}\n\n"
            f"- data: {d['source']} ({d['items']} items, shape {d['item_shape']}{classes}); {s['data_report']}\n"
            f"- model: {s['family']}, {s['parameters']:,} parameters, trained on {s['device']} ({s['precision']}"
            + (f": {s['precision_choice']['why']}" if s.get("precision_choice") else "") + ")\n"
            f"- training: {s['steps']} steps, {s['images_seen']:,} images in {s['training_seconds']} s"
            f" ({s['images_per_second']} images/s), final loss "
            f"{'none' if s['final_loss'] is None else format(s['final_loss'], '.4g')}\n"
            + (f"- compiled (--compile): the first step took {s['compile']['first_step_s']} s, "
               f"about {s['compile']['compile_s']} s of it compiling; then "
               f"{s['compile']['step_s']} s a step\n" if s.get("compile") else "")
            + (f"- time: {_clock(s['timing']['wall_s'])} wall: setup (data, audit) "
               f"{_clock(s['timing']['setup_s'])}, training with previews "
               f"{_clock(s['timing']['training_s'])}, export {_clock(s['timing'].get('export_s', 0))}\n"
               if s.get("timing") else "")
            + (f"- health: {s['health']['status']}"
               + (f" ({'; '.join(s['health']['notes'])})" if s['health']['notes'] else "") + "\n"
               if s.get("health") else "")
            + (f"- audit: {s['audit']} (see {Path(s['run']) / 'audit.json'})\n" if s.get("audit") else "")
            + f"- exported model: {s['model']}\n- latest sample grid: {s['latest_samples']}\n"
            + (f"- best by {s['best']['metric']}: {s['best']['value']:.5g} at step "
               f"{s['best']['step']} (exported to {Path(s['run']) / 'best'})\n" if s.get("best") else ""))
