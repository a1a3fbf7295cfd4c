"""Training the domain encoder (metrics.encoder): a classifier where the data has labels, else
SimCLR on two views, with held-out validation figures; the file it writes is described in
metrics.encoder."""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .. import io
from ..errors import ConfigError, DataError
from ..modalities import MODALITIES
from ..modalities.base import Dataset, EncoderInput
from ..music import augment as music_augment
from ..music import representation as music_rep
from ..version import __version__
from .encoder import (FORMAT, FORMAT_VERSION, Encoder, check_name, default_name, embed,
                      readable, reader, recalibrate, resolve_device, weights)
from .extractors import state_checksum

# About 3 minutes on 2 cores of a Xeon; 1000 steps reached 89.8% (width 32), 500 steps 86.9%.
DEFAULT_STEPS = 2000
DEFAULT_BATCH = 128
VALIDATION_SHARE = 0.1
MODES = ("auto", "classifier", "self-supervised")
# AdamW peak rates; contrastive training was measured to fall behind its untrained start at 4e-3.
LEARNING_RATES = {"classifier": 2e-3, "self-supervised": 1e-3}
RECALIBRATE_ITEMS = 8192


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
    dev = resolve_device(device)
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

