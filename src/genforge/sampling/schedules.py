"""Noise schedules: pure functions returning a decreasing tensor of sigmas that ends in 0."""
from __future__ import annotations

import torch


def karras_sigmas(steps: int, sigma_min: float = 0.002, sigma_max: float = 80.0,
                  rho: float = 7.0) -> torch.Tensor:
    """Karras et al. (2022) eq. 5: `steps` levels spaced evenly in sigma^(1/rho), then a final 0."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    ramp = torch.linspace(0, 1, steps, dtype=torch.float64)
    min_inv, max_inv = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    sigmas = (max_inv + ramp * (min_inv - max_inv)) ** rho
    return torch.cat([sigmas, sigmas.new_zeros(1)]).float()
