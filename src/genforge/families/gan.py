"""The GAN family: generator and discriminator phases, lazy R1, augmentation, sampling.

The loop sees three phases (generator, discriminator, R1 regularisation) and one module; the
augmentation probability of ADA lives in that module's buffers, so a checkpoint carries it and a
resumed run continues where it stopped (StyleGAN2-ADA restarts it from zero).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..augment import ada_augment, ada_update, diffaugment
from ..config import RunConfig
from ..errors import ConfigError
from ..models.gan import build_gan
from ..models.stylegan2 import StyleGAN2Generator
from ..options import Declared, between, build, option
from ..sampling import SeededNoise
from .base import ModelSpec, Phase

# Adam betas of StyleGAN2: no momentum for the generator/discriminator game.
GAN_BETAS = (0.0, 0.99)


class GANPair(nn.Module):
    """Generator, discriminator and the state of adaptive discriminator augmentation (ADA)."""

    def __init__(self, generator: nn.Module, discriminator: nn.Module):
        super().__init__()
        self.generator, self.discriminator = generator, discriminator
        self.register_buffer("augment_p", torch.zeros(()))
        # E[sign(D(real))] accumulated since the last adjustment, and its last value (for the log)
        self.register_buffer("ada_sign_sum", torch.zeros(()))
        self.register_buffer("ada_images", torch.zeros(()))
        self.register_buffer("ada_overfit", torch.zeros(()))
        # this step's evidence, not yet folded in (summed over processes first: adjust_augment)
        self.register_buffer("ada_pending", torch.zeros(2), persistent=False)

    @torch.no_grad()
    def observe_real_logits(self, logits: torch.Tensor) -> None:
        """Collect the sign of D(real) for ADA's controller (folded in by adjust_augment)."""
        self.ada_pending += torch.stack([logits.detach().float().sign().sum(),
                                         torch.tensor(float(logits.shape[0]), device=logits.device)])

    @torch.no_grad()
    def adjust_augment(self, target: float, interval_images: int, speed_images: int,
                       total=lambda x: x) -> None:
        """ADA's controller (Karras et al. 2020, sec. 3): raise p while the discriminator is too
        sure about real images (r_t = E[sign(D(real))] above target), lower it otherwise. Called
        once a step; total(x) sums the evidence over all training processes."""
        pending, self.ada_pending = total(self.ada_pending), torch.zeros_like(self.ada_pending)
        self.ada_sign_sum += pending[0]
        self.ada_images += pending[1]
        if self.ada_images.item() >= interval_images:
            overfit = (self.ada_sign_sum / self.ada_images).item()
            p = ada_update(self.augment_p.item(), overfit, target, int(self.ada_images.item()),
                           speed_images)
            self.augment_p.fill_(p)
            self.ada_overfit.fill_(overfit)
            self.ada_sign_sum.zero_()
            self.ada_images.zero_()


def r1_weight(config: RunConfig, spec: ModelSpec) -> float:
    """R1 gamma: the configured one, or StyleGAN2-ADA's heuristic 0.0002 * pixels / batch size."""
    if config.gan.r1_gamma is not None:
        return config.gan.r1_gamma
    pixels = 1
    for side in spec.model_shape[1:]:
        pixels *= side
    return 0.0002 * pixels / config.train.batch_size


def _augmenter(config: RunConfig) -> Callable[[torch.Tensor, GANPair, torch.Generator], torch.Tensor]:
    """What the discriminator's inputs go through, real and generated alike (so it cannot leak
    the augmentation into the generator: both sides see the same distribution of transforms)."""
    kind = config.augment.augment
    if kind == "ada":
        return lambda x, pair, g: ada_augment(x, pair.augment_p, g) if pair.augment_p.item() > 0 else x
    if kind == "diffaugment":
        return lambda x, pair, g: diffaugment(x, g)
    return lambda x, pair, g: x


def _training_noise(generator: torch.Generator) -> Callable[[tuple[int, ...]], torch.Tensor]:
    """StyleGAN2 noise inputs drawn from the loop's generator (reproducible, resumable)."""
    return lambda shape: torch.randn(shape, generator=generator, device=generator.device)


def _fakes(pair: GANPair, count: int, labels: torch.Tensor | None,
           generator: torch.Generator) -> torch.Tensor:
    g = pair.generator
    z = torch.randn((count, g.latent_dim), generator=generator, device=generator.device)
    return g(z, labels, noise=_training_noise(generator))


@dataclass(frozen=True)
class GANSampling(Declared):
    """How a GAN samples: the truncation trick."""

    truncation: float = option(1.0, "truncation psi (1: none; 0.5-0.8 trade variety for typical "
                               "samples)", check=between(0.0, 2.0))


class GANFamily:
    name = "gan"
    sampling = GANSampling
    inpainting = None  # a generator maps a latent to a whole item: nothing to keep fixed

    def supports(self, modality) -> str | None:
        return None  # images; symbols as one-hot planes

    def build(self, spec: ModelSpec, config: RunConfig) -> GANPair:
        g = config.gan
        try:
            generator, discriminator = build_gan(
                g.architecture, spec.model_shape, spec.num_classes, latent_dim=g.latent_dim,
                generator_channels=g.generator_channels,
                discriminator_channels=g.discriminator_channels, max_channels=g.max_channels,
                mapping_layers=g.mapping_layers)
        except ValueError as err:
            raise ConfigError(f"gan.architecture: {err}") from None
        return GANPair(generator, discriminator)

    def exported(self, module: GANPair) -> nn.Module:
        return module.generator

    def phases(self, config: RunConfig, spec: ModelSpec) -> list[Phase]:
        hinge = config.gan.gan_loss == "hinge"
        augment = _augmenter(config)
        a = config.augment
        interval_images = a.ada_interval * config.train.batch_size
        gamma, r1_every = r1_weight(config, spec), config.gan.r1_interval

        def generator_loss(pair: GANPair, reals, labels, generator):
            logits = pair.discriminator(augment(_fakes(pair, reals.shape[0], labels, generator),
                                                pair, generator), labels)
            # Non-saturating loss (Goodfellow et al. 2014): -log D(G(z)) = softplus(-logit).
            return (-logits).mean() if hinge else F.softplus(-logits).mean()

        def discriminator_loss(pair: GANPair, reals, labels, generator):
            with torch.no_grad():
                fakes = _fakes(pair, reals.shape[0], labels, generator)
            fake_logits = pair.discriminator(augment(fakes, pair, generator), labels)
            real_logits = pair.discriminator(augment(reals, pair, generator), labels)
            if a.augment == "ada":
                pair.observe_real_logits(real_logits)
            if hinge:  # Lim & Ye 2017; Miyato et al. 2018
                return F.relu(1 + fake_logits).mean() + F.relu(1 - real_logits).mean()
            return F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()

        def r1_loss(pair: GANPair, reals, labels, generator):
            # R1 (Mescheder et al. 2018): penalise the gradient of D at real data; lazy (every
            # r1_every steps, scaled by r1_every) as in StyleGAN2, sec. 3.1.
            # The gradient is taken at D's actual (augmented) inputs: the same penalty on what D
            # sees, and no double backward through grid_sample (CUDA has none).
            with torch.no_grad():
                inputs = augment(reals.float(), pair, generator)
            inputs.requires_grad_(True)
            logits = pair.discriminator(inputs, labels)
            (grad,) = torch.autograd.grad(logits.float().sum(), inputs, create_graph=True)
            return grad.square().flatten(1).sum(1).mean() * (gamma / 2) * r1_every

        def generator_parameters(pair: GANPair):
            return list(pair.generator.parameters())

        def discriminator_parameters(pair: GANPair):
            return list(pair.discriminator.parameters())

        def fold_w(pair: GANPair, total) -> None:
            """The generator's mean w over this phase's forward passes, summed over processes."""
            if isinstance(pair.generator, StyleGAN2Generator):
                pair.generator.fold_w_avg(total)

        def fold_w_and_ada(pair: GANPair, total) -> None:
            fold_w(pair, total)
            if a.augment == "ada":  # ADA's evidence from D(real), summed over processes
                pair.adjust_augment(a.ada_target, interval_images, a.ada_images, total)

        phases = [Phase("G", generator_parameters, generator_loss, betas=GAN_BETAS, gather=fold_w),
                  Phase("D", discriminator_parameters, discriminator_loss, betas=GAN_BETAS,
                        gather=fold_w_and_ada)]
        if gamma > 0 and not hinge:
            phases.append(Phase("R1", discriminator_parameters, r1_loss, interval=r1_every,
                                optimizer="D", betas=GAN_BETAS))
        return phases

    def stats(self, module: GANPair) -> dict[str, float]:
        return {"augment_p": round(module.augment_p.item(), 5),
                "ada_overfit": round(module.ada_overfit.item(), 4)}

    def latent_shape(self, module: nn.Module, item_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (module.latent_dim,)

    @torch.no_grad()
    def sample(self, module: nn.Module, seeds: list[int], class_labels: torch.Tensor | None, *,
               item_shape: tuple[int, ...], device: torch.device | str = "cpu",
               config: RunConfig | None = None, latents: torch.Tensor | None = None,
               spec: ModelSpec | None = None, **options) -> torch.Tensor:
        """One image per seed: z and the noise inputs come from the seed's own stream."""
        truncation = build(GANSampling, options).truncation
        noise = SeededNoise(seeds, device)
        z = noise((module.latent_dim,))  # drawn even when replaced: the noise inputs that follow
        z = z if latents is None else latents.to(device).float()  # stay the seed's own
        labels = None if class_labels is None else class_labels.to(device)
        if labels is not None and (labels < 0).any():
            raise ConfigError("a GAN has no unconditional mode: give a class (or none for all classes)")
        x = module(z, labels, truncation=truncation, noise=lambda shape: noise(shape[1:]))
        return x.float()

    def inpaint(self, *args, **kwargs) -> torch.Tensor:
        raise ConfigError("a GAN cannot be given part of an item to complete: use a diffusion "
                          "or discrete model")

