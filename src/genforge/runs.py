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
from .config import SMALL_DATASET, RunConfig, resolve_augment
from .data import DEFAULT_PRESET, dataset_info, open_training_data, resolve_config
from .evaluation import best_so_far, in_training_evaluator
from .export import export_model
from .families import FAMILIES, ModelSpec
from .modalities import MODALITIES
from .training.loop import TrainResult, train as run_loop


def train(data: str | None = None, run: str | Path = "runs/genforge", *,
          preset: str | None = DEFAULT_PRESET, family: str = "diffusion",
          config: RunConfig | None = None, progress: events.Reporter | None = None,
          should_stop: Callable[[], bool] | None = None, **options: Any) -> dict:
    """Train (or resume, if run already holds a checkpoint) and export the model to run/model.

    Example: genforge.train("fashion-mnist-sample", "runs/demo", minutes=4)
    options are any training option by its CLI name with underscores (steps, minutes,
    batch_size, resolution, ...). progress receives progress events (genforge.progress.Event);
    should_stop() is asked after every step: True saves a checkpoint and stops, and rerunning
    resumes. Returns the run summary (also written to run/summary.json).
    """
    if progress is not None:
        with events.reporting(progress):
            return train(data, run, preset=preset, family=family, config=config,
                         should_stop=should_stop, **options)
    config = config or resolve_config(data, preset, family, **options)
    run = Path(run)
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
    io.write_json(run / "data_report.json", {"source": dataset.source, **dataset.report.to_dict()})
    io.write_json(run / "audit.json", audit_record)
    info = dataset_info(dataset)

    def export(module, spec: ModelSpec, state) -> None:
        with events.task("export", total=1, unit="model", model=str(run / "model")) as task:
            export_model(run / "model", module, spec, config, dataset=info,
                         training={"steps": state.step, "images_seen": state.images_seen,
                                   "seconds": round(state.elapsed_s, 1)})
            task.update(1)

    started = time.perf_counter()
    result = run_loop(run, config, dataset, FAMILIES[config.family], MODALITIES[config.data.kind],
                      on_export=export, on_evaluate=in_training_evaluator(run, config, dataset),
                      should_stop=should_stop)
    summary = _summary(result, config, info, dataset.report.summary(),
                       time.perf_counter() - started)
    summary["audit"] = auditing.short_line(audit_record)
    io.write_json(run / "summary.json", summary)
    io.write_text(run / "summary.md", summary_markdown(summary))
    return summary


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
    }


def summary_markdown(s: dict) -> str:
    """The run summary as a few lines of Markdown (also written to RUN/summary.md)."""
    d = s["dataset"]
    classes = f", {len(d['class_names'])} classes" if d["class_names"] else ""
    return (f"# genforge run: {s['status']}\n\n"
            f"- data: {d['source']} ({d['items']} items, shape {d['item_shape']}{classes}); {s['data_report']}\n"
            f"- model: {s['family']}, {s['parameters']:,} parameters, trained on {s['device']} ({s['precision']})\n"
            f"- training: {s['steps']} steps, {s['images_seen']:,} images in {s['training_seconds']} s"
            f" ({s['images_per_second']} images/s), final loss {s['final_loss']}\n"
            + (f"- audit: {s['audit']} (see {Path(s['run']) / 'audit.json'})\n" if s.get("audit") else "")
            + f"- exported model: {s['model']}\n- latest sample grid: {s['latest_samples']}\n"
            + (f"- best by {s['best']['metric']}: {s['best']['value']:.5g} at step "
               f"{s['best']['step']} (exported to {Path(s['run']) / 'best'})\n" if s.get("best") else ""))
