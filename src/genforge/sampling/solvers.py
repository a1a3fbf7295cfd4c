"""Samplers: pure functions over a denoiser D(x, sigma) -> estimate of clean x.

Each takes the starting noise x (already scaled by sigmas[0]) and a schedule ending in 0, and
returns the final sample. `callback(step, x, denoised, sigma)` gives live previews for free.
Written after k-diffusion's formulation (Crowson), which the EDM paper's algorithms match.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from .guidance import Denoiser
from .noise import SeededNoise

Callback = Callable[[int, torch.Tensor, torch.Tensor, torch.Tensor], None] | None


def _denoise(denoiser: Denoiser, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    return denoiser(x, sigma.expand(x.shape[0]))


@torch.no_grad()
def sample_euler(denoiser: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, *,
                 noise: SeededNoise | None = None, callback: Callback = None) -> torch.Tensor:
    """First-order ODE solver (EDM eq. 4 with Euler steps): one evaluation per step."""
    for i in range(len(sigmas) - 1):
        denoised = _denoise(denoiser, x, sigmas[i])
        if callback:
            callback(i, x, denoised, sigmas[i])
        x = x + (x - denoised) / sigmas[i] * (sigmas[i + 1] - sigmas[i])
    return x


@torch.no_grad()
def sample_heun(denoiser: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, *,
                noise: SeededNoise | None = None, callback: Callback = None) -> torch.Tensor:
    """EDM Algorithm 1 (deterministic): Euler step, then a trapezoidal correction unless sigma is 0."""
    for i in range(len(sigmas) - 1):
        denoised = _denoise(denoiser, x, sigmas[i])
        if callback:
            callback(i, x, denoised, sigmas[i])
        d = (x - denoised) / sigmas[i]
        dt = sigmas[i + 1] - sigmas[i]
        x_next = x + d * dt
        if sigmas[i + 1] > 0:
            d_next = (x_next - _denoise(denoiser, x_next, sigmas[i + 1])) / sigmas[i + 1]
            x_next = x + (d + d_next) / 2 * dt
        x = x_next
    return x


@torch.no_grad()
def sample_dpmpp_2m(denoiser: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, *,
                    noise: SeededNoise | None = None, callback: Callback = None) -> torch.Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022): second-order multistep in log-sigma, first order at the ends."""
    previous = None
    for i in range(len(sigmas) - 1):
        denoised = _denoise(denoiser, x, sigmas[i])
        if callback:
            callback(i, x, denoised, sigmas[i])
        if sigmas[i + 1] == 0:
            x = denoised  # the exponential integrator's limit as the next sigma goes to 0
        else:
            h = sigmas[i].log() - sigmas[i + 1].log()  # step in lambda = -log(sigma)
            estimate = denoised
            if previous is not None:
                r = (sigmas[i - 1].log() - sigmas[i].log()) / h
                estimate = (1 + 1 / (2 * r)) * denoised - (1 / (2 * r)) * previous
            x = (sigmas[i + 1] / sigmas[i]) * x - torch.expm1(-h) * estimate
        previous = denoised
    return x


def ancestral_step(sigma: torch.Tensor, sigma_next: torch.Tensor,
                   eta: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(sigma_down, sigma_up): a deterministic step to sigma_down plus fresh noise of size sigma_up."""
    if sigma_next == 0:
        return sigma_next, sigma_next
    sigma_up = torch.minimum(sigma_next, eta * (sigma_next**2 * (sigma**2 - sigma_next**2)
                                                / sigma**2).sqrt())
    return (sigma_next**2 - sigma_up**2).sqrt(), sigma_up


@torch.no_grad()
def sample_euler_ancestral(denoiser: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, *,
                           noise: SeededNoise | None = None, callback: Callback = None,
                           eta: float = 1.0) -> torch.Tensor:
    """Ancestral sampling: an Euler step down, then new per-sample noise back up (a stochastic SDE solver)."""
    if noise is None:
        raise ValueError("the ancestral sampler needs a noise source (SeededNoise)")
    for i in range(len(sigmas) - 1):
        denoised = _denoise(denoiser, x, sigmas[i])
        if callback:
            callback(i, x, denoised, sigmas[i])
        sigma_down, sigma_up = ancestral_step(sigmas[i], sigmas[i + 1], eta)
        x = x + (x - denoised) / sigmas[i] * (sigma_down - sigmas[i])
        if sigmas[i + 1] > 0:
            x = x + noise(x.shape[1:]).to(x) * sigma_up
    return x


SAMPLERS = {
    "euler": sample_euler,
    "heun": sample_heun,
    "dpmpp-2m": sample_dpmpp_2m,
    "euler-ancestral": sample_euler_ancestral,
}

# Network evaluations per step, to report cost honestly (Heun evaluates twice except at the end).
EVALS_PER_STEP = {"euler": 1, "heun": 2, "dpmpp-2m": 1, "euler-ancestral": 1}
