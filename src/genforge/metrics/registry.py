"""The metrics registry: metrics are functions over one evaluation's inputs, each returning
values that the registry wraps in self-describing records (as stylegan2-ada's @register_metric).

An evaluation draws n items from any `sample_fn(n)` (a model of any family, a folder of files),
turns them and the reference data into features with one extractor, and runs the named metrics.
Reference features are cached under a hash of everything that made them.
"""
from __future__ import annotations

import hashlib
import json
import math
import time
import warnings
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Callable

import torch

from .. import io, progress
from ..errors import ConfigError
from ..version import __version__
from . import maths
from .extractors import FeatureExtractor, metric_label

# A copy sits far closer to one training item than to any other (Yoon et al. 2023 use the same
# nearest/second-nearest ratio test with 1/3).
COPY_RATIO = 1 / 3


@dataclass
class Value:
    """One number a metric produced, with its 95% interval and how it was made."""

    name: str
    value: float
    ci: tuple[float, float] | None = None
    details: dict = field(default_factory=dict)
    extractor: str | None = None      # overrides the evaluation's extractor (e.g. "pixels")
    reference: int | None = None      # overrides the reference count (e.g. all training items)


@dataclass
class MetricRecord:
    """One line of metrics.jsonl: everything needed to know what a number means."""

    metric: str               # registry name of the value, e.g. "fd", "precision"
    label: str                # what to call it: FID, FD-fashion-mnist, precision, ...
    value: float
    ci_low: float | None
    ci_high: float | None
    generated: int            # sample counts
    reference: int
    seed: int
    extractor: str
    extractor_checksum: str
    protocol: dict
    details: dict
    step: int | None = None   # training step, for in-training evaluation
    created: str = ""
    genforge_version: str = __version__

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Protocol:
    """What every record of one evaluation shares: how the numbers were made."""

    name: str = "genforge-v1"
    generated: int = 10_000
    reference_limit: int = 50_000
    seed: int = 0
    fd_dim: int | None = None        # project features to this many principal directions first
    fd_resamples: int = 10            # bootstrap resamples for FD's interval (0: none)
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    k_precision_recall: int = 3
    k_density_coverage: int = 5
    memorisation_space: str = "pixels"
    sampler: dict = field(default_factory=dict)
    notes: tuple[str, ...] = ()       # what the caller chose and why (an automatic projection)

    def to_dict(self) -> dict:
        return asdict(self)


class EvalInputs:
    """Generated items, reference (and training) data and the extractor; features made once."""

    def __init__(self, generated: torch.Tensor, reference, extractor: FeatureExtractor,
                 protocol: Protocol, training=None, cache_dir: Path | None = None,
                 device: torch.device | str = "cpu"):
        if extractor.kind not in (reference.kind, "*"):
            raise ConfigError(f"feature extractor {extractor.name!r} reads {extractor.kind} items "
                              f"but the reference data {reference.source} holds {reference.kind}")
        if tuple(generated.shape[1:]) != tuple(reference.item_shape):
            raise ConfigError(f"generated items have shape {tuple(generated.shape[1:])} but the "
                              f"reference data {reference.source} has {tuple(reference.item_shape)}"
                              " (channels, height, width must match)")
        self.generated, self.reference, self.training = generated, reference, training
        self.extractor, self.protocol, self.cache_dir = extractor, protocol, cache_dir
        self.device = torch.device(device)  # where the metric maths runs (a GPU is ~50x faster)
        self.nearest_pairs: list[tuple[int, int, float]] = []   # filled by memorisation
        self.histograms: dict[str, list[float]] = {}

    @cached_property
    def reference_items(self) -> torch.Tensor:
        items = self.reference.items
        if len(items) > self.protocol.reference_limit:
            pick = torch.randperm(len(items), generator=torch.Generator().manual_seed(
                self.protocol.seed))[:self.protocol.reference_limit]
            items = items[pick.sort().values]
        return items

    @cached_property
    def generated_features(self) -> torch.Tensor:
        return self.extractor.features(self.generated).to(self.device)

    @cached_property
    def reference_features(self) -> torch.Tensor:
        key = hashlib.sha256(json.dumps([self.extractor.name, self.extractor.checksum,
                                         self.reference.fingerprint, len(self.reference_items),
                                         self.protocol.seed]).encode()).hexdigest()[:24]
        path = self.cache_dir / f"{key}.safetensors" if self.cache_dir else None
        if path is not None and path.exists():
            return io.load_tensors(path)[0]["features"].to(self.device)
        features = self.extractor.features(self.reference_items)
        if path is not None:
            io.save_tensors(path, {"features": features.contiguous()},
                            {"extractor": self.extractor.name, "source": self.reference.source})
        return features.to(self.device)

    @cached_property
    def fd_projection(self):
        """(mean, basis) of the reduced space when the protocol asks for one, else None."""
        dim = self.protocol.fd_dim
        if dim is None:
            return None
        if not 1 <= dim < self.extractor.dim:
            raise ConfigError(f"reduced dimension {dim} must be between 1 and the extractor's "
                              f"{self.extractor.dim - 1}")
        return maths.pca_basis(self.reference_features, dim)

    def project(self, features: torch.Tensor) -> torch.Tensor:
        if self.fd_projection is None:
            return features.double()
        mean, basis = self.fd_projection
        return (features.double() - mean) @ basis


@dataclass(frozen=True)
class Metric:
    name: str
    fn: Callable[[EvalInputs], list[Value]]
    description: str
    needs_training: bool = False
    needs_features: bool = False   # compares the extractor's features (else: items themselves)


METRICS: dict[str, Metric] = {}


def register_metric(name: str, description: str, needs_training: bool = False,
                    needs_features: bool = False):
    """Decorator: register `fn(inputs) -> list[Value]` under name."""
    def wrap(fn):
        METRICS[name] = Metric(name, fn, description, needs_training, needs_features)
        return fn
    return wrap


@register_metric("fd", "Fréchet distance between feature Gaussians (FID on Inception-v3)",
                 needs_features=True)
def _fd(inputs: EvalInputs) -> list[Value]:
    gen, ref = inputs.project(inputs.generated_features), inputs.project(inputs.reference_features)
    dim = gen.shape[1]
    maths.check_fd_sample_size(len(gen), dim, "generated")
    maths.check_fd_sample_size(len(ref), dim, "reference")
    ref_stats = maths.feature_statistics(ref)
    value = maths.frechet_distance(maths.feature_statistics(gen), ref_stats)
    p = inputs.protocol
    ci = (maths.bootstrap_fd_interval(gen, ref_stats, resamples=p.fd_resamples, seed=p.seed)
          if p.fd_resamples > 1 else None)
    return [Value("fd", value, ci, {"dimensions": dim, "reduced": p.fd_dim is not None,
                                    "interval": f"bootstrap over generated ({p.fd_resamples})",
                                    **({"notes": list(p.notes)} if p.notes else {})})]


@register_metric("kid", "kernel inception distance: unbiased cubic-kernel MMD^2 over subsets",
                 needs_features=True)
def _kid(inputs: EvalInputs) -> list[Value]:
    p = inputs.protocol
    mmd = maths.kernel_inception_distance(inputs.generated_features, inputs.reference_features,
                                          subsets=p.kid_subsets, subset_size=p.kid_subset_size,
                                          seed=p.seed)
    return [Value("kid", float(mmd.mean()), maths.mean_interval(mmd),
                  {"std": float(mmd.std()) if len(mmd) > 1 else 0.0, "subsets": len(mmd),
                   "subset_size": min(p.kid_subset_size, len(inputs.generated),
                                      len(inputs.reference_items))})]


@register_metric("prdc", "precision and recall (k-NN manifolds) and density and coverage",
                 needs_features=True)
def _prdc(inputs: EvalInputs) -> list[Value]:
    p = inputs.protocol
    m = maths.manifold_indicators(inputs.generated_features, inputs.reference_features,
                                  k_pr=p.k_precision_recall, k_dc=p.k_density_coverage)
    return [Value("precision", float(m.precision.mean()),
                  maths.wilson_interval(float(m.precision.sum()), len(m.precision)),
                  {"k": p.k_precision_recall}),
            Value("recall", float(m.recall.mean()),
                  maths.wilson_interval(float(m.recall.sum()), len(m.recall)),
                  {"k": p.k_precision_recall}),
            Value("density", float(m.density.mean()), maths.mean_interval(m.density),
                  {"k": p.k_density_coverage}),
            Value("coverage", float(m.coverage.mean()),
                  maths.wilson_interval(float(m.coverage.sum()), len(m.coverage)),
                  {"k": p.k_density_coverage})]


def pixel_vectors(items: torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """Items as flat float vectors in [0, 1]: the space in which copies are copies."""
    return items.reshape(len(items), -1).to(device).float() / 255


@register_metric("memorisation", "nearest training item of each sample: copy share and "
                 "Carlini et al.'s normalised distance", needs_training=True)
def _memorisation(inputs: EvalInputs) -> list[Value]:
    train = inputs.training.items
    nearest = maths.nearest_training_items(pixel_vectors(inputs.generated, inputs.device),
                                           pixel_vectors(train, inputs.device))
    copies = nearest.ratio < COPY_RATIO
    order = nearest.ratio.argsort()
    inputs.nearest_pairs = [(int(i), int(nearest.index[i]), float(nearest.ratio[i]))
                            for i in order[:32]]
    inputs.histograms["generated_to_train"] = nearest.distance.tolist()
    inputs.histograms["train_to_train"] = _train_baseline(train, inputs.protocol.seed, inputs.device)
    n = len(copies)
    details = {"space": "pixels", "copy_ratio": COPY_RATIO,
               "median_nn_distance": float(nearest.distance.median()),
               "median_train_nn_distance": float(torch.tensor(
                   inputs.histograms["train_to_train"]).median())}
    return [Value("memorised_share", float(copies.double().mean()),
                  maths.wilson_interval(float(copies.sum()), n), details, extractor="pixels",
                  reference=len(train)),
            Value("normalised_nn_distance", float(nearest.normalised.median()),
                  None, {"space": "pixels", "statistic": "median", "alpha": 0.5,
                         "neighbourhood": 50, "min": float(nearest.normalised.min())},
                  extractor="pixels", reference=len(train))]


def _train_baseline(train: torch.Tensor, seed: int, device, count: int = 2000) -> list[float]:
    """Distances from training items to their nearest other training item: what 'close' means
    for this data, drawn beside the generated-to-training histogram."""
    count = min(count, len(train) // 2)  # a small training set: half against the other half
    pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:count]
    rest = torch.ones(len(train), dtype=torch.bool)
    rest[pick] = False
    sq, _ = maths.PairwiseDistances(pixel_vectors(train[pick], device),
                                    pixel_vectors(train[rest], device)).smallest(1)
    return sq[:, 0].sqrt().tolist()


DEFAULT_METRICS = ("fd", "kid", "prdc", "memorisation")


@dataclass
class Evaluation:
    """Everything one evaluation made: the records, and what the report draws."""

    records: list[MetricRecord]
    generated: torch.Tensor
    inputs: EvalInputs

    def value(self, metric: str) -> float:
        return next(r.value for r in self.records if r.metric == metric)


def evaluate(sample_fn: Callable[[int], torch.Tensor], reference, extractor: FeatureExtractor,
             *, metrics: tuple[str, ...] = DEFAULT_METRICS, protocol: Protocol = Protocol(),
             training=None, step: int | None = None, cache_dir: Path | None = None,
             log: Path | None = None, device: torch.device | str = "cpu") -> Evaluation:
    """Draw protocol.generated items from sample_fn, run the metrics, return (and append to
    `log`, a JSONL file) one record per value."""
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ConfigError(f"unknown metric {unknown[0]!r}: expected one of {', '.join(METRICS)}")
    if protocol.generated < 2:
        raise ConfigError(f"need at least 2 generated samples, got {protocol.generated}")
    training = training if training is not None else reference
    _check_fingerprint(extractor, training)  # the extractor should know the model's training data
    generated = sample_fn(protocol.generated)
    if len(generated) < protocol.generated:
        warnings.warn(f"asked for {protocol.generated} samples, got {len(generated)}")
    inputs = EvalInputs(generated, reference, extractor, protocol, training, cache_dir, device)
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    records = []
    with progress.task("metrics", total=len(metrics), unit="metric") as task:
        for done, name in enumerate(metrics):
            task.update(done, force=True, metric=name)
            records += _records(name, inputs, extractor, protocol, reference, len(generated),
                                step, created)
        task.update(len(metrics))
    if log is not None:
        append_records(log, records)
    return Evaluation(records, generated, inputs)


def _records(name: str, inputs: EvalInputs, extractor: FeatureExtractor, protocol: Protocol,
             reference, generated: int, step: int | None, created: str) -> list[MetricRecord]:
    """One metric's values as self-describing records."""
    records = []
    for v in METRICS[name].fn(inputs):
        extractor_name = v.extractor or extractor.name
        checksum = (extractor.checksum if v.extractor is None
                    else hashlib.sha256(v.extractor.encode()).hexdigest())
        records.append(MetricRecord(
            metric=v.name, label=metric_label(v.name, extractor_name), value=v.value,
            ci_low=None if v.ci is None else v.ci[0], ci_high=None if v.ci is None else v.ci[1],
            generated=generated, seed=protocol.seed,
            reference=v.reference if v.reference is not None else len(inputs.reference_items),
            extractor=extractor_name, extractor_checksum=checksum,
            protocol={**protocol.to_dict(), "reference_source": reference.source,
                      "reference_fingerprint": reference.fingerprint},
            details=v.details, step=step, created=created))
    return records


def _check_fingerprint(extractor: FeatureExtractor, training) -> None:
    if extractor.fingerprint and extractor.fingerprint != training.fingerprint:
        warnings.warn(f"feature extractor {extractor.name!r} was trained on other data "
                      f"(fingerprint {extractor.fingerprint[:12]}, not {training.fingerprint[:12]} "
                      f"of {training.source}): its distances are not comparable with numbers "
                      "from an extractor trained on this data")


def append_records(path: Path, records: list[MetricRecord]) -> None:
    """Append records to a JSONL file (one line each; earlier lines are never rewritten)."""
    io.append_jsonl(path, [json_safe(r.to_dict()) for r in records])


def json_safe(obj):
    """JSON has no NaN: undefined numbers are written as null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def read_records(path: Path) -> list[dict]:
    """All records of a metrics.jsonl file (a torn last line from a crash is skipped)."""
    path = Path(path)
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def default_cache_dir() -> Path:
    """Where reference features are cached: $GENFORGE_CACHE/features or ~/.cache/genforge."""
    return io.cache_dir("features")
