"""Feature extractors: the networks that turn items into vectors the metrics compare.

Every extractor has a name (it labels every number made with it), the content kind it reads, its
feature size, and a checksum of its weights, so a record says exactly what made it. Extractors
are registered by name in EXTRACTORS as loaders: `EXTRACTORS[name](weights, device)`.
"""
from __future__ import annotations

import hashlib
from typing import Callable, Protocol

import torch

from ..errors import ConfigError


class FeatureExtractor(Protocol):
    """Items (the modality's integer tensors) in, float features [N, dim] out."""

    name: str            # labels metrics: "inception-v3" gives FID, anything else FD-<name>
    kind: str            # the modality it reads, e.g. "image"
    dim: int             # feature size
    checksum: str        # sha256 of the weights (or of the definition when there are none)
    fingerprint: str | None  # dataset fingerprint the extractor was trained on, if any

    def features(self, items: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """float32 [N, dim] features for integer items [N, ...] (on the CPU)."""


def state_checksum(state: dict[str, torch.Tensor]) -> str:
    """sha256 over a state dict's names, shapes and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu()
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        # reshape(-1).contiguous(): 0-d tensors and channels-last weights become plain byte rows
        flat = tensor.reshape(-1).contiguous()
        digest.update(flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b"")
    return digest.hexdigest()


def metric_label(metric: str, extractor_name: str) -> str:
    """FD on the standard Inception network is FID; on anything else it is FD-<name>, never FID."""
    if metric == "fd":
        return "FID" if extractor_name == "inception-v3" else f"FD-{extractor_name}"
    if metric == "kid":
        return "KID" if extractor_name == "inception-v3" else f"KID-{extractor_name}"
    return metric


class PixelFeatures:
    """Items as flat vectors in [0, 1]: the space memorisation measures copies in. Used where no
    feature metric is asked for (or possible); FD on it would be labelled FD-pixels."""

    name, kind, fingerprint = "pixels", "*", None   # "*": reads any content kind
    checksum = hashlib.sha256(b"pixels v1: items / 255, flattened").hexdigest()

    def __init__(self, item_shape: tuple[int, ...]):
        self.dim = 1
        for side in item_shape:
            self.dim *= int(side)

    def features(self, items: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        return items.reshape(len(items), -1).float() / 255


EXTRACTORS: dict[str, Callable[..., FeatureExtractor]] = {}
# Extractors kept in files, by suffix: `FILE_LOADERS[".safetensors"](path, device)` (the domain
# encoder registers itself, so this module needs to know nothing about it).
FILE_LOADERS: dict[str, Callable[..., FeatureExtractor]] = {}


def register_extractor(name: str):
    """Decorator: register a loader `fn(weights: str | None, device) -> FeatureExtractor`."""
    def wrap(fn):
        EXTRACTORS[name] = fn
        return fn
    return wrap


def register_file_loader(suffix: str, loader: Callable[..., FeatureExtractor]) -> None:
    """Register `loader(path, device) -> FeatureExtractor` for extractor files with this suffix."""
    FILE_LOADERS[suffix] = loader


def load_extractor(name_or_path: str, device: str | torch.device = "cpu",
                   weights: str | None = None) -> FeatureExtractor:
    """An extractor by registered name (weights: its weights file, where it needs one), or an
    extractor file (a genforge encoder, .safetensors) by path."""
    if name_or_path in EXTRACTORS:
        return EXTRACTORS[name_or_path](weights, device)
    for suffix, loader in FILE_LOADERS.items():
        if name_or_path.endswith(suffix):
            return loader(name_or_path, device)
    raise ConfigError(f"unknown feature extractor {name_or_path!r}: expected one of "
                      f"{', '.join(sorted(EXTRACTORS)) or '(none registered)'} or a .safetensors "
                      "encoder file made by 'genforge features train'")
