"""Consistency sampling (Song et al. 2023, Algorithm 1): a consistency function f(x, sigma) maps
any noisy point straight to its clean end, so one evaluation makes a sample; each further step
adds fresh noise at a lower level and maps it back again. Pure, like the other samplers: it works
on any denoiser D(x, sigma) (an EDM denoiser *is* a consistency function once tuned: c_skip(0) = 1
and c_out(0) = 0 give the boundary condition f(x, 0) = x).
"""
from __future__ import annotations

import torch

from .guidance import Denoiser
from .noise import SeededNoise
from .solvers import Callback

# The intermediate noise level of two-step sampling. ECT chose 0.821 for CIFAR-10 (Geng et al.
# 2024); on Fashion-MNIST 2.5 beat it for three tuned models of two teachers (FD-fashion-mnist
# 0.87 against 1.03, 0.83 against 1.06, 0.42 against 0.49), and 3.2 beat 2.5, 4 and 5 for three
# tunings of a third (0.712 / 0.638 / 0.654 against 0.714 / 0.662 / 0.678 at 2.5;
# benchmarks/README.md, "Few-step"): the less finished the first estimate, the more of it the
# second evaluation must redo.
MID_SIGMA = 3.2


def consistency_sigmas(steps: int, sigma_max: float = 80.0,
                       mid_sigmas: tuple[float, ...] = (MID_SIGMA,)) -> torch.Tensor:
    """[sigma_max, mid levels..., 0] for `steps` evaluations (1: straight from sigma_max)."""
    if not 1 <= steps <= len(mid_sigmas) + 1:
        raise ValueError(f"steps must be 1 to {len(mid_sigmas) + 1}, got {steps}")
    return torch.tensor([sigma_max, *mid_sigmas[:steps - 1], 0.0])


@torch.no_grad()
def sample_consistency(denoiser: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, *,
                       noise: SeededNoise | None = None, callback: Callback = None) -> torch.Tensor:
    """x (noise scaled by sigmas[0]) -> f(x, sigmas[0]); then for each further level s > 0 of the
    schedule, f(that estimate + s * fresh noise, s). One evaluation per level before the final 0."""
    if len(sigmas) > 2 and noise is None:
        raise ValueError("multistep consistency sampling needs a noise source (SeededNoise)")
    for i in range(len(sigmas) - 1):
        if i > 0:  # back up to this level along a fresh noise direction, per sample
            x = x + noise(x.shape[1:]).to(x) * sigmas[i]
        denoised = denoiser(x, sigmas[i].expand(x.shape[0]))
        if callback:
            callback(i, x, denoised, sigmas[i])
        x = denoised
    return x
