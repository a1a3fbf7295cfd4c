"""The diffusion family: EDM preconditioned U-Net, EDM training loss, sampling with any solver."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..augment import AUGMENT_LABEL_DIM, nonleaking_augment
from ..config import RunConfig
from ..modalities import modality_for
from ..models.precond import EDMDenoiser, NoiseUncertainty
from ..models.unet import UNet
from ..options import Check, Declared, between, build, option
from ..sampling import SAMPLERS, SeededNoise, classifier_free, conditional, karras_sigmas
from ..sampling.inpaint import sample_inpaint
from .base import ModelSpec, Phase

MAX_STEPS = 1000


@dataclass(frozen=True)
class DiffusionSampling(Declared):
    """How a diffusion model samples: the solver, its steps, classifier-free guidance."""

    sampler: str = option("dpmpp-2m", "ODE/SDE solver on a Karras noise schedule: euler, heun "
                          "(2 evaluations a step), dpmpp-2m, euler-ancestral (stochastic)",
                          choices=tuple(SAMPLERS))
    steps: int = option(20, "sampler steps", check=between(1, MAX_STEPS))
    guidance: float = option(1.0, "classifier-free guidance scale (1: none; 2-4 sharpen class "
                             "identity)", check=between(0.0, 100.0))
    guidance_interval: tuple[float, ...] = option(
        (), "guide only at noise levels LOW < sigma <= HIGH, given as LOW,HIGH (none: at every "
        "level); outside it a step costs one evaluation", check=Check(
            lambda v: not v or (len(v) == 2 and 0 <= v[0] < v[1]),
            "none, or two noise levels LOW,HIGH with 0 <= LOW < HIGH"))


@dataclass(frozen=True)
class DiffusionInpainting(Declared):
    """How a diffusion model fills in around given entries (RePaint with EDM's noise levels)."""

    steps: int = option(32, "sampling steps", check=between(1, MAX_STEPS))
    resample: int = option(2, "RePaint's resampling: repeat each step this often so the free "
                           "entries agree with the given ones", check=between(1, 20))


def build_denoiser(spec: ModelSpec, config: RunConfig) -> EDMDenoiser:
    """The raw U-Net sized by the config and the data, wrapped into an EDM denoiser."""
    n = config.network
    channels, height, width = spec.model_shape
    net = UNet(channels, n.model_channels, n.channel_mult, n.num_blocks, n.attn_resolutions,
               n.dropout, num_classes=spec.num_classes, resolution=max(height, width),
               patch_size=n.patch_size,
               augment_dim=AUGMENT_LABEL_DIM if config.augment.augment == "nonleaking" else 0)
    uncertainty = NoiseUncertainty() if config.diffusion.loss_weighting == "learned" else None
    return EDMDenoiser(net, config.diffusion.sigma_data, uncertainty)


def edm_loss(denoiser: nn.Module, images: torch.Tensor, labels: torch.Tensor | None,
             generator: torch.Generator, p_mean: float, p_std: float,
             label_dropout: float, augment_p: float = 0.0) -> torch.Tensor:
    """EDM training loss (Karras et al. 2022, eq. 8 with lambda = 1/c_out^2), with label dropout
    and, when augment_p > 0, non-leaking augmentation given to the network as conditioning.

    A denoiser with an uncertainty head trains on EDM2's loss instead (Karras et al. 2024):
    lambda / exp(u(sigma)) * the item's mean squared error + u(sigma), where u learns the loss's
    log-magnitude at each noise level, so each level pulls about as hard as the others (measured:
    at cpu-small on Fashion-MNIST, 1,762 steps, FD-fashion-mnist 0.302 against 0.411;
    benchmarks/README.md). Its value is EDM's loss (the gradient is EDM2's), so logs, health
    checks and runs stay comparable."""
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
    squared = (denoised - images) ** 2
    loss = (weight * squared).mean()
    if getattr(denoiser, "uncertainty", None) is None:
        return loss
    u = denoiser.uncertainty(sigma)
    learned = (weight.flatten() * squared.flatten(1).mean(1) / u.exp() + u).mean()
    return learned + (loss - learned).detach()  # EDM2's gradient, EDM's value


class DiffusionFamily:
    name = "diffusion"
    sampling = DiffusionSampling
    inpainting = DiffusionInpainting

    def supports(self, modality) -> str | None:
        return None  # any tensor: images as they are, symbols as one-hot planes

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
               spec: ModelSpec | None = None, callback=None, **options) -> torch.Tensor:
        """Samples for the given seeds: sample i depends only on seeds[i] and class_labels[i].

        latents (unit-variance starting noise, one row per seed) replace the seeds' own; with a
        deterministic sampler they make the output a smooth function of the latent.
        """
        o = build(DiffusionSampling, options)
        d = config.diffusion if config is not None else RunConfig().diffusion
        sigmas = karras_sigmas(o.steps, d.sigma_min, d.sigma_max).to(device)
        noise, x, denoiser = sampling_start(module, seeds, class_labels, item_shape, latents,
                                            sigmas[0], o.guidance, device, o.guidance_interval)
        return SAMPLERS[o.sampler](denoiser, x, sigmas, noise=noise, callback=callback)

    @torch.no_grad()
    def inpaint(self, module: EDMDenoiser, seeds: list[int], given: torch.Tensor,
                given_mask: torch.Tensor, *, spec: ModelSpec, config: RunConfig,
                device: torch.device | str = "cpu", **options) -> torch.Tensor:
        """RePaint-style replacement (sampling.inpaint) in the model space, from the model's own
        noise range (the kind may start lower: Modality.inpaint_sigma_max); the given entries
        are forced back exactly at the end."""
        o = build(DiffusionInpainting, options)
        modality = modality_for(spec)
        d = config.diffusion
        sigma_max = min(d.sigma_max, modality.inpaint_sigma_max or d.sigma_max)
        sigmas = karras_sigmas(o.steps, d.sigma_min, sigma_max).to(device)
        return inpaint_items(conditional(module, None), modality, given, given_mask, seeds,
                             sigmas=sigmas, resample=o.resample, device=device)


def sampling_start(module: nn.Module, seeds: list[int], class_labels: torch.Tensor | None,
                   item_shape: tuple[int, ...], latents: torch.Tensor | None,
                   sigma_start: torch.Tensor, guidance: float, device,
                   guidance_interval: tuple[float, ...] = ()):
    """(the seeds' noise source, the starting x at sigma_start, the denoiser D(x, sigma) with
    the labels and guidance bound): what every sampler of a denoiser starts from."""
    noise = SeededNoise(seeds, device)
    x = noise(item_shape)  # drawn even when replaced, so later noise is the seed's own
    x = (x if latents is None else latents.to(device).float()) * sigma_start
    if class_labels is not None and guidance != 1.0:
        denoiser = classifier_free(module, class_labels.to(device), guidance, guidance_interval)
    else:
        denoiser = conditional(module, None if class_labels is None else class_labels.to(device))
    return noise, x, denoiser


@torch.no_grad()
def inpaint_items(denoiser, modality, given: torch.Tensor, given_mask: torch.Tensor,
                  seeds: list[int], *, sigmas: torch.Tensor, resample: int = 1,
                  device: torch.device | str = "cpu") -> torch.Tensor:
    """Integer items [N, ...] around the given entries, from a denoiser D(x, sigma) in the kind's
    model space (bind labels with sampling.conditional); item i depends only on seeds[i]."""
    known = modality.to_model(given).to(device)
    mask = modality.model_mask(given_mask.bool()).to(device)
    noise = SeededNoise(seeds, device)
    x = noise(known.shape[1:]) * sigmas[0]
    x = sample_inpaint(denoiser, x, sigmas, known, mask, noise=noise, resample=resample)
    return modality.force_given(modality.from_model(x.cpu()), given, given_mask)


__all__ = ["DiffusionFamily", "DiffusionSampling", "DiffusionInpainting", "build_denoiser",
           "edm_loss", "inpaint_items", "sampling_start"]
