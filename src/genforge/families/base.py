"""What a model family gives the training loop: modules, phases and a way to sample.

The loop runs phases without knowing what they compute; a GAN family will supply generator,
discriminator and regularisation phases through the same seam.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn


@dataclass(frozen=True)
class ModelSpec:
    """What the data decided about the model: the item shape and the classes."""

    modality: str
    item_shape: tuple[int, ...]
    class_names: tuple[str, ...] = ()

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to_dict(self) -> dict[str, Any]:
        return {"modality": self.modality, "item_shape": list(self.item_shape),
                "class_names": list(self.class_names)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelSpec":
        return cls(d["modality"], tuple(int(s) for s in d["item_shape"]),
                   tuple(d.get("class_names", ())))


# loss(module, batch, labels, generator) -> scalar loss for one micro-batch
LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor | None, torch.Generator], torch.Tensor]


@dataclass
class Phase:
    """One kind of optimiser step: which parameters it trains, its loss and how often it runs."""

    name: str
    parameters: Callable[[nn.Module], list[nn.Parameter]]
    loss: LossFn
    interval: int = 1
    lr_scale: float = 1.0


class Family(Protocol):
    """A model family: builds the trained module, lists its phases, samples from the exported part."""

    name: str

    def build(self, spec: ModelSpec, config) -> nn.Module:
        """The module trained by the loop (and EMA-averaged)."""

    def phases(self, config) -> list[Phase]:
        """The optimiser steps of one training iteration."""

    def sample(self, module: nn.Module, seeds: list[int], class_labels: torch.Tensor | None,
               **options) -> torch.Tensor:
        """Float samples in the model's range, one per seed."""
