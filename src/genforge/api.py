"""The one library surface: train, load, generate, info. The CLI (and later the web studio) call only this."""
from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from . import io
from .config import RunConfig, make_config, nest_options
from .errors import ConfigError
from .export import export_model, load_module
from .families import FAMILIES, ModelSpec
from .modalities import MODALITIES
from .training.devices import resolve_device
from .training.loop import TrainResult, train as run_loop

DEFAULT_PRESET = "cpu-small"


def resolve_config(data: str | None = None, preset: str | None = DEFAULT_PRESET,
                   family: str = "diffusion", **options: Any) -> RunConfig:
    """A validated RunConfig from a preset plus flat options (names as in the CLI, with underscores)."""
    if data is not None:
        options["source"] = data
    return make_config(preset, nest_options(options), family=family)


def train(data: str | None = None, run: str | Path = "runs/genforge", *,
          preset: str | None = DEFAULT_PRESET, family: str = "diffusion",
          config: RunConfig | None = None, **options: Any) -> dict:
    """Train (or resume, if run already holds a checkpoint) and export the model to run/model.

    Example: genforge.train("fashion-mnist-sample", "runs/demo", minutes=4)
    Returns the run summary (also written to run/summary.json).
    """
    config = config or resolve_config(data, preset, family, **options)
    run = Path(run)
    modality = MODALITIES[config.data.kind]
    dataset = modality.open(config.data)
    run.mkdir(parents=True, exist_ok=True)
    io.write_json(run / "data_report.json", {"source": dataset.source, **dataset.report.to_dict()})
    dataset_info = {"source": dataset.source, "fingerprint": dataset.fingerprint,
                    "items": len(dataset), "item_shape": list(dataset.item_shape),
                    "class_names": dataset.class_names if dataset.labels is not None else []}

    def export(module, spec: ModelSpec, progress) -> None:
        export_model(run / "model", module, spec, config, dataset=dataset_info,
                     training={"steps": progress.step, "images_seen": progress.images_seen,
                               "seconds": round(progress.elapsed_s, 1)})

    started = time.perf_counter()
    result = run_loop(run, config, dataset, FAMILIES[config.family], modality, on_export=export)
    summary = _summary(result, config, dataset_info, dataset.report.summary(),
                       time.perf_counter() - started)
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
        "final_loss": p.last_loss,
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
            f"- exported model: {s['model']}\n- latest sample grid: {s['latest_samples']}\n")


class GenerativeModel:
    """An exported model, ready to generate. Build it with genforge.load(folder)."""

    def __init__(self, folder: Path, device: str = "auto"):
        self.folder = Path(folder)
        self.device = resolve_device(device)
        self.module, self.spec, self.config, self.manifest = load_module(self.folder, self.device)
        self.modality = MODALITIES[self.spec.modality]
        self.family = FAMILIES[self.config.family]

    @property
    def class_names(self) -> list[str]:
        return list(self.spec.class_names)

    def class_labels(self, n: int, class_label: int | str | None) -> torch.Tensor | None:
        """Per-sample labels: None cycles through the classes, -1 or 'none' means unconditional."""
        k = self.spec.num_classes
        if k == 0:
            if class_label not in (None, -1, "none"):
                raise ConfigError(f"this model has no classes; --class {class_label} cannot be used")
            return None
        if class_label is None:
            return torch.arange(n) % k
        if class_label in (-1, "none"):
            return torch.full((n,), -1)
        if isinstance(class_label, str) and not class_label.lstrip("-").isdigit():
            if class_label not in self.spec.class_names:
                raise ConfigError(f"unknown class {class_label!r} (known: {', '.join(self.spec.class_names)})")
            return torch.full((n,), self.spec.class_names.index(class_label))
        index = int(class_label)
        if not 0 <= index < k:
            raise ConfigError(f"class {index} out of range: this model has classes 0..{k - 1}")
        return torch.full((n,), index)

    def generate(self, n: int = 16, *, seed: int = 0, sampler: str = "dpmpp-2m", steps: int = 20,
                 guidance: float = 1.0, class_label: int | str | None = None,
                 batch_size: int = 64, out: str | Path | None = None) -> torch.Tensor:
        """n items (uint8 images [n, C, H, W]); item i uses seed + i whatever the batch size.

        With out, writes one PNG per item, grid.png and generation.json (everything needed to
        regenerate each item).
        """
        if n < 1:
            raise ConfigError(f"n must be at least 1, got {n}")
        if batch_size < 1:
            raise ConfigError(f"batch size must be at least 1, got {batch_size}")
        labels = self.class_labels(n, class_label)
        d = self.config.diffusion
        chunks = []
        for start in range(0, n, batch_size):
            stop = min(n, start + batch_size)
            x = self.family.sample(self.module, list(range(seed + start, seed + stop)),
                                   None if labels is None else labels[start:stop],
                                   sampler=sampler, steps=steps, guidance=guidance,
                                   sigma_min=d.sigma_min, sigma_max=d.sigma_max,
                                   item_shape=self.spec.item_shape, device=self.device)
            chunks.append(self.modality.from_model(x.cpu()))
        items = torch.cat(chunks)
        if out is not None:
            self._write(items, Path(out), seed, labels, dict(sampler=sampler, steps=steps,
                                                              guidance=guidance))
        return items

    def _write(self, items: torch.Tensor, out: Path, seed: int, labels: torch.Tensor | None,
               params: dict) -> None:
        out.mkdir(parents=True, exist_ok=True)
        stems = [f"{seed + i:06d}" for i in range(len(items))]
        paths = self.modality.write(items, out, stems)
        grid = self.modality.preview(items)
        io.write_with(out / "grid.png", lambda tmp: grid.save(tmp, format="PNG"))
        records = [{"file": p.name, "seed": seed + i,
                    "class": None if labels is None or labels[i] < 0 else self.spec.class_names[labels[i]]}
                   for i, p in enumerate(paths)]
        io.write_json(out / "generation.json", {
            "model": str(self.folder), "model_sha256": self.manifest.get("weights_sha256"),
            **params, "items": records})

    def info(self) -> dict:
        """What the model is: family, content kind, shape, classes, size and provenance."""
        return {"folder": str(self.folder), "family": self.config.family,
                "kind": self.spec.modality, "item_shape": list(self.spec.item_shape),
                "classes": self.class_names,
                "parameters": sum(p.numel() for p in self.module.parameters()),
                "network": asdict(self.config.network), "manifest": self.manifest}


def load(folder: str | Path, device: str = "auto") -> GenerativeModel:
    """Rebuild an exported model from its folder (config.json, model.safetensors, manifest.json)."""
    return GenerativeModel(Path(folder), device)
