"""The diffusion family: EDM preconditioned U-Net, EDM training loss, sampling with any solver."""
from __future__ import annotations

import torch
from torch import nn

from ..config import RunConfig
from ..errors import ConfigError
from ..models.precond import EDMDenoiser
from ..models.unet import UNet
from ..sampling import SAMPLERS, SeededNoise, classifier_free, conditional, karras_sigmas
from .base import ModelSpec, Phase

DEFAULT_SAMPLER, DEFAULT_STEPS = "dpmpp-2m", 20


def build_denoiser(spec: ModelSpec, config: RunConfig) -> EDMDenoiser:
    """The raw U-Net sized by the config and the data, wrapped into an EDM denoiser."""
    n = config.network
    channels, height, width = spec.item_shape
    net = UNet(channels, n.model_channels, n.channel_mult, n.num_blocks, n.attn_resolutions,
               n.dropout, num_classes=spec.num_classes, resolution=max(height, width),
               patch_size=n.patch_size)
    return EDMDenoiser(net, config.diffusion.sigma_data)


def edm_loss(denoiser: nn.Module, images: torch.Tensor, labels: torch.Tensor | None,
             generator: torch.Generator, p_mean: float, p_std: float,
             label_dropout: float) -> torch.Tensor:
    """EDM training loss (Karras et al. 2022, eq. 8 with lambda = 1/c_out^2), with label dropout."""
    b, device = images.shape[0], images.device
    log_sigma = torch.randn(b, device=device, generator=generator) * p_std + p_mean
    sigma = log_sigma.exp()
    noise = torch.randn(images.shape, device=device, generator=generator) * sigma[:, None, None, None]
    if labels is not None and label_dropout > 0:
        drop = torch.rand(b, device=device, generator=generator) < label_dropout
        labels = torch.where(drop, -1, labels)  # -1: the "no class" embedding, for guidance
    sd = denoiser.sigma_data
    weight = ((sigma**2 + sd**2) / (sigma * sd) ** 2)[:, None, None, None]
    denoised = denoiser(images + noise, sigma, labels)
    return (weight * (denoised - images) ** 2).mean()


class DiffusionFamily:
    name = "diffusion"

    def build(self, spec: ModelSpec, config: RunConfig) -> nn.Module:
        return build_denoiser(spec, config)

    def phases(self, config: RunConfig) -> list[Phase]:
        d = config.diffusion

        def loss(module, images, labels, generator):
            return edm_loss(module, images, labels, generator, d.p_mean, d.p_std, d.label_dropout)

        return [Phase("denoise", lambda module: list(module.parameters()), loss)]

    @torch.no_grad()
    def sample(self, module: EDMDenoiser, seeds: list[int], class_labels: torch.Tensor | None,
               *, sampler: str = DEFAULT_SAMPLER, steps: int = DEFAULT_STEPS,
               guidance: float = 1.0, sigma_min: float = 0.002, sigma_max: float = 80.0,
               item_shape: tuple[int, ...], device: torch.device | str = "cpu",
               callback=None) -> torch.Tensor:
        """Samples for the given seeds: sample i depends only on seeds[i] and class_labels[i]."""
        if sampler not in SAMPLERS:
            raise ConfigError(f"unknown sampler {sampler!r} (known: {', '.join(SAMPLERS)})")
        if steps < 1:
            raise ConfigError(f"steps must be at least 1, got {steps}")
        noise = SeededNoise(seeds, device)
        sigmas = karras_sigmas(steps, sigma_min, sigma_max).to(device)
        x = noise(item_shape) * sigmas[0]
        if class_labels is not None and guidance != 1.0:
            denoiser = classifier_free(module, class_labels.to(device), guidance)
        else:
            denoiser = conditional(module, None if class_labels is None else class_labels.to(device))
        return SAMPLERS[sampler](denoiser, x, sigmas, noise=noise, callback=callback)


FAMILIES = {"diffusion": DiffusionFamily()}
