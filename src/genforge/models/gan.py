"""Raw GAN networks: generators map (z, labels) to items, discriminators (items, labels) to logits.

Three pairs behind one builder, `build_gan` (StyleGAN2's in models.stylegan2, the shared layers in
models.gan_layers):
- 'stylegan2': StyleGAN2 (Karras et al. 2020, "Analyzing and Improving the Image Quality of
  StyleGAN") as configured in StyleGAN2-ADA (Karras et al. 2020b): mapping network, modulated and
  demodulated convolutions with noise inputs, skip toRGB outputs; residual discriminator with a
  minibatch standard-deviation layer. Equalised learning rate throughout.
- 'dcgan': DCGAN (Radford et al. 2016) for small images; no BatchNorm in D, so that R1 works.
- 'mlp': fully connected pair for 1-D items such as points of a 2-D toy distribution.

Any image size works: feature maps halve with rounding up (28 -> 14 -> 7, 25x17 -> 13x9 -> 7x5)
and each up- or down-sampling step goes to an explicit size. Conditional discriminators use the
projection form (Miyato & Koyama 2018). Generators end in a linear layer (no tanh; data lies in
[-1, 1]) and both networks return float32, also under bf16 autocast.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .gan_layers import ARCHITECTURES, NoiseFn, Projection, check_labels, feature_sides, pyramid
from .stylegan2 import ResidualDiscriminator, StyleGAN2Generator, minibatch_std

__all__ = ["build_gan", "feature_sides", "minibatch_std", "ARCHITECTURES"]


class _LatentInput(nn.Module):
    """z scaled by the truncation, with a class embedding concatenated when conditional."""

    def __init__(self, latent_dim: int, num_classes: int):
        super().__init__()
        self.num_classes = num_classes
        self.embed = nn.Embedding(num_classes, latent_dim) if num_classes else None
        self.features = latent_dim * (2 if num_classes else 1)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None,
                truncation: float) -> torch.Tensor:
        check_labels(self.num_classes, labels)
        z = z.float() * truncation
        return z if self.embed is None else torch.cat([z, self.embed(labels)], dim=1)


class DCGANGenerator(nn.Module):
    """FC to the smallest map, then ConvTranspose x2 (cropped to odd sides) + BatchNorm + ReLU."""

    def __init__(self, item_shape: tuple[int, int, int], num_classes: int, latent_dim: int,
                 channels: int, max_channels: int):
        super().__init__()
        self.item_shape, self.num_classes, self.latent_dim = item_shape, num_classes, latent_dim
        self.sides, widths = pyramid(item_shape, channels, max_channels)
        self.input = _LatentInput(latent_dim, num_classes)
        self.first_shape = (widths[0], *self.sides[0])
        self.fc = nn.Linear(self.input.features, math.prod(self.first_shape))
        self.norms = nn.ModuleList(nn.BatchNorm2d(c) for c in widths)
        # A 4x4 stride-2 transposed conv costs 2.25x less than nearest up-sampling + 3x3 conv.
        self.ups = nn.ModuleList(nn.ConvTranspose2d(widths[i - 1], widths[i], 4, 2, 1)
                                 for i in range(1, len(widths)))
        self.out = nn.Conv2d(widths[-1], item_shape[0], 3, padding=1)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None, *,
                truncation: float = 1.0, noise: NoiseFn | None = None) -> torch.Tensor:
        x = self.fc(self.input(z, labels, truncation)).reshape(-1, *self.first_shape)
        x = F.relu(self.norms[0](x))
        for up, norm, (h, w) in zip(self.ups, self.norms[1:], self.sides[1:]):
            x = F.relu(norm(up(x)[..., :h, :w]))  # 2x the smaller side, cropped to ceil-half sizes
        return self.out(x).float()


class DCGANDiscriminator(nn.Module):
    """3x3 conv, then 4x4 stride-2 convs with leaky ReLU down to the smallest side, flatten, FC."""

    def __init__(self, item_shape: tuple[int, int, int], num_classes: int, channels: int,
                 max_channels: int):
        super().__init__()
        self.item_shape, self.num_classes = item_shape, num_classes
        sides, widths = pyramid(item_shape, channels, max_channels)
        self.stem = nn.Conv2d(item_shape[0], widths[-1], 3, padding=1)
        self.downs = nn.ModuleList(nn.Conv2d(widths[i], widths[i - 1], 4, 2, 1)
                                   for i in range(len(widths) - 1, 0, -1))
        dim = widths[0] if num_classes else 1
        self.fc = nn.Linear(widths[0] * math.prod(sides[0]), dim)
        self.project = Projection(num_classes, dim)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        x = F.leaky_relu(self.stem(x), 0.2)
        for down in self.downs:
            # Pad one more at the far edge of odd sides so a 4x4 stride-2 conv gives ceil(side / 2).
            if x.shape[-1] % 2 or x.shape[-2] % 2:
                x = F.pad(x, (0, x.shape[-1] % 2, 0, x.shape[-2] % 2))
            x = F.leaky_relu(down(x), 0.2)
        return self.project(self.fc(x.flatten(1)), labels)


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers += [nn.Linear(sizes[i], sizes[i + 1]), nn.LeakyReLU(0.2)]
    return nn.Sequential(*layers[:-1])  # linear output


class MLPGenerator(nn.Module):
    """z (+ class embedding) -> three hidden leaky-ReLU layers -> item."""

    def __init__(self, item_shape: tuple[int], num_classes: int, latent_dim: int, width: int):
        super().__init__()
        self.item_shape, self.num_classes, self.latent_dim = item_shape, num_classes, latent_dim
        self.input = _LatentInput(latent_dim, num_classes)
        self.net = _mlp([self.input.features, width, width, width, item_shape[0]])

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None, *,
                truncation: float = 1.0, noise: NoiseFn | None = None) -> torch.Tensor:
        return self.net(self.input(z, labels, truncation)).float()


class MLPDiscriminator(nn.Module):
    """Item -> three hidden leaky-ReLU layers -> logit (or projection features)."""

    def __init__(self, item_shape: tuple[int], num_classes: int, width: int):
        super().__init__()
        self.item_shape, self.num_classes = item_shape, num_classes
        dim = width if num_classes else 1
        self.net = _mlp([item_shape[0], width, width, width, dim])
        self.project = Projection(num_classes, dim)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.project(self.net(x), labels)


# ----------------------------------------------------------------------------------------------


def build_gan(architecture: str, item_shape: tuple[int, ...], num_classes: int = 0, *,
              latent_dim: int = 128, generator_channels: int = 32, discriminator_channels: int = 32,
              max_channels: int = 256, mapping_layers: int = 4) -> tuple[nn.Module, nn.Module]:
    """(generator, discriminator) for architecture 'stylegan2', 'dcgan' or 'mlp' (1-D items)."""
    item_shape = tuple(int(s) for s in item_shape)
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown GAN architecture {architecture!r}; "
                         f"choose one of {', '.join(ARCHITECTURES)}")
    if any(s < 1 for s in item_shape):
        raise ValueError(f"item shape {item_shape} has a side below 1")
    sizes = (latent_dim, generator_channels, discriminator_channels, max_channels, mapping_layers)
    if min(sizes) < 1:
        raise ValueError("latent_dim, the channel counts and mapping_layers must be at least 1")
    if num_classes < 0:
        raise ValueError(f"num_classes must be 0 (unconditional) or more, not {num_classes}")
    if architecture == "mlp":
        if len(item_shape) != 1:
            raise ValueError(f"GAN architecture 'mlp' is for 1-D items shaped (D,), not "
                             f"{item_shape}; use 'stylegan2' or 'dcgan' for images")
        # Hidden width 4x the channel option (128 by default), so the options scale both kinds of
        # network: 128 covers the 8-mode ring as well as 256 does, at half the time per step.
        g_width = min(4 * generator_channels, max_channels)
        d_width = min(4 * discriminator_channels, max_channels)
        return (MLPGenerator(item_shape, num_classes, latent_dim, g_width),
                MLPDiscriminator(item_shape, num_classes, d_width))
    if len(item_shape) != 3:
        raise ValueError(f"GAN architecture {architecture!r} is for images shaped (C, H, W), "
                         f"not {item_shape}; use 'mlp' for 1-D items")
    if architecture == "dcgan":
        return (DCGANGenerator(item_shape, num_classes, latent_dim, generator_channels,
                               max_channels),
                DCGANDiscriminator(item_shape, num_classes, discriminator_channels, max_channels))
    return (StyleGAN2Generator(item_shape, num_classes, latent_dim, generator_channels,
                               max_channels, mapping_layers),
            ResidualDiscriminator(item_shape, num_classes, discriminator_channels, max_channels))
