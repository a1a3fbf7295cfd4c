"""Training state that survives a stop: the data position, and the checkpoint file round trip.

A checkpoint is one safetensors file (model, EMA, optimiser tensors, RNG states) whose metadata
holds the JSON part (step, data position, timing, the config). It is replaced atomically, so a
crash while writing leaves the previous checkpoint intact.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import io
from ..errors import CheckpointError

CHECKPOINT_NAME = "checkpoint.safetensors"
FORMAT = "genforge-checkpoint"


class DataStream:
    """Endless shuffled micro-batches; (epoch, offset) is the whole state, so resuming is exact."""

    def __init__(self, size: int, seed: int, epoch: int = 0, offset: int = 0):
        self.size, self.seed, self.epoch, self.offset = size, seed, epoch, offset
        self._order = self._permutation(epoch)

    def _permutation(self, epoch: int) -> torch.Tensor:
        # One generator per epoch, derived from (seed, epoch): no hidden state to save.
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.size, generator=g)

    def next(self, count: int) -> torch.Tensor:
        """The indices of the next `count` items, crossing epoch boundaries as needed."""
        parts = []
        while count > 0:
            if self.offset >= self.size:
                self.epoch, self.offset = self.epoch + 1, 0
                self._order = self._permutation(self.epoch)
            take = min(count, self.size - self.offset)
            parts.append(self._order[self.offset:self.offset + take])
            self.offset += take
            count -= take
        return torch.cat(parts)


@dataclass
class Progress:
    """Counters saved with every checkpoint."""

    step: int = 0
    images_seen: int = 0
    elapsed_s: float = 0.0  # training wall time summed over all sessions of this run
    epoch: int = 0
    offset: int = 0
    last_loss: float | None = None
    lr_scale: float = 1.0   # lowered by each rollback after a divergence
    rollbacks: int = 0
    best_loss: float | None = None    # the lowest logged (window-mean) loss of the first phase
    window_loss: float | None = None  # the newest logged one
    recoveries: list = field(default_factory=list)  # reruns that recovered a divergence stop
    precision: dict | None = None     # what the run trains in and why (training.speed)


def _optimizer_tensors(name: str, optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, values in state["state"].items():
        for key, value in values.items():
            if torch.is_tensor(value):
                tensors[f"optim.{name}.{index}.{key}"] = value
            else:
                scalars[f"{index}.{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _restore_optimizer(name: str, optimizer: torch.optim.Optimizer, tensors: dict,
                       meta: dict) -> None:
    state: dict[int, dict[str, Any]] = {}
    prefix = f"optim.{name}."
    for key, value in tensors.items():
        if key.startswith(prefix):
            index, field = key[len(prefix):].split(".", 1)
            state.setdefault(int(index), {})[field] = value
    for key, value in meta["scalars"].items():
        index, field = key.split(".", 1)
        state.setdefault(int(index), {})[field] = value
    # how the optimiser runs (fused, foreach) belongs to this machine, not to the checkpoint's
    kernels = {key: optimizer.param_groups[0].get(key) for key in ("fused", "foreach")}
    groups = [{**group, **kernels} for group in meta["param_groups"]]
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def save_checkpoint(path: Path, *, model: nn.Module, ema: nn.Module,
                    optimizers: dict[str, torch.optim.Optimizer], generator: torch.Generator,
                    progress: Progress, config: dict, spec: dict) -> Path:
    """Write the complete training state atomically."""
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    tensors.update({f"ema.{k}": v for k, v in ema.state_dict().items()})
    optim_meta = {}
    for name, optimizer in optimizers.items():
        t, m = _optimizer_tensors(name, optimizer)
        tensors.update(t)
        optim_meta[name] = m
    tensors["rng.train"] = generator.get_state()
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        tensors["rng.cuda"] = torch.cuda.get_rng_state()
    meta = {"format": FORMAT, "version": 1, "progress": asdict(progress), "config": config,
            "spec": spec, "optimizers": optim_meta}
    return io.save_tensors(path, tensors, meta)


def read_checkpoint_meta(path: Path) -> dict:
    """The JSON part of a checkpoint (its header alone), checked to be one of ours."""
    meta = io.load_metadata(path)
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a genforge checkpoint")
    return meta


def load_checkpoint(path: Path, *, model: nn.Module, ema: nn.Module,
                    optimizers: dict[str, torch.optim.Optimizer],
                    generator: torch.Generator) -> Progress:
    """Restore everything save_checkpoint wrote; return the progress counters."""
    tensors, meta = io.load_tensors(path)
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a genforge checkpoint")
    try:  # Optimizer.load_state_dict moves its state to each parameter's device itself.
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        ema.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")})
        for name, optimizer in optimizers.items():
            _restore_optimizer(name, optimizer, tensors, meta["optimizers"][name])
    except (RuntimeError, KeyError, ValueError) as err:
        raise CheckpointError(f"{path}: does not fit this model ({str(err).splitlines()[0]})") from None
    generator.set_state(tensors["rng.train"])
    torch.set_rng_state(tensors["rng.torch"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])
    return Progress(**meta["progress"])
