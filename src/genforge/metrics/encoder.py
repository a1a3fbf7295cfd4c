"""The genforge domain encoder: a small CNN trained on the user's own data to make features for FD.

Standard FID needs Inception weights that many users cannot download, and ImageNet features say
little about 28x28 garments or 16x16 sprites anyway. `train_encoder` fits a small network to the
dataset at hand: a classifier (cross-entropy on a linear head) where the data has labels, else
SimCLR (Chen et al. 2020, arXiv:2002.05709) on two augmented views. It reads images [N, C, H, W]
and SATB music [N, 4, T]; each content kind says how in its modality's `encoder_input()` (how
items become the network's input, which views SimCLR compares, the feature size). Music is read as the one-hot planes music
models see, [N, 8, T, 48], with musical views (genforge.music.augment). Numbers made with it are
labelled FD-<name>, never FID (see extractors.metric_label), because they are not comparable with
anyone else's FID.

The file is safetensors (the encoder's weights; the training heads are dropped) with JSON metadata
(io.save_tensors) that rebuilds the network and says what it was trained on:
  format "genforge-encoder", format_version, genforge_version, name, kind, item_shape, dim, arch,
  mode ("classifier" | "self-supervised"), checksum (state_checksum of the weights),
  dataset {source, fingerprint, items, classes}, training {steps, batch_size, seed, lr, seconds,
  final_loss, device}, validation {items, accuracy | alignment [, knn_accuracy]
  | retrieval_items, retrieval_accuracy (music)}; music files add augment {transpose, beats, drop}.
`load_encoder` turns the file into a FeatureExtractor.
"""
from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .. import io
from ..errors import CheckpointError, ConfigError, DataError
from ..modalities import MODALITIES
from ..modalities.base import Dataset, EncoderInput
from ..modalities.image_views import DEFAULT_DIM, to_model
from ..music import augment as music_augment
from ..music import representation as music_rep
from ..version import __version__
from .extractors import register_file_loader, state_checksum

FORMAT = "genforge-encoder"
FORMAT_VERSION = 1
# Channels of the first stage; the two later stages double it. Measured on 2 cores of a Xeon
# (batch 128, 28x28): width 24 trains at 88 ms a step and embeds 10,000 images in 1.3 s, width 32
# at 191 ms and 4.0 s; on Fashion-MNIST 2000 steps reached 91.0% (24) and 91.6% (32) validation
# accuracy, so 24 is the default.
DEFAULT_WIDTH = 24
# About 3 minutes on those 2 cores; 1000 steps reached 89.8% (width 32), 500 steps 86.9%.
DEFAULT_STEPS = 2000
DEFAULT_BATCH = 128
VALIDATION_SHARE = 0.1
MODES = ("auto", "classifier", "self-supervised")
# AdamW peak rates; contrastive training was measured to fall behind its untrained start at 4e-3.
LEARNING_RATES = {"classifier": 2e-3, "self-supervised": 1e-3}
RECALIBRATE_ITEMS = 8192


# ---------------------------------------------------------------------------------------------
# The network


def patch_size(resolution: int) -> int:
    """Pixels folded into the stem's stride: large images run the body at 24-47 px, like small ones."""
    p = 1
    while resolution // (2 * p) >= 24:
        p *= 2
    return p


def _conv(in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1) -> list[nn.Module]:
    padding = kernel // 2 if stride == 1 or kernel == 3 else 0
    return [nn.Conv2d(in_ch, out_ch, kernel, stride, padding, bias=False), nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True)]


class Encoder(nn.Module):
    """Images in [-1, 1] [N, C, H, W] -> features [N, dim].

    Stem (3x3 conv, or a p x p patch conv for large images), two stages that halve the side and
    double the width (28 -> 14 -> 7), a 1x1 projection to `dim` channels, ReLU, global average.
    BatchNorm rather than GroupNorm: at inference it is a fixed scale and shift, the cheapest norm
    on a CPU. The projection comes before the ReLU and the pooling, as in Inception's pool3, so
    the features average a non-linear map and their covariance can be full rank; a linear layer
    after the pooling would give a covariance of rank <= 128, whose square root FD cannot take
    reliably.

    `stem` ({"kernel": [h, w], "stride": [h, w]}) replaces the first conv: music's is a beat long
    and an octave wide (4 x 13), so the first layer sees the intervals between neighbouring
    notes; its stride of 2 in time and pitch halves a step's time (batch 128 of 4-bar crops, one
    thread of a busy 2-core Xeon: 0.65 s, against 1.3 s at stride 1 in pitch).
    """

    def __init__(self, channels: int, resolution: int, dim: int = DEFAULT_DIM,
                 width: int = DEFAULT_WIDTH, stem: dict | None = None):
        super().__init__()
        p = patch_size(resolution)
        self.arch = {"channels": channels, "resolution": resolution, "dim": dim, "width": width}
        w1, w2, w3 = width, 2 * width, 4 * width
        if stem is not None:
            self.arch["stem"] = stem
            (kh, kw), stride = stem["kernel"], tuple(stem["stride"])
            first = [nn.Conv2d(channels, w1, (kh, kw), stride, ((kh - 1) // 2, kw // 2),
                               bias=False), nn.BatchNorm2d(w1), nn.ReLU(inplace=True)]
        else:
            first = _conv(channels, w1) if p == 1 else _conv(channels, w1, kernel=p, stride=p)
        self.body = nn.Sequential(
            *first,
            *_conv(w1, w2, stride=2), *_conv(w2, w2),
            *_conv(w2, w3, stride=2), *_conv(w3, w3),
            *_conv(w3, dim, kernel=1))
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).mean(dim=(2, 3))


# ---------------------------------------------------------------------------------------------
# What the encoder reads: each content kind's EncoderInput, declared in its modality


def default_encoder_dir() -> Path:
    """Where 'genforge features train' keeps encoders by default ($GENFORGE_CACHE/encoders),
    named by the training data's fingerprint, so evaluation and the audit find them."""
    return io.cache_dir("encoders")


def cached_encoder(fingerprint: str | None) -> Path | None:
    """The cached encoder trained on the data with this fingerprint, if there is one."""
    path = default_encoder_dir() / f"{(fingerprint or '')[:16]}.safetensors"
    return path if fingerprint and path.exists() else None


def readable() -> str:
    """What the encoder reads, for error messages."""
    return " and ".join(r.items for r in (m.encoder_input() for m in MODALITIES.values()) if r)


def reader(kind: str) -> EncoderInput:
    """How the encoder reads a kind; ConfigError for a kind it cannot read."""
    read = MODALITIES[kind].encoder_input() if kind in MODALITIES else None
    if read is None:
        raise ConfigError(f"the domain encoder reads {readable()}; not {kind} items")
    return read


# ---------------------------------------------------------------------------------------------
# Losses and checks


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.2) -> torch.Tensor:
    """SimCLR's NT-Xent: each view must pick its partner out of the other 2N - 2 items."""
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sim = (z @ z.T) / temperature
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    partner = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(sim, partner)


def knn_accuracy(bank: torch.Tensor, bank_labels: torch.Tensor, queries: torch.Tensor,
                 query_labels: torch.Tensor, k: int = 10) -> float:
    """Share of queries whose k nearest bank items (cosine) vote, similarity-weighted, for their class."""
    bank, queries = F.normalize(bank.float(), dim=1), F.normalize(queries.float(), dim=1)
    k = min(k, len(bank))
    classes = int(max(bank_labels.max(), query_labels.max())) + 1
    correct = 0
    for start in range(0, len(queries), 1024):  # bounds memory at 1024 x len(bank)
        sim, index = (queries[start:start + 1024] @ bank.T).topk(k, dim=1)
        votes = torch.zeros(len(sim), classes).scatter_add_(1, bank_labels[index], sim)
        correct += int((votes.argmax(1) == query_labels[start:start + 1024]).sum())
    return correct / len(queries)


def weights(model: Encoder) -> dict[str, torch.Tensor]:
    """What an encoder file holds: the state dict less BatchNorm's step counters, which eval
    mode never reads (and which state_checksum cannot hash: they are 0-d)."""
    # clone to standard strides: channels-last 1x1 kernels report is_contiguous() with odd strides
    return {k: v.detach().cpu().clone(memory_format=torch.contiguous_format)
            for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}


def recalibrate(model: Encoder, items: torch.Tensor, batch_size: int = 256,
                prepare: Callable[[torch.Tensor], torch.Tensor] = to_model) -> None:
    """Set BatchNorm's running statistics to their exact averages over clean items ("precise BN").

    Training leaves them as moving averages over augmented batches, but features are taken from
    clean items; measured on the Fashion-MNIST sample, this added about a point of kNN accuracy.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # None: a cumulative average over all batches seen
    was_training = model.training
    model.train()
    with torch.no_grad():
        for start in range(0, len(items), batch_size):
            model(prepare(items[start:start + batch_size]))
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    model.train(was_training)


def embed(model: Encoder, items: torch.Tensor, batch_size: int = 256,
          prepare: Callable[[torch.Tensor], torch.Tensor] = to_model) -> torch.Tensor:
    """float32 CPU features of integer items (prepare: how the network reads them, images by
    default), in eval mode without autograd; restores the mode."""
    was_training, device = model.training, next(model.parameters()).device
    model.eval()
    out = [torch.zeros(0, model.dim)]
    with torch.inference_mode():
        for start in range(0, len(items), batch_size):
            out.append(model(prepare(items[start:start + batch_size].to(device))).float().cpu())
    model.train(was_training)
    return torch.cat(out)


# ---------------------------------------------------------------------------------------------
# Training


def default_name(source: str) -> str:
    """A name from the data source: 'fashion-mnist' -> 'fashion-mnist', '~/art/sprites/' -> 'sprites'."""
    stem = Path(str(source).rstrip("/\\")).name.lower()
    return re.sub(r"[^a-z0-9._-]+", "-", stem).strip("-.") or "encoder"


def check_name(name: str) -> str:
    """Refuse names that would mislabel metrics: inception-v3 makes FID, and only the real one may."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name or ""):
        raise ConfigError(f"encoder name {name!r} must be letters, digits, '.', '_' or '-' "
                          "(it labels metrics as FD-<name>)")
    if name.lower() == "inception-v3":
        raise ConfigError("encoder name 'inception-v3' is reserved for the standard FID network; "
                          "choose another name")
    return name


def _device(device: str | torch.device) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except RuntimeError:
        raise ConfigError(f"unknown device {device!r} (expected auto, cpu, cuda or cuda:N)") from None


def _split(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, validation) indices: a seeded permutation, VALIDATION_SHARE held out (at least 1)."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    held = max(1, round(n * VALIDATION_SHARE))
    return order[held:].sort().values, order[:held].sort().values


def _mode(dataset: Dataset, mode: str) -> str:
    if mode not in MODES:
        raise ConfigError(f"encoder mode must be one of {', '.join(MODES)}, got {mode!r}")
    labelled = dataset.labels is not None and dataset.num_classes >= 2
    if mode == "classifier" and not labelled:
        raise ConfigError(f"{dataset.source} has no class labels (two or more classes are needed) "
                          "to train a classifier encoder; use mode 'self-supervised'")
    if mode == "auto":
        return "classifier" if labelled else "self-supervised"
    return mode


def _lr_factor(done: float, warmup: float = 0.05) -> float:
    """Linear warm-up over the first 5% of the budget, then cosine decay to zero."""
    if done < warmup:
        return (done + 1e-3) / warmup
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (done - warmup) / (1 - warmup))))


def distinct_up_to_transposition(items: torch.Tensor) -> torch.Tensor:
    """The SATB items that are not a transposition of an earlier one (first of each kept)."""
    seen, keep = set(), []
    for i, item in enumerate(music_rep.canonical_satb(items)):
        pitches = music_rep.satb_pitches(item)
        base = int(pitches[pitches >= 0].min()) if (pitches >= 0).any() else music_rep.PITCH_LOW
        key = music_rep.transpose_satb(item, music_rep.PITCH_LOW - base).tobytes()
        if key not in seen:
            seen.add(key)
            keep.append(i)
    return items[keep]


def transposition_retrieval(model: Encoder, items: torch.Tensor, g: torch.Generator,
                            most: int = music_augment.STRONG.transpose) -> dict:
    """Which crop is this? Each SATB item (duplicates up to transposition removed) is moved by
    two different random shifts within +-most semitones; the share of first copies whose nearest
    second copy (cosine) is their own, among all of them (chance: 1 / items). In train_encoder's
    validation the items are a random tenth of the data, which may overlap training crops in time
    or transpose them: a figure of invariance and discrimination; for unseen pieces, pass the
    crops of another split (on bach-chorales' validation split: 0.56 after 5 minutes' training)."""
    items = distinct_up_to_transposition(items)
    device = next(model.parameters()).device
    x = reader("music").prepare(items.to(device))
    first = music_augment.random_shifts(x, most, g)
    second = music_augment.random_shifts(x, most, g, avoid=first)
    a = _embed_planes(model, music_augment.transpose(x, first))
    b = _embed_planes(model, music_augment.transpose(x, second))
    a, b = F.normalize(a, dim=1), F.normalize(b, dim=1)
    hits = sum(int(((a[s:s + 1024] @ b.T).argmax(1) == torch.arange(s, min(s + 1024, len(a))))
                   .sum()) for s in range(0, len(a), 1024))
    return {"retrieval_items": len(items),
            "retrieval_accuracy": round(hits / max(1, len(items)), 4)}


def _embed_planes(model: Encoder, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """float32 CPU features of network inputs already prepared, in eval mode; restores the mode."""
    return embed(model, x, batch_size, prepare=lambda batch: batch)


def _validate(model: Encoder, head: nn.Module, mode: str, dataset: Dataset,
              train_idx: torch.Tensor, val_idx: torch.Tensor, g: torch.Generator) -> dict:
    """Held-out figures: classifier accuracy; or view alignment (and kNN accuracy where labels
    exist; for music, transposition_retrieval)."""
    read = reader(dataset.kind)
    items, labels = dataset.items[val_idx], dataset.labels
    feats = embed(model, items, prepare=read.prepare)
    result = {"items": len(items)}
    if mode == "classifier":
        with torch.inference_mode():
            predicted = head.cpu()(feats).argmax(1)
        result["accuracy"] = round(float((predicted == labels[val_idx]).float().mean()), 4)
        return result
    x = read.prepare(items.to(next(model.parameters()).device))
    views = [read.strong(x, g) for _ in range(2)]
    model.eval()
    with torch.inference_mode():
        a, b = (F.normalize(model(v).float(), dim=1) for v in views)
    result["alignment"] = round(float((a * b).sum(1).mean()), 4)  # mean cosine of two views
    if labels is not None:
        bank = embed(model, dataset.items[train_idx], prepare=read.prepare)
        result["knn_accuracy"] = round(knn_accuracy(bank, labels[train_idx], feats,
                                                    labels[val_idx]), 4)
    if read.transposes:
        result.update(transposition_retrieval(model, items, g))
    return result


def _check_budget(dataset: Dataset, steps: int | None, minutes: float | None,
                  batch_size: int) -> int | None:
    """Refuse what cannot train; the step budget (DEFAULT_STEPS when neither budget is given)."""
    read = MODALITIES[dataset.kind].encoder_input() if dataset.kind in MODALITIES else None
    if read is None or not read.accepts(dataset.item_shape):
        raise ConfigError(f"the domain encoder reads {readable()}; {dataset.source} holds "
                          f"{dataset.kind} items of shape {tuple(dataset.items.shape[1:])}")
    if len(dataset) < 2:
        raise DataError(f"{dataset.source} has {len(dataset)} item(s); training an encoder needs "
                        "at least 2 (one is held out for validation)")
    if (steps is not None and steps < 1) or (minutes is not None and minutes <= 0):
        raise ConfigError(f"the encoder's budget must be positive (steps {steps}, minutes {minutes})")
    if batch_size < 2:
        raise ConfigError(f"encoder batch size must be at least 2, got {batch_size}")
    return DEFAULT_STEPS if steps is None and minutes is None else steps


def _build(dataset: Dataset, mode: str, dim: int, seed: int) -> tuple[Encoder, nn.Module]:
    """The seeded encoder and its training head, without touching the caller's global RNG."""
    read = reader(dataset.kind)
    channels, height = read.input_shape(dataset.item_shape)[:2]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Encoder(channels, height, dim=dim, stem=read.stem)
        if mode == "classifier":
            head = nn.Linear(dim, dataset.num_classes)
        else:  # SimCLR's projection MLP: the loss is taken on its output, the features before it
            head = nn.Sequential(nn.Linear(dim, dim, bias=False), nn.BatchNorm1d(dim),
                                 nn.ReLU(inplace=True), nn.Linear(dim, 128))
    return model.to(memory_format=torch.channels_last), head


def _loss(model: Encoder, head: nn.Module, read: EncoderInput, x: torch.Tensor,
          labels: torch.Tensor | None, g: torch.Generator) -> torch.Tensor:
    """Cross-entropy on lightly augmented items, or NT-Xent on two strongly augmented views."""
    if labels is not None:
        return F.cross_entropy(head(model(read.light(x, g))), labels, label_smoothing=0.1)
    z = head(model(torch.cat([read.strong(x, g), read.strong(x, g)])))
    return nt_xent(*z.chunk(2))


def train_encoder(dataset: Dataset, path: str | Path, *, name: str | None = None,
                  steps: int | None = None, minutes: float | None = None,
                  batch_size: int = DEFAULT_BATCH, seed: int = 0, device: str = "cpu",
                  progress: Callable[[dict], None] | None = None, mode: str = "auto",
                  dim: int | None = None, lr: float | None = None) -> Path:
    """Train a domain encoder on dataset and save it at path (atomically); return the path.

    Budget: `steps` optimiser steps, or `minutes` of training, whichever ends first; with neither,
    DEFAULT_STEPS. dim defaults to the kind's (EncoderInput.dim: images 256, music 64). mode 'auto'
    trains a classifier where the data has two or more classes, else self-supervised;
    'self-supervised' on labelled data keeps the labels for the kNN check only.
    `progress`, if given, is called after every step with a dict of step, steps (None under a
    time budget only), elapsed_s and loss. Seeded: on one device and thread count the same
    arguments give the same weights (a `minutes` budget can stop at another step).
    """
    steps = _check_budget(dataset, steps, minutes, batch_size)
    name = check_name(name if name is not None else default_name(dataset.source))
    mode = _mode(dataset, mode)
    read = reader(dataset.kind)
    if mode == "classifier" and read.light is None:
        raise ConfigError(f"the domain encoder trains on {dataset.kind} items without labels "
                          "only; use mode 'self-supervised'")
    dim = dim if dim is not None else read.dim
    lr = lr if lr is not None else LEARNING_RATES[mode]
    dev = _device(device)
    train_idx, val_idx = _split(len(dataset), seed)
    items = dataset.items[train_idx].to(dev)
    labels = dataset.labels[train_idx].to(dev) if mode == "classifier" else None
    batch_size = min(batch_size, len(train_idx))
    model, head = (m.to(dev) for m in _build(dataset, mode, dim, seed))
    optimizer = torch.optim.AdamW([*model.parameters(), *head.parameters()], lr=lr,
                                  weight_decay=5e-4)
    g = torch.Generator(dev).manual_seed(seed + 1)           # augmentation
    order_g = torch.Generator().manual_seed(seed + 2)        # batch order
    order, offset = torch.randperm(len(items), generator=order_g), 0

    step, start, loss = 0, time.perf_counter(), torch.tensor(float("nan"))
    while (done := max(step / steps if steps else 0.0,
                       (time.perf_counter() - start) / (60 * minutes) if minutes else 0.0)) < 1.0:
        if offset + batch_size > len(order):  # a new epoch: a fresh permutation, no partial batch
            order, offset = torch.randperm(len(items), generator=order_g), 0
        index = order[offset:offset + batch_size].to(dev)
        offset += batch_size
        for group in optimizer.param_groups:
            group["lr"] = lr * _lr_factor(done)
        loss = _loss(model, head, read, read.prepare(items[index]),
                     labels[index] if labels is not None else None, g)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        if not math.isfinite(float(loss.detach())):
            raise DataError(f"encoder training diverged at step {step} (loss {float(loss)}); "
                            "try a lower learning rate")
        if progress is not None:
            progress({"step": step, "steps": steps, "elapsed_s": time.perf_counter() - start,
                      "loss": float(loss.detach())})
    recalibrate(model, items[torch.randperm(len(items), generator=order_g)[:RECALIBRATE_ITEMS]],
                prepare=read.prepare)
    seconds = time.perf_counter() - start

    validation = _validate(model, head, mode, dataset, train_idx, val_idx,
                           torch.Generator(dev).manual_seed(seed + 3))
    state = weights(model)
    metadata = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "genforge_version": __version__,
        "name": name, "kind": dataset.kind, "item_shape": list(dataset.item_shape), "dim": dim,
        "arch": model.arch, "mode": mode, "checksum": state_checksum(state),
        "dataset": {"source": dataset.source, "fingerprint": dataset.fingerprint,
                    "items": len(dataset), "classes": list(dataset.class_names)},
        "training": {"steps": step, "batch_size": batch_size, "seed": seed, "lr": lr,
                     "seconds": round(seconds, 1), "final_loss": round(float(loss.detach()), 4),
                     "device": str(dev)},
        "validation": validation,
    }
    if read.augment is not None:
        metadata["augment"] = read.augment
    return io.save_tensors(Path(path), state, metadata)


# ---------------------------------------------------------------------------------------------
# Loading


class EncoderExtractor:
    """A trained domain encoder as a FeatureExtractor: integer items of the kind it was trained
    on (uint8 images, SATB music) in, float32 [N, dim] out."""

    def __init__(self, model: Encoder, metadata: dict, checksum: str, device: torch.device):
        self.device = device
        self.kind = metadata.get("kind", "image")
        self.reader = reader(self.kind)
        self.model = model.to(device).to(memory_format=torch.channels_last).eval()
        self.model.requires_grad_(False)
        self.metadata = metadata
        self.name = metadata["name"]
        self.dim = int(metadata["dim"])
        self.item_shape = tuple(metadata["item_shape"])
        self.checksum = checksum
        self.fingerprint = metadata["dataset"]["fingerprint"]

    def features(self, items: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """float32 [N, dim] on the CPU for integer items of the shape it was trained on (uint8
        images [N, C, H, W], SATB codes [N, 4, T])."""
        want = self.item_shape
        if self.kind != "image":
            if (items.dim() != len(want) + 1 or items.is_floating_point()
                    or items.dtype == torch.bool or tuple(items.shape[1:]) != want):
                raise ConfigError(f"encoder {self.name!r} reads integer {self.kind} items of shape "
                                  f"{list(want)}; got {items.dtype} {tuple(items.shape)}")
            return embed(self.model, items, batch_size, prepare=self.reader.prepare)
        if items.dim() != 4 or items.is_floating_point() or items.dtype == torch.bool:
            raise ConfigError(f"encoder {self.name!r} reads integer images [N, C, H, W]; got "
                              f"{items.dtype} {tuple(items.shape)}")
        if items.shape[1] != want[0]:
            raise ConfigError(f"encoder {self.name!r} expects {want[0]} channels and got "
                              f"{items.shape[1]}")
        if tuple(items.shape[1:]) != want:
            raise ConfigError(f"encoder {self.name!r} expects {'x'.join(map(str, want))} images and "
                              f"got {'x'.join(map(str, items.shape[1:]))}; use the resolution it "
                              "was trained at")
        return embed(self.model, items, batch_size)


def load_encoder(path: str | Path, device: str | torch.device = "cpu") -> EncoderExtractor:
    """The encoder saved by train_encoder at path; a file that is not one is a one-line ConfigError."""
    path = Path(path)
    expected = "a genforge encoder made by 'genforge features train'"
    try:
        state, meta = io.load_tensors(path)
    except CheckpointError as err:
        reason = "not found" if not path.is_file() else "not a readable safetensors file"
        raise ConfigError(f"{path}: {reason}; expected {expected}") from err
    if meta.get("format") != FORMAT:
        found = f"format {meta['format']!r}" if meta.get("format") else "no genforge encoder metadata"
        raise ConfigError(f"{path}: not a genforge encoder ({found}); expected {expected}")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ConfigError(f"{path}: encoder format version {meta.get('format_version')!r} (written by "
                          f"genforge {meta.get('genforge_version', '?')}); this genforge "
                          f"{__version__} reads version {FORMAT_VERSION}")
    try:
        check_name(meta["name"])
        arch = meta["arch"]
        read = reader(meta.get("kind", "image"))
        model = Encoder(arch["channels"], arch["resolution"], dim=arch["dim"], width=arch["width"],
                        stem=arch.get("stem"))
        missing, unexpected = model.load_state_dict(state, strict=False)
        if unexpected or any(not k.endswith("num_batches_tracked") for k in missing):
            raise KeyError(f"missing {missing[:3]}, unexpected {unexpected[:3]}")
        shape = tuple(meta["item_shape"])
        if not read.accepts(shape) or read.input_shape(shape)[0] != arch["channels"]:
            raise KeyError(f"item_shape {meta['item_shape']} against arch {arch}")
        if not isinstance(meta["dataset"]["fingerprint"], str):
            raise KeyError("dataset.fingerprint")
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        reason = " ".join(str(err).split())[:200]
        raise ConfigError(f"{path}: damaged genforge encoder (weights or metadata do not match: "
                          f"{reason})") from None
    checksum = state_checksum(state)
    if checksum != meta.get("checksum"):
        raise ConfigError(f"{path}: damaged genforge encoder (weights checksum {checksum[:12]} does "
                          f"not match the {str(meta.get('checksum'))[:12]} recorded when it was saved)")
    return EncoderExtractor(model, meta, checksum, _device(device))


register_file_loader(".safetensors", load_encoder)
