"""The diffusion samplers of genforge.sampling in numpy float32: Karras sigmas, Euler, Heun,
DPM-Solver++(2M), Euler ancestral, and classifier-free guidance as a denoiser that wraps another.
Each line follows its PyTorch twin (sampling/solvers.py), so equal inputs give equal outputs to
float rounding (tests/test_onnx_runtime.py)."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .noise import SeedStreams

Denoiser = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (x [B, ...], sigma [B]) -> x0
F32 = np.float32


def karras_sigmas(steps: int, sigma_min: float = 0.002, sigma_max: float = 80.0,
                  rho: float = 7.0) -> np.ndarray:
    """Karras et al. (2022) eq. 5, computed in float64 then float32, ending in 0."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    ramp = np.linspace(0, 1, steps, dtype=np.float64)
    min_inv, max_inv = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    sigmas = (max_inv + ramp * (min_inv - max_inv)) ** rho
    return np.concatenate([sigmas, [0.0]]).astype(F32)


def conditional(model: Callable, labels: np.ndarray | None) -> Denoiser:
    """Bind class labels (None or -1: unconditional) to model(x, sigma, labels)."""
    return lambda x, sigma: model(x, sigma, labels)


def classifier_free(model: Callable, labels: np.ndarray, scale: float,
                    interval: tuple[float, ...] = ()) -> Denoiser:
    """D_u + scale (D_c - D_u), both halves in one batch, only where low < sigma <= high when an
    interval is given (sampling/guidance.py)."""
    if scale == 1.0:
        return conditional(model, labels)
    unconditional = np.full_like(labels, -1)

    def guided(x, sigma):
        if len(interval) and not interval[0] < float(sigma[0]) <= interval[1]:
            return model(x, sigma, labels)
        both = model(np.concatenate([x, x]), np.concatenate([sigma, sigma]),
                     np.concatenate([labels, unconditional]))
        cond, uncond = np.split(both, 2)
        return uncond + F32(scale) * (cond - uncond)

    return guided


def _denoise(denoiser: Denoiser, x: np.ndarray, sigma) -> np.ndarray:
    return denoiser(x, np.full((x.shape[0],), sigma, dtype=F32))


def sample_euler(denoiser, x, sigmas, *, noise=None):
    for i in range(len(sigmas) - 1):
        denoised = _denoise(denoiser, x, sigmas[i])
        x = x + (x - denoised) / sigmas[i] * (sigmas[i + 1] - sigmas[i])
    return x


def sample_heun(denoiser, x, sigmas, *, noise=None):
    for i in range(len(sigmas) - 1):
        denoised = _denoise(denoiser, x, sigmas[i])
        d = (x - denoised) / sigmas[i]
        dt = sigmas[i + 1] - sigmas[i]
        x_next = x + d * dt
        if sigmas[i + 1] > 0:
            d_next = (x_next - _denoise(denoiser, x_next, sigmas[i + 1])) / sigmas[i + 1]
            x_next = x + (d + d_next) / F32(2) * dt
        x = x_next
    return x


def sample_dpmpp_2m(denoiser, x, sigmas, *, noise=None):
    previous = None
    for i in range(len(sigmas) - 1):
        denoised = _denoise(denoiser, x, sigmas[i])
        if sigmas[i + 1] == 0:
            x = denoised
        else:
            h = np.log(sigmas[i]) - np.log(sigmas[i + 1])
            estimate = denoised
            if previous is not None:
                r = (np.log(sigmas[i - 1]) - np.log(sigmas[i])) / h
                estimate = (F32(1) + F32(1) / (F32(2) * r)) * denoised - (F32(1) / (F32(2) * r)) * previous
            x = (sigmas[i + 1] / sigmas[i]) * x - np.expm1(-h) * estimate
        previous = denoised
    return x


def ancestral_step(sigma, sigma_next, eta: float = 1.0):
    """(sigma_down, sigma_up), as solvers.ancestral_step."""
    if sigma_next == 0:
        return sigma_next, sigma_next
    sigma_up = np.minimum(sigma_next, F32(eta) * np.sqrt(sigma_next**2 * (sigma**2 - sigma_next**2)
                                                         / sigma**2))
    return np.sqrt(sigma_next**2 - sigma_up**2), sigma_up


def sample_euler_ancestral(denoiser, x, sigmas, *, noise: SeedStreams | None = None, eta=1.0):
    if noise is None:
        raise ValueError("the ancestral sampler needs a noise source")
    for i in range(len(sigmas) - 1):
        denoised = _denoise(denoiser, x, sigmas[i])
        sigma_down, sigma_up = ancestral_step(sigmas[i], sigmas[i + 1], eta)
        x = x + (x - denoised) / sigmas[i] * (sigma_down - sigmas[i])
        if sigmas[i + 1] > 0:
            x = x + noise(x.shape[1:]) * sigma_up
    return x


def consistency_sigmas(steps: int, sigma_max: float, mid_sigma: float) -> np.ndarray:
    """[sigma_max, mid_sigma (2 steps), 0], as sampling/consistency.py."""
    return np.array([sigma_max, *([mid_sigma] if steps == 2 else []), 0.0], dtype=F32)


def sample_consistency(denoiser, x, sigmas, *, noise: SeedStreams | None = None):
    """A consistency-tuned model: map to a sample; each further level re-noises and maps again."""
    if len(sigmas) > 2 and noise is None:
        raise ValueError("multistep consistency sampling needs a noise source")
    for i in range(len(sigmas) - 1):
        if i > 0:
            x = x + noise(x.shape[1:]) * sigmas[i]
        x = _denoise(denoiser, x, sigmas[i])
    return x


SAMPLERS = {"euler": sample_euler, "heun": sample_heun, "dpmpp-2m": sample_dpmpp_2m,
            "euler-ancestral": sample_euler_ancestral, "consistency": sample_consistency}
