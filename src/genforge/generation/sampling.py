"""Sampling shared by every kind of generation: n items from a module in batches, item i from
seed i whatever the batch size, with the family's declared options; and the latent walk."""
from __future__ import annotations

from dataclasses import asdict
from typing import Any

import torch

from .. import progress
from ..families import Family, ModelSpec, sampling_options
from ..modalities import modality_for
from ..training.devices import autocast


def resolve_sampling(family: Family, spec: ModelSpec | None, **given: Any) -> dict[str, Any]:
    """The sampling options a call runs with, as a record: the family's declared defaults, the
    content kind's, then the given ones (None: not given); refused by name where undeclared."""
    return asdict(sampling_options(family, spec, given))


def generate_items(family: Family, module: torch.nn.Module, spec: ModelSpec, config, n: int, *,
                   seed: int, labels: torch.Tensor | None, batch_size: int = 64,
                   device: torch.device | str = "cpu", latents: torch.Tensor | None = None,
                   seeds: list[int] | None = None, precision: str = "fp32",
                   **options: Any) -> torch.Tensor:
    """n integer items from a module; item i uses seed + i (or seeds[i]) whatever the batch size.

    options are the family's sampling options (see resolve_sampling); latents, one row per item,
    replace the seeds' own starting latents; precision: fp32 or bf16 (autocast). Reports a
    "sample" progress task.
    """
    modality = modality_for(spec)
    options = resolve_sampling(family, spec, **options)
    seeds = seeds if seeds is not None else list(range(seed, seed + n))
    chunks = []
    with progress.task("sample", total=n, unit="item", **options) as task:
        for start in range(0, n, batch_size):
            stop = min(n, start + batch_size)
            with autocast(precision, torch.device(device)):
                x = family.sample(module, seeds[start:stop],
                                  None if labels is None else labels[start:stop],
                                  item_shape=spec.model_shape, device=device, config=config,
                                  spec=spec,
                                  latents=None if latents is None else latents[start:stop],
                                  **options)
            chunks.append(modality.from_model((x.float() if x.is_floating_point() else x).cpu()))
            task.update(stop)
    return torch.cat(chunks)


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation between two Gaussian latents: intermediate points keep the norm a
    Gaussian sample has (a straight line through the middle would pass through unlikely latents)."""
    if t in (0, 1):  # exactly the keyframes, so a walk starts at its seed's own sample
        return (a if t == 0 else b).clone()
    a_flat, b_flat = a.flatten().double(), b.flatten().double()
    cos = torch.dot(a_flat, b_flat) / (a_flat.norm() * b_flat.norm())
    omega = torch.arccos(cos.clamp(-1, 1))
    if omega.abs() < 1e-6:
        return ((1 - t) * a + t * b)
    mixed = (torch.sin((1 - t) * omega) * a_flat + torch.sin(t * omega) * b_flat) / torch.sin(omega)
    return mixed.reshape(a.shape).to(a.dtype)
