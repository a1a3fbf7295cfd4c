"""Judging models: `evaluate` a model (or a folder of files made by any tool) against reference
data, `train_features` for the domain encoder behind FD-<name>, and the evaluator the training
loop calls every --eval-every steps. All of them run the metrics registry (metrics.registry) on a
sample_fn, so a number means the same wherever it was made.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch

from . import io, progress, sweep
from .config import RunConfig
from .data import data_config, dataset_info, open_data, open_training_data
from .errors import ConfigError, DataError
from .export import export_model
from .families import FAMILIES, ModelSpec
from .generation import GenerativeModel, generate_items, load, resolve_sampling
from .generation.precision import precision_record
from .metrics import registry
from .metrics.encoder import cached_encoder, default_encoder_dir
from .metrics.encoder_training import train_encoder
from .metrics.extractors import PixelFeatures, load_extractor, metric_label
from .modalities import MODALITIES, guess_kind
from .provenance.model_card import write_model_card
from .training.devices import resolve_device


def train_features(data: str, out: str | Path | None = None, *, name: str | None = None,
                   steps: int | None = None, minutes: float | None = None, seed: int = 0,
                   device: str = "auto", **data_options: Any) -> dict:
    """Train the domain encoder behind FD-<name> on a dataset of images (a classifier where it
    has labels, self-supervised where not) or SATB music (self-supervised, with musical views);
    saved to out or the encoder cache, found there by evaluate(). Reports an "encoder" task."""
    dataset = open_training_data(data_config(data, **data_options))[0]
    out = Path(out) if out else default_encoder_dir() / f"{dataset.fingerprint[:16]}.safetensors"
    kwargs = {k: v for k, v in dict(steps=steps, minutes=minutes).items() if v is not None}
    with progress.task("encoder", total=steps, unit="step", source=dataset.source) as task:
        def on_step(info: dict) -> None:
            task.update(info["step"], total=info.get("steps"), loss=round(float(info["loss"]), 4))
        path = train_encoder(dataset, out, name=name, seed=seed, progress=on_step,
                             device=str(resolve_device(device)), **kwargs)
    return {"encoder": str(path), **io.load_tensors(path)[1]}


class NoExtractor(ConfigError):
    """No feature extractor is at hand for this data (no cached encoder, none named)."""


def find_extractor(name: str | None, training_fingerprint: str | None, *,
                   inception_weights: str | None = None, device: str | torch.device = "cpu",
                   fallback: str | None = None):
    """The named extractor, or the cached encoder trained on the data with this fingerprint,
    or else `fallback` (a kind's own extractor, e.g. music's "symbolic") where there is one."""
    if name is None:
        cached = cached_encoder(training_fingerprint)
        if cached is not None:
            name = str(cached)
        elif fallback is not None:
            name = fallback
        else:
            raise NoExtractor("no feature extractor for this data yet: train one with 'genforge "
                              "features train DATA' (a few minutes; FD-<name> numbers), or pass "
                              "--extractor inception-v3 --inception-weights FILE (FID)")
    return load_extractor(name, device, weights=inception_weights)


def _features_for(extractor: str | None, metrics: tuple[str, ...] | None, fingerprint: str,
                  modality, reference, training, *, n: int, reference_limit: int,
                  fd_dim: int | None, train_encoder_now: bool, inception_weights: str | None,
                  device) -> tuple[Any, tuple[str, ...], int | None, tuple[str, ...]]:
    """(extractor, metrics, fd_dim, notes): what an evaluation can honestly compute, decided
    before anything is sampled. Without an encoder the feature metrics are left out (and said
    so) unless they were asked for by name; few samples make FD project automatically."""
    asked, notes = metrics, []
    metrics = tuple(metrics or modality.default_metrics)
    needing = [m for m in metrics if registry.METRICS[m].needs_features]
    try:
        net = find_extractor(extractor, fingerprint, inception_weights=inception_weights,
                             device=device, fallback=modality.default_extractor)
    except NoExtractor as err:
        if train_encoder_now:
            path = default_encoder_dir() / f"{training.fingerprint[:16]}.safetensors"
            with progress.task("encoder", unit="step", source=training.source):
                train_encoder(training, path, device=str(device))
            net = load_extractor(str(path), device)
        elif asked is not None and needing:
            raise NoExtractor(f"{', '.join(needing)} compare features, and {err}; or add "
                              "--train-encoder to train one now (a few minutes)") from None
        else:
            metrics = tuple(m for m in metrics if m not in needing)
            notes.append(f"{', '.join(needing)} left out: no feature extractor for this data; "
                         f"'genforge features train {training.source}' makes one (a few "
                         "minutes) or add --train-encoder")
            warnings.warn(notes[-1])
            net = PixelFeatures(tuple(reference.item_shape))
    if (asked is None and modality.default_extractor is not None
            and getattr(net, "metadata", {}).get("format") == "genforge-encoder"):
        # a kind with its own extractor (music) judged by a domain encoder: its metrics plus the
        # encoder's distances
        metrics = tuple(modality.default_metrics) + ("fd", "kid", "prdc")
    count = min(n, len(reference), reference_limit)
    if "fd" in metrics and fd_dim is not None and not 1 <= fd_dim < min(count, net.dim):
        raise ConfigError(f"--fd-dim {fd_dim} must be below both the sample count ({count}) and "
                          f"the extractor's {net.dim} features")
    if "fd" in metrics and fd_dim is None and count <= net.dim:
        fd_dim = min(net.dim - 1, count // 4)  # a few samples per dimension keep it stable
        if fd_dim < 2:
            metrics = tuple(m for m in metrics if m != "fd")
            notes.append(f"{count} samples are too few for {metric_label('fd', net.name)} "
                         f"({net.dim} features), even projected: left out")
        else:
            notes.append(f"FD projected onto the reference's top {fd_dim} principal directions: "
                         f"{count} samples are fewer than the {net.dim} features (--fd-dim to "
                         "choose)")
        warnings.warn(notes[-1])
    return net, metrics, fd_dim, tuple(notes)


def _open_generated(model: Path, n: int, kind: str, device: str, precision: str = "auto"):
    """(a GenerativeModel or a Dataset of files, the training fingerprint or None)."""
    if (model / "config.json").exists() and (model / "model.safetensors").exists():
        loaded = load(model, device=device, precision=precision)
        return loaded, loaded.manifest["dataset"]["fingerprint"]
    data = MODALITIES[kind].open(data_config(str(model), **({"labels": "none"} if kind == "image" else {})))
    if len(data) < n:
        raise ConfigError(f"{model} holds {len(data)} items, fewer than the {n} asked for: "
                          f"pass -n {len(data)} or put more files there")
    return data, None


def _reference(modality, data, defaults: dict, given: dict):
    """The reference data, and a note when a small set has no held-out split: judged against all
    of it (the split asked by default is empty), which rewards copying, and the record says so."""
    try:
        return modality.open(data_config(data, **{**defaults, **given})), None
    except DataError:
        split = defaults.get("split")
        if "split" in given or split in (None, "all"):
            raise
    reference = modality.open(data_config(data, **{**defaults, **given, "split": "all"}))
    return reference, (f"{data} has no {split} split (too few items): judged against all "
                       f"{len(reference)} of its items, training items included")


def evaluate(model: str | Path, data: str, *, n: int | None = None, extractor: str | None = None,
             metrics: tuple[str, ...] | None = None, seed: int = 0, fd_dim: int | None = None,
             fd_resamples: int = 10, reference_limit: int = 50_000,
             train_data: str | None = None, inception_weights: str | None = None,
             out: str | Path | None = None, device: str = "auto",
             data_options: dict[str, Any] | None = None, train_encoder_now: bool = False,
             steps_sweep: str | tuple[int, ...] | None = None, precision: str = "auto",
             **sampling: Any) -> dict:
    """Judge a model (or a folder of generated files) against a dataset; write evaluation.json,
    report.html and a sample grid to out, append the records to metrics.jsonl.

    n, metrics and the extractor default to the content kind's (images: 10,000 samples, FD, KID,
    precision/recall, density/coverage, memorisation; music: 1,000 samples, the musical metrics,
    and FD, KID, PRDC too where 'genforge features train' cached an encoder for the model's
    training data or one is given); data_options are data settings for the reference
    (music: split, bars, transpose; levels: split, sizes; by default the held-out test split in
    the model's length or size);
    sampling: the model family's sampling options. Without an extractor for this data the
    feature metrics are left out (and the record says so) unless named in metrics;
    train_encoder_now trains the domain encoder on the model's training data first.
    steps_sweep ("1,2,4,8,16,35") adds the cost-quality curve (sweep.steps_sweep): FD and
    seconds per sample at each count of network evaluations, to sweep.json and the report.
    precision: what the model samples in (auto, fp32, bf16), in the protocol's record.

    Example: genforge.evaluate("runs/demo/model", "fashion-mnist-test", n=2000)
    """
    from .metrics.report import write_report
    model = Path(model)
    if not model.is_dir():
        raise ConfigError(f"{model} is not a folder: give an exported model folder or a folder "
                          "of generated files")
    kind = guess_kind(str(model))
    if (model / "config.json").exists():
        kind = io.read_json(model / "config.json", "model config")["modality"]
    n = n or MODALITIES[kind].evaluation_samples
    source, training_fingerprint = _open_generated(model, n, kind, device, precision)
    counts = sweep.parse_counts(steps_sweep) if steps_sweep else None
    if counts and not isinstance(source, GenerativeModel):
        raise ConfigError(f"{model} is a folder of files: --steps-sweep needs a model")
    if counts:
        sweep.plan(source.config.family, counts)  # refused before anything is sampled
    if isinstance(source, GenerativeModel):
        kind = source.spec.modality
        labels = source.class_labels(n, None)
        options = source.sampling(**sampling)
        sample_fn = lambda count: source.generate(count, seed=seed, batch_size=256, **options)  # noqa: E731
        log, out = model / "metrics.jsonl", Path(out) if out else model.parent / "evaluation"
        protocol_sampling = {"family": source.family.name, **options,
                             **precision_record(source.sampling_precision(options)), "seed": seed,
                             "classes": "cycled" if labels is not None else "none",
                             "model_sha256": source.manifest.get("weights_sha256")}
    else:
        if any(v is not None for v in sampling.values()):
            raise ConfigError(f"{model} is a folder of files: sampling options do not apply")
        sample_fn = lambda count: source.items[:count]  # noqa: E731
        out = Path(out) if out else model.parent / f"{model.name}-evaluation"
        log, protocol_sampling = out / "metrics.jsonl", {"files": str(model)}
    modality = MODALITIES[kind]
    defaults = modality.reference_options(source) if isinstance(source, GenerativeModel) else {}
    reference, held_out_note = _reference(modality, data, defaults, data_options or {})
    modality = modality.bind(reference.vocabulary)
    training = _training_data(source, train_data, reference)
    feature_net, metrics, fd_dim, notes = _features_for(
        extractor, metrics, training_fingerprint or training.fingerprint, modality, reference,
        training, n=n, reference_limit=reference_limit, fd_dim=fd_dim,
        train_encoder_now=train_encoder_now, inception_weights=inception_weights,
        device=resolve_device(device))
    if held_out_note:
        warnings.warn(held_out_note)
        notes = (*notes, held_out_note)
    protocol = registry.Protocol(generated=n, reference_limit=reference_limit, seed=seed,
                                 fd_dim=fd_dim, fd_resamples=fd_resamples,
                                 sampler=protocol_sampling, notes=notes)
    result = registry.evaluate(sample_fn, reference, feature_net, metrics=metrics,
                               protocol=protocol, training=training, log=log,
                               cache_dir=registry.default_cache_dir(), device=resolve_device(device))
    sections, swept = [], None
    if counts:
        swept = sweep.steps_sweep(source, counts, reference=reference, extractor=feature_net,
                                  n=n, seed=seed, fd_dim=fd_dim, device=resolve_device(device),
                                  **{k: v for k, v in options.items() if k.startswith("guidance")})
        sections.append(("sweep", "Quality and cost by network evaluations",
                         sweep.sweep_html(swept)))
    out.mkdir(parents=True, exist_ok=True)
    if swept is not None:
        io.write_json(out / "sweep.json", registry.json_safe({"model": str(model), "rows": swept}))
    records = [r.to_dict() for r in result.records]
    io.write_json(out / "evaluation.json", registry.json_safe({"model": str(model), "data": data,
                                                             "notes": list(notes),
                                                             "records": records}))
    grid = modality.preview(result.generated[:64])
    io.write_with(out / "samples.png", lambda tmp: grid.save(tmp, format="PNG"))
    report = write_report(out / "report.html", result, modality=modality,
                          history=registry.read_records(log), title=f"{model} against {data}",
                          sections=sections)
    if isinstance(source, GenerativeModel):  # the card shows the newest figures
        write_model_card(model)
    return {"records": records, "report": str(report), "log": str(log), "out": str(out),
            "notes": list(notes), **({"sweep": swept} if swept is not None else {})}


def _training_data(source, train_data: str | None, reference):
    """What memorisation compares with: --train-data, else the data the model was trained on
    (rebuilt from its config when it still opens to the same fingerprint), else the reference."""
    if train_data:
        return open_data(data_config(train_data))
    if isinstance(source, GenerativeModel):
        if source.manifest["dataset"]["fingerprint"] == reference.fingerprint:
            return reference
        data = source.own_training_data()
        if data is not None:
            return data
        warnings.warn(f"the model's training data ({source.manifest['dataset']['source']}) is not "
                      "at hand: memorisation is measured against the reference data; pass "
                      "--train-data to measure it against the training set")
    return reference


def best_so_far(run: Path) -> dict | None:
    """The in-training evaluation's best model so far: metric, value, step (None without one)."""
    manifest = run / "best" / "manifest.json"
    return io.read_json(manifest)["training"].get("best") if manifest.exists() else None


def in_training_evaluator(run: Path, config: RunConfig, dataset):
    """The hook the loop calls every eval_every steps: the same registry code as evaluate(),
    on the EMA weights, logged to RUN/model/metrics.jsonl; a better score exports RUN/best."""
    t = config.train
    if not t.eval_every:
        return None
    extractor = find_extractor(t.eval_extractor, dataset.fingerprint,
                               device=resolve_device(t.device))
    family = FAMILIES[config.family]
    best = best_so_far(run)

    def on_evaluate(module, spec: ModelSpec, state) -> None:
        nonlocal best
        protocol = registry.Protocol(name="genforge-in-training-v1", generated=t.eval_samples,
                                     reference_limit=10_000, fd_resamples=0, kid_subsets=10,
                                     sampler={"family": config.family,
                                              **resolve_sampling(family, spec), "seed": 0})
        labels = torch.arange(t.eval_samples) % spec.num_classes if spec.num_classes else None
        sample_fn = lambda n: generate_items(family, module, spec, config, n, seed=0,  # noqa: E731
                                             labels=labels, batch_size=256,
                                             device=next(module.parameters()).device)
        result = registry.evaluate(sample_fn, dataset, extractor, metrics=(t.eval_metric,),
                                   protocol=protocol, step=state.step,
                                   log=run / "model" / "metrics.jsonl",
                                   cache_dir=registry.default_cache_dir(),
                                   device=next(module.parameters()).device)
        value = result.value(t.eval_metric)
        if best is None or value < best["value"]:
            best = {"metric": result.records[0].label, "value": value, "step": state.step}
            export_model(run / "best", module, spec, config, dataset=dataset_info(dataset),
                         training={"steps": state.step, "images_seen": state.images_seen,
                                   "seconds": round(state.elapsed_s, 1), "best": best})

    return on_evaluate
