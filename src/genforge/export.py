"""Exported models: a folder with config.json, model.safetensors (EMA weights) and manifest.json.

`load(folder)` rebuilds the model from the folder alone: no pickles, no original command line.
"""
from __future__ import annotations

import hashlib
import math
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import io
from .version import __version__
from .config import RunConfig, config_from_dict
from .errors import CheckpointError, ConfigError, DataError
from .provenance.model_card import write_model_card
from .families import FAMILIES, ModelSpec, check_size
from .levels.formats import Legend
from .modalities import MODALITIES

FORMAT = "genforge-model"
METRICS_LOG = "metrics.jsonl"  # evaluation records, appended by genforge evaluate and training
# Loaded models sample in channels-last layout: oneDNN's convolutions ran 1.25x faster per
# evaluation in it (cpu preset without patches, batch 64, 2 threads); training gained nothing.
SAMPLING_MEMORY_FORMAT = torch.channels_last


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def export_model(folder: Path, module: nn.Module, spec: ModelSpec, config: RunConfig, *,
                 dataset: dict[str, Any], training: dict[str, Any],
                 tuned_from: dict[str, Any] | None = None) -> Path:
    """Write the exported model folder atomically (a staging folder swapped into place);
    tuned_from names the model a tuning (genforge distill) started from."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    io.user_permissions(staging, folder=True)
    try:
        model_config = {"format": FORMAT, "format_version": 1, "family": config.family,
                        **spec.to_dict(), "run_config": config.to_dict()}
        io.write_json(staging / "config.json", model_config)
        io.save_tensors(staging / "model.safetensors", module.state_dict(),
                        {"format": FORMAT, "family": config.family})
        manifest = {
            "genforge_version": __version__, "torch_version": torch.__version__,
            "python_version": platform.python_version(), "config_hash": config.hash(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "weights": "ema", "weights_sha256": _sha256(staging / "model.safetensors"),
            "parameters": sum(p.numel() for p in module.parameters()),
            "dataset": dataset, "training": training, "seed": config.train.seed,
            **({"tuned_from": tuned_from} if tuned_from else {}),
        }
        io.write_json(staging / "manifest.json", manifest)
        if (folder / METRICS_LOG).exists():  # the evaluation history outlives re-exports
            shutil.copy2(folder / METRICS_LOG, staging / METRICS_LOG)
        write_model_card(staging)
        return io.replace_dir(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def read_model_folder(folder: Path) -> tuple[dict, dict, RunConfig]:
    """(config.json, manifest.json, RunConfig) of an exported model, with one-line errors."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: not a model folder (expected config.json, "
                              "model.safetensors and manifest.json)")
    path = folder / "config.json"
    model_config = check_model_config(io.read_json(path, "model config"), path)
    manifest = io.read_json(folder / "manifest.json", "manifest")
    if not isinstance(manifest, dict):
        raise CheckpointError(f"{folder / 'manifest.json'}: a manifest is a JSON object")
    try:
        run_config = config_from_dict(model_config["run_config"])
    except ConfigError as err:  # its text may quote a key holding a newline: keep it one line
        text = str(err).replace("\r", "\\r").replace("\n", "\\n")
        raise CheckpointError(f"{path}: invalid run_config ({text})") from None
    return model_config, manifest, run_config


# The rank of each content kind's items, and the first size where it is fixed: images [C, H, W]
# with 1, 3 or 4 channels, music [4, T] (SATB) or [88, T] (piano roll), levels [H, W].
ITEM_SHAPES = {"image": (3, (1, 3, 4)), "music": (2, (4, 88)), "level": (2, None)}


def check_model_config(config: Any, path: Path) -> dict:
    """An exported config.json's structure, before anything builds from it: the format, family,
    the model spec (ModelSpec.from_dict) with its item shape fitting its content kind, and
    run_config as sections of values, finite and within 64 bits (config.validate checks ranges).
    CheckpointError naming the file and the field; returns the config."""
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a genforge model config")
    if config.get("format_version", 1) != 1:
        raise CheckpointError(f"{path}: format_version {config['format_version']!r:.20} is not "
                              "one this genforge reads (1); a newer genforge wrote it?")
    family, run_config = config.get("family"), config.get("run_config")
    if not isinstance(family, str):
        raise CheckpointError(f"{path}: family must name a model family, got {family!r:.40}")
    if not isinstance(run_config, dict) or not all(isinstance(v, dict) for k, v in
                                                    run_config.items() if k != "family"):
        raise CheckpointError(f"{path}: run_config must be an object of sections (objects)")
    if run_config.get("family", family) != family:
        raise CheckpointError(f"{path}: run_config.family {run_config['family']!r:.40} disagrees "
                              f"with family {family!r:.40}")
    try:
        spec = ModelSpec.from_dict(config)
    except CheckpointError as err:
        raise CheckpointError(f"{path}: {err}") from None
    rank, firsts = ITEM_SHAPES.get(spec.modality, (None, None))
    shape = list(spec.item_shape)
    if rank is not None and (len(shape) != rank or firsts and shape[0] not in firsts):
        raise CheckpointError(f"{path}: item_shape {shape} does not fit {spec.modality} items "
                              f"({rank} sizes{f', the first one of {firsts}' if firsts else ''})")
    if spec.tensor_shape is not None and len(spec.tensor_shape) != 3:  # networks are 2-D: C, H, W
        raise CheckpointError(f"{path}: model_shape {list(spec.tensor_shape)} is not [C, H, W]")
    if spec.modality == "level" and spec.vocabulary:
        try:
            Legend.from_dict(spec.vocabulary)
        except DataError as err:
            raise CheckpointError(f"{path}: vocabulary: {err}") from None
    for where, value in _numbers(run_config, "run_config"):
        if isinstance(value, float) and not math.isfinite(value) or abs(value) >= 2 ** 63:
            shown = repr(value) if len(repr(value)) <= 30 else f"{repr(value)[:24]}... (huge)"
            raise CheckpointError(f"{path}: {where} is {shown}; numbers in a model config are "
                                  "finite and fit in 64 bits")
    return config


def _numbers(value: Any, where: str):
    """(dotted path, number) for every number inside a parsed JSON value (bools are not)."""
    todo = [(where, value)]
    while todo:
        where, value = todo.pop()
        if isinstance(value, dict):  # odd keys (a newline, say) are quoted: messages are one line
            todo += [(f"{where}.{k}" if k.isidentifier() else f"{where}[{k!r}]", v)
                     for k, v in value.items()]
        elif isinstance(value, list):
            todo += [(f"{where}[{i}]", v) for i, v in enumerate(value)]
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            yield where, value


def load_module(folder: Path, device: str | torch.device = "cpu") -> tuple[nn.Module, ModelSpec, RunConfig, dict]:
    """Rebuild the exported module with its weights, in eval mode."""
    model_config, manifest, run_config = read_model_folder(folder)
    spec = ModelSpec.from_dict(model_config)
    if spec.modality not in MODALITIES:
        raise CheckpointError(f"{folder}: unknown content kind {spec.modality!r}")
    family = FAMILIES.get(model_config["family"])
    if family is None:
        raise CheckpointError(f"{folder}: unknown model family {model_config['family']!r}")
    try:
        check_size(family, spec, run_config)  # a config.json from anyone: no absurd allocation
    except ConfigError as err:
        raise CheckpointError(f"{folder / 'config.json'}: {err}") from None
    module = family.exported(family.build(spec, run_config))
    tensors, _ = io.load_tensors(Path(folder) / "model.safetensors")
    try:
        module.load_state_dict(tensors)
    except RuntimeError as err:
        raise CheckpointError(f"{folder}: weights do not fit the config ({str(err).splitlines()[0]})") from None
    module = module.to(device, memory_format=SAMPLING_MEMORY_FORMAT).eval().requires_grad_(False)
    return module, spec, run_config, manifest
