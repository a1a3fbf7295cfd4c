"""Exported models: a folder with config.json, model.safetensors (EMA weights) and manifest.json.

`load(folder)` rebuilds the model from the folder alone: no pickles, no original command line.
"""
from __future__ import annotations

import hashlib
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
from .errors import CheckpointError, ConfigError
from .provenance.model_card import write_model_card
from .families import FAMILIES, ModelSpec
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
                 dataset: dict[str, Any], training: dict[str, Any]) -> Path:
    """Write the exported model folder atomically (a staging folder swapped into place)."""
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
    model_config = io.read_json(folder / "config.json", "model config")
    if model_config.get("format") != FORMAT:
        raise CheckpointError(f"{folder / 'config.json'}: not a genforge model config")
    manifest = io.read_json(folder / "manifest.json", "manifest")
    try:
        run_config = config_from_dict(model_config["run_config"])
    except (KeyError, ConfigError) as err:
        raise CheckpointError(f"{folder / 'config.json'}: invalid run_config ({err})") from None
    return model_config, manifest, run_config


def load_module(folder: Path, device: str | torch.device = "cpu") -> tuple[nn.Module, ModelSpec, RunConfig, dict]:
    """Rebuild the exported module with its weights, in eval mode."""
    model_config, manifest, run_config = read_model_folder(folder)
    spec = ModelSpec.from_dict(model_config)
    if spec.modality not in MODALITIES:
        raise CheckpointError(f"{folder}: unknown content kind {spec.modality!r}")
    family = FAMILIES.get(model_config["family"])
    if family is None:
        raise CheckpointError(f"{folder}: unknown model family {model_config['family']!r}")
    module = family.exported(family.build(spec, run_config))
    tensors, _ = io.load_tensors(Path(folder) / "model.safetensors")
    try:
        module.load_state_dict(tensors)
    except RuntimeError as err:
        raise CheckpointError(f"{folder}: weights do not fit the config ({str(err).splitlines()[0]})") from None
    module = module.to(device, memory_format=SAMPLING_MEMORY_FORMAT).eval().requires_grad_(False)
    return module, spec, run_config, manifest
