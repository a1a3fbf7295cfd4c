"""Building blocks the GAN networks share: feature-map sizes, equalised-learning-rate layers,
the projection head of conditional discriminators, label checks."""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

ARCHITECTURES = ("stylegan2", "dcgan", "mlp")
NoiseFn = Callable[[tuple[int, ...]], torch.Tensor]


def feature_sides(height: int, width: int) -> list[tuple[int, int]]:
    """Feature-map sides from smallest to full: ceil-halve until the smaller side is <= 8."""
    sides = [(height, width)]
    # Halving a side > 8 leaves >= 5, so the smallest map keeps at least 4 pixels a side unless
    # the image itself is smaller.
    while min(sides[0]) > 8:
        h, w = sides[0]
        sides.insert(0, ((h + 1) // 2, (w + 1) // 2))
    return sides


def pyramid(item_shape: tuple[int, ...], channels: int,
             max_channels: int) -> tuple[list[tuple[int, int]], list[int]]:
    """(sides, widths) of every network's levels, smallest side first."""
    sides = feature_sides(*item_shape[1:])
    return sides, widths(len(sides), channels, max_channels)


def widths(levels: int, base: int, cap: int) -> list[int]:
    """Channels per level, smallest side first: `base` at full resolution, doubling per halving."""
    return [min(base * 2 ** (levels - 1 - i), cap) for i in range(levels)]


# Leaky ReLU (slope 0.2) is followed by a gain of sqrt(2) to keep unit variance through equalised
# layers (StyleGAN2-ADA's bias_act). As lrelu(y + b) * g == lrelu(g * y + g * b) for g > 0, every
# layer applies its gains to its weights, bias and demodulation coefficients instead of to the
# feature map: the same function and gradients, and one pass over each feature map fewer.
LRELU_GAIN = math.sqrt(2)


def normalize(x: torch.Tensor) -> torch.Tensor:
    """Pixel norm over features: divide by the root mean square (StyleGAN's 2nd-moment norm)."""
    return x * (x.square().mean(1, keepdim=True) + 1e-8).rsqrt()


class EqualLinear(nn.Module):
    """Fully connected layer with equalised learning rate (Karras et al. 2018, ProGAN sec. 4.1)."""

    def __init__(self, in_features: int, out_features: int, *, bias_init: float = 0.0,
                 lr_mul: float = 1.0, activate: bool = False):
        super().__init__()
        # Weights are stored as N(0, 1/lr_mul) and scaled at run time, so Adam's step size is the
        # same for every layer whatever its fan-in; lr_mul slows a layer down (mapping: 0.01).
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init)))
        self.gain = LRELU_GAIN if activate else 1.0
        self.weight_gain = lr_mul / math.sqrt(in_features) * self.gain
        self.bias_gain = lr_mul * self.gain
        self.activate = activate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.linear(x, self.weight * self.weight_gain, self.bias * self.bias_gain)
        return F.leaky_relu(x, 0.2) if self.activate else x


class EqualConv2d(nn.Module):
    """Same-padded conv with equalised learning rate, optional leaky ReLU, then an output gain."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, *, bias: bool = True,
                 activate: bool = True, gain: float = 1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_ch)) if bias else None
        self.gain = gain * (LRELU_GAIN if activate else 1.0)
        self.weight_gain = self.gain / math.sqrt(in_ch * kernel * kernel)
        self.activate = activate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias * self.gain
        x = F.conv2d(x, self.weight * self.weight_gain, bias, padding=self.weight.shape[-1] // 2)
        return F.leaky_relu(x, 0.2) if self.activate else x


class Projection(nn.Module):
    """Discriminator output: the logit, or with classes <features, embed(label)> / sqrt(dim)."""

    def __init__(self, num_classes: int, dim: int):
        super().__init__()
        self.embed = nn.Embedding(num_classes, dim) if num_classes else None
        self.dim = dim

    def forward(self, h: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        if self.embed is None:
            return h[:, 0].float()
        if labels is None:
            raise ValueError("this discriminator is class-conditional: pass labels")
        # Projection discriminator (Miyato & Koyama 2018) in StyleGAN2-ADA's cmap form.
        return (h.float() * self.embed(labels).float()).sum(1) / math.sqrt(self.dim)


def check_labels(num_classes: int, labels: torch.Tensor | None) -> None:
    if num_classes and labels is None:
        raise ValueError("this generator is class-conditional: pass labels")


# ----------------------------------------------------------------------------------------------
# StyleGAN2
