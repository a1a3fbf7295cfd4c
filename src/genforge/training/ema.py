"""Exponential moving average of weights: the weights that get exported and sampled."""
from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """Keeps a frozen copy of a module whose weights trail the trained ones."""

    def __init__(self, module: nn.Module, decay: float):
        self.decay = decay
        self.module = copy.deepcopy(module).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, module: nn.Module, step: int) -> None:
        # Warm-up (as in many DDPM codebases): early averages would otherwise be dominated by init.
        decay = min(self.decay, (1 + step) / (10 + step))
        for ema_p, p in zip(self.module.parameters(), module.parameters()):
            ema_p.lerp_(p.detach(), 1 - decay)
        for ema_b, b in zip(self.module.buffers(), module.buffers()):
            ema_b.copy_(b)
