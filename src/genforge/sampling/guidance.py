"""Guidance composes denoisers; samplers never know it exists."""
from __future__ import annotations

from collections.abc import Callable

import torch

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def conditional(model: Callable, class_labels: torch.Tensor | None) -> Denoiser:
    """Bind class labels (None or -1: unconditional) to a model D(x, sigma, labels)."""
    return lambda x, sigma: model(x, sigma, class_labels)


def classifier_free(model: Callable, class_labels: torch.Tensor, scale: float,
                    interval: tuple[float, ...] = ()) -> Denoiser:
    """Classifier-free guidance (Ho & Salimans 2022): D_u + scale * (D_c - D_u), in one batch.

    scale 1 is plain conditional sampling, 0 unconditional; above 1 trades diversity for fidelity.
    interval (low, high): guide only at noise levels low < sigma <= high and evaluate once,
    conditionally, elsewhere (Kynkaanniemi et al. 2024): guidance at high noise crowds samples
    into a few modes and at low noise does little, so limiting it lets a stronger scale sharpen
    the classes without the loss of variety. The samplers give every item of a batch the same
    sigma, so the batch's first decides.
    """
    if scale == 1.0:
        return conditional(model, class_labels)
    unconditional = torch.full_like(class_labels, -1)

    def guided(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        if interval and not interval[0] < float(sigma.reshape(-1)[0]) <= interval[1]:
            return model(x, sigma, class_labels)
        both = model(torch.cat([x, x]), torch.cat([sigma.reshape(-1).expand(len(x))] * 2),
                     torch.cat([class_labels, unconditional]))
        cond, uncond = both.chunk(2)
        return uncond + scale * (cond - uncond)

    return guided
