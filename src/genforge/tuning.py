"""Few-step models: `distill` tunes an exported EDM diffusion model by Easy Consistency Tuning
(families.consistency) so it samples in 1-2 network evaluations, through the same training
loop, checkpoints, resume, progress events, audit record and export as `train`. Rerunning the
same call in the same run folder resumes it.
"""
from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

from . import audit as auditing, io, progress as events
from .config import SECTIONS, RunConfig, config_from_dict, nest_options
from .data import dataset_info, open_training_data
from .errors import ConfigError
from .evaluation import in_training_evaluator
from .export import load_module, read_model_folder
from .families.consistency import ConsistencyFamily
from .modalities import MODALITIES
from .presets import FAMILY_DEFAULTS
from .runs import _summary, exporter, summary_markdown
from .training.health import health
from .training.loop import train as run_loop

# What a tuning may change: its budget and optimiser (train), the ECT schedule and loss
# (consistency), the noise levels it samples t from and dropout (ECT tunes with it; it changes
# no weight). The network's shape and the data are the teacher's.
TUNABLE_SECTIONS = ("train", "consistency")
TUNABLE_MODEL_OPTIONS = ("p_mean", "p_std", "label_dropout", "dropout")
TUNING_OPTIONS = {f.name for s in TUNABLE_SECTIONS for f in fields(SECTIONS[s])
                  if f.name != "teacher_sha256"} | set(TUNABLE_MODEL_OPTIONS)


def default_run(model: str | Path) -> Path:
    """Where a tuning of MODEL runs unless told: RUN-distill beside RUN for RUN/model, else
    MODEL-distill beside the model folder."""
    folder = Path(model)
    if folder.name == "model" and folder.parent.name:
        return folder.parent.with_name(folder.parent.name + "-distill")
    return folder.with_name(folder.name + "-distill")


def distill_config(model: str | Path, **options: Any) -> tuple[RunConfig, dict, Any]:
    """(the tuning's RunConfig, the teacher's manifest, its weights): the teacher's whole
    configuration with family consistency, ECT's defaults (presets.FAMILY_DEFAULTS) and the
    options given; refused in one line for a model that is not an EDM diffusion model or an
    option that would change what the teacher's weights fit."""
    folder = Path(model)
    model_config, manifest, teacher_config = read_model_folder(folder)
    if teacher_config.family != "diffusion":
        what = ("is already consistency-tuned: rerun its distill command to tune it longer"
                if teacher_config.family == "consistency" else
                f"is a {teacher_config.family} model; distill tunes EDM diffusion models "
                "(trained with --family diffusion) to sample in 1-2 steps")
        raise ConfigError(f"{folder} {what}")
    for name in options:
        if name not in TUNING_OPTIONS:
            raise ConfigError(f"--{name.replace('_', '-')} cannot be changed by distill: the "
                              f"network and data are {folder}'s (it takes the train and "
                              "consistency options, and --p-mean, --p-std, --label-dropout, "
                              "--dropout)")
    settings = teacher_config.to_dict()
    settings["family"] = "consistency"
    for section, values in FAMILY_DEFAULTS["consistency"].items():
        settings[section].update(values)
    settings["train"].update(steps=None, minutes=None, eval_every=0)
    for section, values in nest_options(options).items():
        settings[section].update(values)
    settings["consistency"]["teacher_sha256"] = manifest.get("weights_sha256", "")
    config = config_from_dict(settings)
    if config.train.steps is None and config.train.minutes is None:
        raise ConfigError("no tuning budget: give --minutes M (a quarter of the teacher's "
                          "training time is a good start) or --steps N")
    module = load_module(folder)[0]  # checks the weights fit the config, before any data is read
    return config, manifest, {k: v.contiguous() for k, v in module.state_dict().items()}


def distill(model: str | Path, run: str | Path | None = None, *,
            progress: events.Reporter | None = None,
            should_stop: Callable[[], bool] | None = None, **options: Any) -> dict:
    """Tune an exported diffusion model to sample in 1-2 evaluations; export it to run/model.

    Example: genforge.distill("runs/demo/model", minutes=2)
    options: minutes or steps (the budget), any train option (lr, batch_size, seed, ...) and the
    consistency options (stage_steps, ratio_q, ...). run defaults to default_run(model).
    Returns the run summary (also written to run/summary.json), with "tuned_from".
    """
    if progress is not None:
        with events.reporting(progress):
            return distill(model, run, should_stop=should_stop, **options)
    started = time.perf_counter()
    config, manifest, weights = distill_config(model, **options)
    run = Path(run) if run is not None else default_run(model)
    dataset, audit_record = open_training_data(config.data)
    for message in audit_record["warnings"]:
        warnings.warn(message)
    if dataset.fingerprint != manifest.get("dataset", {}).get("fingerprint"):
        warnings.warn(f"{config.data.source} is not the data {model} was trained on as it was "
                      "(another fingerprint): the tuning uses it as it is now")
    run.mkdir(parents=True, exist_ok=True)
    io.write_json(run / "data_report.json", {"source": dataset.source, **dataset.report.to_dict()})
    io.write_json(run / "audit.json", audit_record)
    info = dataset_info(dataset)
    tuned_from = {"model": _model_name(Path(model)), "weights_sha256": manifest.get("weights_sha256"),
                  "config_hash": manifest.get("config_hash"),
                  "training": manifest.get("training", {}),
                  "method": "Easy Consistency Tuning (Geng et al. 2024)"}
    timing = {"setup_s": round(time.perf_counter() - started, 1)}

    # The ECT loss is weighted by 1 / (t - r), which grows stage by stage by design (r nears t), so
    # "the last loss far above its best" says nothing here (a sound 3,460-step tuning ended at
    # 3.8x its best); rollbacks after a diverged loss still count, as for a GAN's phases.
    judge = lambda state: health(state, single_phase=False)  # noqa: E731
    export = exporter(run, config, info, judge, timing,
                      tuned_from)
    looping = time.perf_counter()
    result = run_loop(run, config, dataset, ConsistencyFamily(weights),
                      MODALITIES[config.data.kind], on_export=export,
                      on_evaluate=in_training_evaluator(run, config, dataset),
                      should_stop=should_stop)
    timing["training_s"] = round(time.perf_counter() - looping - timing.get("export_s", 0), 1)
    timing["wall_s"] = round(time.perf_counter() - started, 1)
    summary = _summary(result, config, info, dataset.report.summary(), timing["wall_s"])
    summary.update(timing=timing, precision_choice=result.progress.precision,
                   health=judge(result.progress),
                   audit=auditing.short_line(audit_record), tuned_from=tuned_from,
                   family_choice="consistency (genforge distill)")
    io.write_json(run / "summary.json", summary)
    io.write_text(run / "summary.md", summary_markdown(summary))
    return summary


def _model_name(folder: Path) -> str:
    """A model's name for records (never a path): its folder's, or its run's for RUN/model."""
    folder = folder.resolve()
    return folder.parent.name if folder.name == "model" and folder.parent.name else folder.name
