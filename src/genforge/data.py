"""Data in: a resolved configuration, the dataset training sees, and its audit.

`resolve_config` turns a preset and flat options (as the CLI and the Python API take them) into a
checked RunConfig; `open_training_data` opens the data and leaves out what its audit says must
not be trained on; `audit` is the same audit as a report. The costly part of an audit is cached
under $GENFORGE_CACHE/audit, so a resumed run does not redo it.
"""
from __future__ import annotations

import difflib
import time
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from . import audit as auditing, io, progress
from .config import (DataConfig, RunConfig, check_family_options, check_kind_options,
                     make_config, nest_options)
from .errors import DataError
from .metrics.encoder import cached_encoder, load_encoder
from .modalities import MODALITIES, Dataset, guess_kind

DEFAULT_PRESET = "cpu-small"


def resolve_config(data: str | None = None, preset: str | None = DEFAULT_PRESET,
                   family: str = "auto", **options: Any) -> RunConfig:
    """A validated RunConfig from a preset plus flat options (names as in the CLI, with
    underscores). family "auto" is the one the content kind's benchmarks measured best
    (Modality.family: diffusion for images, discrete for music and levels)."""
    if data is not None:
        options["source"] = data
    check_source(str(options.get("source", DataConfig().source)))
    kind = options.get("kind", "auto")
    if kind == "auto":  # resolved once, so a stored config names its kind
        kind = guess_kind(str(options.get("source", DataConfig().source)))
    if family == "auto":
        family = MODALITIES[kind].family if kind in MODALITIES else "diffusion"
    check_family_options(family, options)
    check_kind_options(kind, options)
    return make_config(preset, nest_options({**options, "kind": kind}), family=family)


def named_datasets() -> list[str]:
    return [name for m in MODALITIES.values() for name in m.named_sources]


def check_source(source: str) -> None:
    """A one-line DataError for a source that is neither a file or folder nor a dataset genforge
    knows by name, listing every name and suggesting the closest."""
    if source in named_datasets() or Path(source).expanduser().exists():
        return
    close = difflib.get_close_matches(source, named_datasets(), n=1, cutoff=0.6)
    raise DataError(f"data source {source!r} not found: no such file or folder, and not a dataset "
                    f"genforge knows by name ({', '.join(named_datasets())})"
                    + (f"; did you mean {close[0]!r}?" if close else ""))


def family_choice(config: RunConfig, asked: str) -> str:
    """How the run's family was chosen, in words (for --dry-run and the run summary)."""
    if asked != "auto":
        return f"{config.family} (--family {asked})"
    return (f"{config.family} (auto: the family measured best for {config.data.kind} data; "
            "--family to choose another)")


def data_config(source: str, **options: Any):
    """The data section for a source and flat data options (resolution=32, bars=8, ...)."""
    return resolve_config(source, None, **options).data


def open_data(data_config) -> Dataset:
    """The dataset a data section names, as its content kind reads it."""
    return MODALITIES[data_config.kind].open(data_config)


def preview(data: str, out: str | Path, *, n: int = 16, **data_options: Any) -> Path:
    """A picture of a dataset's first n items as its content kind draws them (images, piano
    rolls, rendered levels), written atomically to out as a PNG."""
    config = data_config(data, **data_options)
    dataset = open_data(config)
    if len(dataset) == 0:
        raise DataError(f"{data}: no items to show")
    image = MODALITIES[config.kind].bind(dataset.vocabulary).preview(dataset.items[:n])

    def write(tmp: str) -> None:
        image.save(tmp, format="PNG")

    return io.write_with(Path(out), write)


def dataset_info(dataset: Dataset) -> dict:
    """What manifests and summaries say about the training data."""
    return {"source": dataset.source, "fingerprint": dataset.fingerprint,
            "items": len(dataset), "item_shape": list(dataset.item_shape),
            "class_names": dataset.class_names if dataset.labels is not None else []}


def audit(data: str, *, out: str | Path | None = None, manifest: dict[str, str | None] | None = None,
          features: bool = True, **data_options: Any) -> dict:
    """Audit a dataset before training on it: sizes, exact and near duplicates, feature-space
    neighbours, unreadable files, class balance, licence/source/consent and C2PA permissions.

    manifest fields (licence, source, consent) given are first recorded in the data folder's
    genforge-dataset.json. Problems are reported with warnings.warn; with out, the record is also
    written there as JSON. Example: genforge.audit("./my-images", resolution=32)
    """
    config = data_config(data, **data_options)
    # Unlike training, the audit reports a folder with many unreadable files rather than refusing it.
    dataset = open_data(replace(config, max_bad_fraction=1.0))
    if manifest and any(v is not None for v in manifest.values()):
        auditing.write_manifest(data, **manifest)
    record = audit_record(dataset, config, features=features)
    for message in record["warnings"]:
        warnings.warn(message)
    if out is not None:
        io.write_json(Path(out), record)
    return record


def open_training_data(config) -> tuple[Dataset, dict]:
    """The dataset training sees, and its audit: files whose C2PA manifest forbids AI training
    (and their copies) are left out, and with data.dedup every duplicate of a kept item too."""
    raw = open_data(config)
    record = audit_record(raw, config, features=False)
    unchecked = (record["c2pa"] or {}).get("unchecked")
    if unchecked:
        raise DataError(f"{len(unchecked)} file(s) in {config.source} carry C2PA manifests that "
                        f"cannot be checked for permission to train (first: {unchecked[0]['path']}: "
                        f"{unchecked[0]['reason']})")
    drops = auditing.training_drops(record, config.dedup)
    dataset = raw
    if drops:
        if len(drops) == len(raw):
            raise DataError(f"no items of {config.source} are left to train on: all "
                            f"{len(raw)} are left out (C2PA permissions or duplicates; see "
                            "'genforge audit')")
        keep = torch.ones(len(raw), dtype=torch.bool)
        keep[drops] = False
        dataset = raw.subset(keep)
    record["training"] = {"items": len(dataset), "left_out": len(drops), "dedup": config.dedup,
                          "fingerprint": dataset.fingerprint}
    return dataset, record


def audit_record(dataset: Dataset, config, *, features: bool) -> dict:
    """The audit of an opened dataset; its costly part is cached (a resumed run reuses it)."""
    started = time.perf_counter()
    cache = auditing.cache_dir() / f"{auditing.cache_key(dataset)[:32]}.json"
    heavy = auditing.load_cached(cache)
    cached = heavy is not None
    if heavy is None:
        with progress.task("audit", total=len(dataset), unit="item", source=dataset.source) as task:
            heavy = auditing.heavy_part(dataset)
            task.update(len(dataset))
        if not (heavy["c2pa"] or {}).get("unchecked"):  # checked once c2pa-python is there
            try:
                io.write_json(cache, heavy)
            except OSError as err:  # a cache that cannot be written costs time, not correctness
                warnings.warn(f"audit cache {cache.parent} is not writable ({err})")
    skipped = {"status": "skipped", "reason": "not run during training, where it would embed "
               "every item; 'genforge audit DATA' runs it"}
    record = auditing.report(dataset, heavy, manifest=auditing.read_manifest(dataset.source),
                             features=skipped, max_bad_fraction=config.max_bad_fraction,
                             dedup=config.dedup)
    if features:
        record["features"] = _feature_neighbours(dataset, record["excluded"])
    record["seconds"] = {**record["seconds"], "cached": cached,
                         "total": round(time.perf_counter() - started, 3)}
    return record


def _feature_neighbours(dataset: Dataset, excluded: list[int]) -> dict:
    """Pairs that the domain encoder trained on this data (if cached) places almost together."""
    # 'features train' trains on what training sees: without the files that forbid it.
    fingerprints = [dataset.fingerprint]
    if excluded:
        keep = torch.ones(len(dataset), dtype=torch.bool)
        keep[excluded] = False
        fingerprints.append(dataset.subset(keep).fingerprint)
    path = next((p for p in map(cached_encoder, fingerprints) if p is not None), None)
    if path is None:
        return {"status": "skipped", "reason": "no domain encoder for this data in the cache; "
                f"train one with 'genforge features train {dataset.source}' (a few minutes)"}
    started = time.perf_counter()
    extractor = load_encoder(path)
    pairs, cosines, angle = auditing.feature_neighbours(extractor.features(dataset.items).numpy())
    names = dataset.names
    name = (lambda i: names[i]) if names else int
    return {"status": "done", "extractor": str(path), "name": extractor.name,
            "median_nearest_angle": round(angle, 5), "ratio": round(auditing.FEATURE_RATIO, 4),
            "pairs": len(pairs),
            "listed": [[name(a), name(b), round(float(c), 5)] for (a, b), c in
                       list(zip(pairs.tolist(), cosines))[:auditing.LISTED_GROUPS]],
            "seconds": round(time.perf_counter() - started, 3)}
