"""Inpainting: sampling with some entries known (RePaint, Lugmayr et al. 2022, with EDM sigmas).

At every noise level the known entries are replaced by their clean values noised to that level,
so the denoiser sees a consistent noisy whole and fills in the rest to match; the denoiser's
estimate is also given the known values exactly. `resample` > 1 repeats each step after adding
back the noise just removed (RePaint's resampling), which gives the unknown part more chances to
agree with the known part. Pure: the result depends only on the inputs and the noise source.
"""
from __future__ import annotations

import torch

from .guidance import Denoiser
from .noise import SeededNoise
from .solvers import Callback, ancestral_step


def _noised(known: torch.Tensor, sigma: torch.Tensor, noise: SeededNoise, like: torch.Tensor):
    return known + noise(like.shape[1:]).to(like) * sigma


@torch.no_grad()
def sample_inpaint(denoiser: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, known: torch.Tensor,
                   mask: torch.Tensor, *, noise: SeededNoise, eta: float = 1.0,
                   resample: int = 1, callback: Callback = None) -> torch.Tensor:
    """Sample with x[mask] fixed to known[mask]: replacement at each step, then an Euler step
    (eta 0) or an ancestral step (eta 1, RePaint's own); `mask` is bool and broadcasts to x.

    x is the starting noise already scaled by sigmas[0]; sigmas end in 0. The known entries of the
    result equal `known` exactly.
    """
    if resample < 1:
        raise ValueError(f"resample must be at least 1, got {resample}")
    mask = mask.to(torch.bool).to(x.device).expand_as(x)
    known = known.to(x)
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        x = torch.where(mask, _noised(known, sigma, noise, x), x)
        for r in range(resample):
            denoised = torch.where(mask, known, denoiser(x, sigma.expand(x.shape[0])))
            if callback and r == 0:
                callback(i, x, denoised, sigma)
            sigma_down, sigma_up = ancestral_step(sigma, sigma_next, eta)
            x_next = x + (x - denoised) / sigma * (sigma_down - sigma)
            if sigma_next > 0 and eta > 0:
                x_next = x_next + noise(x.shape[1:]).to(x) * sigma_up
            x_next = torch.where(mask, _noised(known, sigma_next, noise, x), x_next)
            if r + 1 < resample and sigma_next > 0:
                # jump back up to sigma: the noise a forward diffusion from sigma_next would add
                x = x_next + noise(x.shape[1:]).to(x) * (sigma**2 - sigma_next**2).sqrt()
        x = x_next
    return torch.where(mask, known, x)  # exact: no rounding from the last noising step
