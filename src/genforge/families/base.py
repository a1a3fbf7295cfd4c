"""What a model family gives the training loop: modules, phases and a way to sample.

The loop runs phases without knowing what they compute; a GAN family will supply generator,
discriminator and regularisation phases through the same seam.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn



@dataclass(frozen=True)
class ModelSpec:
    """What the data decided about the model: the item shape, the classes, the shape of the
    tensors the networks see (one-hot tiles or notes are wider than their integer items; images
    are the same) and what the content kind needs to decode items (a level's tile set)."""

    modality: str
    item_shape: tuple[int, ...]
    class_names: tuple[str, ...] = ()
    tensor_shape: tuple[int, ...] | None = None   # None: the item shape
    vocabulary: dict[str, Any] = field(default_factory=dict, hash=False)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def model_shape(self) -> tuple[int, ...]:
        """The shape of one item as the networks see it."""
        return self.tensor_shape or self.item_shape

    def to_dict(self) -> dict[str, Any]:
        d = {"modality": self.modality, "item_shape": list(self.item_shape),
             "class_names": list(self.class_names)}
        if self.tensor_shape is not None:  # older configs have neither key
            d["model_shape"] = list(self.tensor_shape)
        if self.vocabulary:
            d["vocabulary"] = self.vocabulary
        return d

    @classmethod
    def for_dataset(cls, dataset, modality) -> "ModelSpec":
        """What a dataset decides about the model, its content kind bound to its vocabulary."""
        modality = modality.bind(dataset.vocabulary)
        shape = modality.model_shape(dataset.item_shape)
        labelled = dataset.labels is not None
        return cls(modality.name, dataset.item_shape,
                   tuple(dataset.class_names) if labelled else (),
                   None if shape == dataset.item_shape else shape, dict(dataset.vocabulary))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelSpec":
        """Inverse of to_dict for a config read from a file: CheckpointError naming the field
        when a value has the wrong type or an absurd size (the caller names the file)."""
        import math  # here, not at the top: this method is all this change touches

        from ..errors import CheckpointError
        max_side, max_values, max_classes = 1 << 16, 1 << 26, 100_000  # far past any real model

        def shape(field: str) -> tuple[int, ...]:
            value = d.get(field)
            sizes_ok = isinstance(value, (list, tuple)) and 1 <= len(value) <= 4 and all(
                type(v) is int and 1 <= v <= max_side for v in value)  # type(): True is no size
            if not sizes_ok or math.prod(value) > max_values:
                raise CheckpointError(f"{field} must list 1 to 4 sizes from 1 to {max_side} "
                                      f"({max_values} values at most), got {value!r:.60}")
            return tuple(value)

        if not isinstance(d, dict):
            raise CheckpointError(f"a model spec is a JSON object, got {type(d).__name__}")
        modality, names = d.get("modality"), d.get("class_names", [])
        if not isinstance(modality, str) or not modality:
            raise CheckpointError(f"modality must name a content kind, got {modality!r:.40}")
        if not isinstance(names, (list, tuple)) or len(names) > max_classes or not all(
                isinstance(n, str) for n in names):
            raise CheckpointError(f"class_names must list at most {max_classes} strings, "
                                  f"got {names!r:.60}")
        vocabulary = d.get("vocabulary", {})
        if not isinstance(vocabulary, dict):
            raise CheckpointError(f"vocabulary must be an object, got {vocabulary!r:.40}")
        return cls(modality, shape("item_shape"), tuple(names),
                   None if d.get("model_shape") is None else shape("model_shape"), dict(vocabulary))


# loss(module, batch, labels, generator) -> scalar loss for one micro-batch
LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor | None, torch.Generator], torch.Tensor]


@dataclass
class Phase:
    """One kind of optimiser step: which parameters it trains, its loss and how often it runs.

    Phases naming the same `optimizer` share one (a GAN's discriminator step and its lazy R1 step
    update the same Adam state, as in StyleGAN2); by default each phase has its own. A loss sees
    one micro-batch; anything it gathers across micro-batches belongs in `gather`, so that the
    result does not depend on how many processes share the step.
    """

    name: str
    parameters: Callable[[nn.Module], list[nn.Parameter]]
    loss: LossFn
    interval: int = 1
    lr_scale: float = 1.0
    optimizer: str | None = None
    betas: tuple[float, float] = (0.9, 0.999)
    # After the phase's micro-batches: fold statistics its losses gathered into the module's
    # state, given a function that sums a tensor over all training processes (ADA's evidence).
    gather: Callable[[nn.Module, Callable[[torch.Tensor], torch.Tensor]], None] | None = None

    @property
    def optimizer_name(self) -> str:
        return self.optimizer or self.name


class Family(Protocol):
    """A model family: builds the trained module, lists its phases, samples from the exported part."""

    name: str
    sampling: type            # its sampling options: a declaring dataclass (genforge.options)
    inpainting: type | None   # its options for inpainting (harmonize, complete); None: cannot

    def supports(self, modality) -> str | None:
        """Why this family cannot model the kind's items, or None when it can."""

    def build(self, spec: ModelSpec, config) -> nn.Module:
        """The module trained by the loop."""

    def exported(self, module: nn.Module) -> nn.Module:
        """The part of the trained module that is EMA-averaged, exported and sampled."""

    def phases(self, config, spec: ModelSpec) -> list[Phase]:
        """The optimiser steps of one training iteration."""

    def stats(self, module: nn.Module) -> dict[str, float]:
        """Family-specific figures for the training log (e.g. the augmentation probability)."""

    def latent_shape(self, module: nn.Module, item_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Shape of one sample's latent: what interpolation moves through."""

    def sample(self, module: nn.Module, seeds: list[int], class_labels: torch.Tensor | None, *,
               item_shape: tuple[int, ...], device, config=None,
               latents: torch.Tensor | None = None, spec: ModelSpec | None = None,
               **options) -> torch.Tensor:
        """Float samples in the model's range, one per seed (latents, if given, replace the
        seeds' own); spec is the model's, sized for this call (a longer piece, say); options are
        the family's declared sampling options (unknown names and bad values refused)."""

    def inpaint(self, module: nn.Module, seeds: list[int], given: torch.Tensor,
                given_mask: torch.Tensor, *, spec: ModelSpec, config, device,
                **options) -> torch.Tensor:
        """Integer items shaped like `given` whose entries under given_mask are the given ones and
        the rest drawn by the model (options: the family's declared inpainting options)."""
