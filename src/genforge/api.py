"""The one library surface. The CLI, the studio and scripts call only this.

What users do, and where it lives:
    train, preflight, resolve_config  runs.py, data.py   a training run, end to end (--dry-run)
    distill                        tuning.py             tune a diffusion model for 1-2 step sampling
    launch_processes, process_world, check_processes  training/distributed.py  N processes
    config_from_dict               config.py             a stored configuration, checked again
    load -> GenerativeModel        generation/           generate, interpolate, harmonize, complete
    export                         export_onnx.py        a model as ONNX, for genforge.runtime
    evaluate, train_features       evaluation.py         metrics against reference data
    audit, open_training_data      data.py               a dataset before training (and
    dataset_preview                                      a picture of its first items)
    check_file, dataset_manifest   modalities/, audit/   a user's file before it is kept; a
                                                         dataset's licence/source/consent
    verify, detect, keys           provenance/checks.py  what generated files say about themselves
    reporting, Event               progress.py           progress of every long step, as events

And what shells read to build their options (one declaration each: genforge.options):
    config_sections, data_sections, sampling_declarations, display_declarations,
    level_filter_declarations, presets, families, dataset_names, metric_names, level_legends.
"""
from __future__ import annotations

from dataclasses import replace

from .audit import (MANIFEST_FIELDS as DATASET_MANIFEST_FIELDS, MANIFEST_NAME as DATASET_MANIFEST,
                    read_manifest as dataset_manifest, text as audit_text,
                    write_manifest as set_dataset_manifest)
from .errors import ConfigError
from .config import (DataConfig, FAMILY_DEFAULTS, PRESETS, SECTIONS, FAMILIES as FAMILY_NAMES,
                     config_from_dict)
from .data import (DEFAULT_PRESET, audit, data_config, family_choice, open_data,
                   open_training_data, preview as dataset_preview, resolve_config)
from .evaluation import evaluate, find_extractor, train_features
from .families import FAMILIES
from .export_onnx import export_onnx
from .generation import GenerativeModel, load
from .generation.display import DisplayOptions
from .generation.precision import PRECISIONS as SAMPLING_PRECISIONS
from .generation.levels import LevelFilter
from .levels.formats import LEGENDS
from .metrics import registry
from .modalities import MODALITIES, check_file
from .options import Declaration, declarations
from .progress import Event, Reporter, reporting
from .provenance.checks import describe_keys, detect, init_keys, signer, verify
from .tuning import TUNING_OPTIONS, distill, distill_config
from .runs import preflight, summary_markdown, train
from .training.distributed import (PeerLost, check_split as check_processes,
                                   launch as launch_processes, world as process_world)


EXPORT_FORMATS = ("onnx",)


def export(model, *, format: str = "onnx", out=None):
    """Export a model folder for use without PyTorch (format onnx: one network evaluation in
    ONNX, for genforge.runtime, onnxruntime-web or a game engine); returns the new folder."""
    if format not in EXPORT_FORMATS:
        raise ConfigError(f"export format {format!r} is not one of {', '.join(EXPORT_FORMATS)}")
    return export_onnx(model, out)


def config_sections() -> dict[str, type]:
    """The run configuration's sections by name (data, network, diffusion, gan, augment, train)."""
    return dict(SECTIONS)


def data_sections() -> dict[str, list[Declaration]]:
    """The data options in groups: those every content kind reads ("data"), then each kind's own
    (by kind name), each a list of declarations."""
    own = {kind: declarations(m.options_type) for kind, m in MODALITIES.items()}
    kind_names = {d.name for group in own.values() for d in group}
    return {"data": [d for d in declarations(DataConfig) if d.name not in kind_names], **own}


def sampling_declarations(*, inpainting: bool = False) -> dict[str, type]:
    """Each family's declared sampling options (or inpainting options) by family name; a family
    that cannot inpaint is left out."""
    return {name: (f.inpainting if inpainting else f.sampling) for name, f in FAMILIES.items()
            if (f.inpainting if inpainting else f.sampling) is not None}


def level_filter_declarations() -> list[Declaration]:
    """The level filters generate takes beside --playable-only (--min-moves, --min-boxes)."""
    return list(declarations(LevelFilter))


def display_declarations() -> list[Declaration]:
    """The display-copy options generate and interpolate take (--display-size, ...)."""
    return list(declarations(DisplayOptions))


def kind_sampling_presets() -> list[tuple[str, str, dict]]:
    """(family, which items, options): where a content kind samples other than its family's
    defaults, chosen by measurement."""
    return [(p.family, p.items, dict(p.options)) for m in MODALITIES.values()
            for p in m.sampling_presets]


def presets() -> tuple[str, ...]:
    return tuple(PRESETS)


def preset_values(name: str, preset: str = DEFAULT_PRESET) -> dict[str, object]:
    """{family: value} where the preset or the family's own defaults set the option `name`
    (empty where they leave its declared default): what help texts must say."""
    return {family: values[name] for family in FAMILY_NAMES
            for source in (FAMILY_DEFAULTS[family], PRESETS[preset].get(family, {}))
            for values in source.values() if name in values}


def families() -> tuple[str, ...]:
    return tuple(FAMILY_NAMES)


def dataset_names() -> dict[str, tuple[str, ...]]:
    """The datasets genforge knows by name, per content kind."""
    return {kind: tuple(m.named_sources) for kind, m in MODALITIES.items()}


def metric_names() -> tuple[str, ...]:
    return tuple(registry.METRICS)


def default_metrics() -> dict[str, tuple[str, ...]]:
    """Each content kind's default metrics."""
    return {kind: tuple(m.default_metrics) for kind, m in MODALITIES.items()}


def kinds() -> tuple[str, ...]:
    return tuple(MODALITIES)


def level_legends() -> tuple[str, ...]:
    """The tile legends genforge knows by game name (data.legend takes these or a legend file)."""
    return tuple(LEGENDS)


def kind_families() -> dict[str, str]:
    """The family --family auto picks for each content kind (the one its benchmarks chose)."""
    return {kind: m.family for kind, m in MODALITIES.items()}


def distill_declarations() -> list[Declaration]:
    """The options genforge distill takes (the budget, train and consistency options, and the
    noise levels it tunes at), each as declared once in the run configuration, with the default
    tuning gives it where ECT's differs (presets.FAMILY_DEFAULTS); the others default to the
    teacher's own values."""
    tuned = {name: value for values in FAMILY_DEFAULTS["consistency"].values()
             for name, value in values.items()}
    return [replace(d, default=tuned.get(d.name, d.default)) for cls in SECTIONS.values()
            for d in declarations(cls) if d.name in TUNING_OPTIONS]


__all__ = ["export", "EXPORT_FORMATS", "train", "distill", "distill_config", "distill_declarations",
           "preflight", "resolve_config", "config_from_dict", "summary_markdown", "load",
           "SAMPLING_PRECISIONS",
           "GenerativeModel", "evaluate",
           "train_features", "find_extractor", "audit", "audit_text", "DATASET_MANIFEST",
           "DATASET_MANIFEST_FIELDS", "dataset_manifest", "set_dataset_manifest", "check_file",
           "level_legends", "open_training_data",
           "open_data", "data_config", "dataset_preview", "verify", "detect", "init_keys",
           "describe_keys",
           "signer", "reporting", "Event", "Reporter", "config_sections", "data_sections",
           "sampling_declarations", "display_declarations", "level_filter_declarations",
           "kind_sampling_presets", "presets",
           "preset_values", "families",
           "dataset_names", "metric_names", "default_metrics", "kinds", "kind_families",
           "DEFAULT_PRESET", "family_choice", "process_world", "launch_processes",
           "check_processes", "PeerLost"]
