"""The diffusion family: EDM preconditioned U-Net, EDM training loss, sampling with any solver."""
from __future__ import annotations

import torch
from torch import nn

from ..augment import AUGMENT_LABEL_DIM, nonleaking_augment
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
    channels, height, width = spec.model_shape
    net = UNet(channels, n.model_channels, n.channel_mult, n.num_blocks, n.attn_resolutions,
               n.dropout, num_classes=spec.num_classes, resolution=max(height, width),
               patch_size=n.patch_size,
               augment_dim=AUGMENT_LABEL_DIM if config.augment.augment == "nonleaking" else 0)
    return EDMDenoiser(net, config.diffusion.sigma_data)


def edm_loss(denoiser: nn.Module, images: torch.Tensor, labels: torch.Tensor | None,
             generator: torch.Generator, p_mean: float, p_std: float,
             label_dropout: float, augment_p: float = 0.0) -> torch.Tensor:
    """EDM training loss (Karras et al. 2022, eq. 8 with lambda = 1/c_out^2), with label dropout
    and, when augment_p > 0, non-leaking augmentation given to the network as conditioning."""
    b, device = images.shape[0], images.device
    augment_labels = None
    if augment_p > 0:
        images, augment_labels = nonleaking_augment(images, augment_p, generator)
    log_sigma = torch.randn(b, device=device, generator=generator) * p_std + p_mean
    sigma = log_sigma.exp()
    noise = torch.randn(images.shape, device=device, generator=generator) * sigma[:, None, None, None]
    if labels is not None and label_dropout > 0:
        drop = torch.rand(b, device=device, generator=generator) < label_dropout
        labels = torch.where(drop, -1, labels)  # -1: the "no class" embedding, for guidance
    sd = denoiser.sigma_data
    weight = ((sigma**2 + sd**2) / (sigma * sd) ** 2)[:, None, None, None]
    denoised = denoiser(images + noise, sigma, labels, augment_labels)
    return (weight * (denoised - images) ** 2).mean()


class DiffusionFamily:
    name = "diffusion"
    sample_options = {"sampler": DEFAULT_SAMPLER, "steps": DEFAULT_STEPS, "guidance": 1.0}

    def build(self, spec: ModelSpec, config: RunConfig) -> nn.Module:
        return build_denoiser(spec, config)

    def exported(self, module: nn.Module) -> nn.Module:
        return module

    def phases(self, config: RunConfig, spec: ModelSpec) -> list[Phase]:
        d = config.diffusion
        augment_p = config.augment.augment_p if config.augment.augment == "nonleaking" else 0.0

        def loss(module, images, labels, generator):
            return edm_loss(module, images, labels, generator, d.p_mean, d.p_std, d.label_dropout,
                            augment_p)

        return [Phase("denoise", lambda module: list(module.parameters()), loss)]

    def stats(self, module: nn.Module) -> dict[str, float]:
        return {}

    def latent_shape(self, module: nn.Module, item_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The shape of one sample's starting noise (what interpolation moves through)."""
        return tuple(item_shape)

    @torch.no_grad()
    def sample(self, module: EDMDenoiser, seeds: list[int], class_labels: torch.Tensor | None,
               *, item_shape: tuple[int, ...], device: torch.device | str = "cpu",
               config: RunConfig | None = None, latents: torch.Tensor | None = None,
               spec: ModelSpec | None = None, sampler: str = DEFAULT_SAMPLER, steps: int = DEFAULT_STEPS,
               guidance: float = 1.0, sigma_min: float | None = None,
               sigma_max: float | None = None, callback=None) -> torch.Tensor:
        """Samples for the given seeds: sample i depends only on seeds[i] and class_labels[i].

        latents (unit-variance starting noise, one row per seed) replace the seeds' own; with a
        deterministic sampler they make the output a smooth function of the latent.
        """
        d = config.diffusion if config is not None else RunConfig().diffusion
        sigma_min = d.sigma_min if sigma_min is None else sigma_min
        sigma_max = d.sigma_max if sigma_max is None else sigma_max
        if sampler not in SAMPLERS:
            raise ConfigError(f"unknown sampler {sampler!r} (known: {', '.join(SAMPLERS)})")
        if steps < 1:
            raise ConfigError(f"steps must be at least 1, got {steps}")
        noise = SeededNoise(seeds, device)
        sigmas = karras_sigmas(steps, sigma_min, sigma_max).to(device)
        x = noise(item_shape)  # drawn even when replaced, so later (ancestral) noise is the seed's own
        x = (x if latents is None else latents.to(device).float()) * sigmas[0]
        if class_labels is not None and guidance != 1.0:
            denoiser = classifier_free(module, class_labels.to(device), guidance)
        else:
            denoiser = conditional(module, None if class_labels is None else class_labels.to(device))
        return SAMPLERS[sampler](denoiser, x, sigmas, noise=noise, callback=callback)

