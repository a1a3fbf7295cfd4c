"""EDM preconditioning (Karras et al. 2022, Table 1): turns a raw network into a denoiser D(x, sigma).

D(x; sigma) = c_skip(sigma) x + c_out(sigma) F(c_in(sigma) x; c_noise(sigma)). Only this wrapper
knows the maths of the method; samplers see a denoiser and the network sees tensors.
"""
from __future__ import annotations

import math

import torch
from torch import nn


def edm_scalings(sigma: torch.Tensor, sigma_data: float) -> tuple[torch.Tensor, ...]:
    """(c_skip, c_out, c_in, c_noise) for noise levels sigma (any shape)."""
    c_skip = sigma_data**2 / (sigma**2 + sigma_data**2)
    c_out = sigma * sigma_data / (sigma**2 + sigma_data**2).sqrt()
    c_in = 1 / (sigma_data**2 + sigma**2).sqrt()
    c_noise = sigma.log() / 4
    return c_skip, c_out, c_in, c_noise


class NoiseUncertainty(nn.Module):
    """u(sigma), the learned log-uncertainty of the loss at a noise level (EDM2, Karras et al.
    2024): a linear map of fixed random Fourier features of ln(sigma) / 4, starting at 0.
    Only training reads it; the denoiser's output never depends on it."""

    def __init__(self, channels: int = 128, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("freqs", 2 * math.pi * torch.randn(channels, generator=g))
        self.register_buffer("phases", 2 * math.pi * torch.rand(channels, generator=g))
        self.linear = nn.Linear(channels, 1)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, sigma: torch.Tensor) -> torch.Tensor:
        x = (sigma.float().log() / 4)[:, None]
        return self.linear(torch.cos(x * self.freqs + self.phases) * math.sqrt(2))[:, 0].float()


class EDMDenoiser(nn.Module):
    """A denoiser: noisy x and per-sample sigma in, estimate of the clean x out (float32).
    uncertainty (NoiseUncertainty) rides along for a loss that learns its weighting."""

    def __init__(self, net: nn.Module, sigma_data: float = 0.5,
                 uncertainty: NoiseUncertainty | None = None):
        super().__init__()
        self.net = net
        self.sigma_data = sigma_data
        self.uncertainty = uncertainty

    @property
    def num_classes(self) -> int:
        return getattr(self.net, "num_classes", 0)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor,
                class_labels: torch.Tensor | None = None,
                augment_labels: torch.Tensor | None = None) -> torch.Tensor:
        x = x.float()
        # expand, not a branch on numel: one sigma or one per sample, with no size-1 special case
        # for a traced (ONNX) graph to freeze
        sigma = torch.as_tensor(sigma, dtype=torch.float32, device=x.device).reshape(-1)
        sigma = sigma.expand(x.shape[0])
        c_skip, c_out, c_in, c_noise = (c.reshape(-1, 1, 1, 1)
                                        for c in edm_scalings(sigma, self.sigma_data))
        f = (self.net(c_in * x, c_noise.flatten(), class_labels) if augment_labels is None
             else self.net(c_in * x, c_noise.flatten(), class_labels, augment_labels))
        return c_skip * x + c_out * f.float()
