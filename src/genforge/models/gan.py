"""Raw GAN networks: generators map (z, labels) to items, discriminators (items, labels) to logits.

Three pairs behind one builder, `build_gan`:
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


def _pyramid(item_shape: tuple[int, ...], channels: int,
             max_channels: int) -> tuple[list[tuple[int, int]], list[int]]:
    """(sides, widths) of every network's levels, smallest side first."""
    sides = feature_sides(*item_shape[1:])
    return sides, _widths(len(sides), channels, max_channels)


def _widths(levels: int, base: int, cap: int) -> list[int]:
    """Channels per level, smallest side first: `base` at full resolution, doubling per halving."""
    return [min(base * 2 ** (levels - 1 - i), cap) for i in range(levels)]


# Leaky ReLU (slope 0.2) is followed by a gain of sqrt(2) to keep unit variance through equalised
# layers (StyleGAN2-ADA's bias_act). As lrelu(y + b) * g == lrelu(g * y + g * b) for g > 0, every
# layer applies its gains to its weights, bias and demodulation coefficients instead of to the
# feature map: the same function and gradients, and one pass over each feature map fewer.
LRELU_GAIN = math.sqrt(2)


def _normalize(x: torch.Tensor) -> torch.Tensor:
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


def _check_labels(num_classes: int, labels: torch.Tensor | None) -> None:
    if num_classes and labels is None:
        raise ValueError("this generator is class-conditional: pass labels")


# ----------------------------------------------------------------------------------------------
# StyleGAN2


class ModulatedConv(nn.Module):
    """Modulated 3x3 conv, demodulation, noise input, bias and leaky ReLU (StyleGAN2 eq. 1-3)."""

    def __init__(self, in_ch: int, out_ch: int, w_dim: int, up_size: tuple[int, int] | None = None):
        super().__init__()
        self.affine = EqualLinear(w_dim, in_ch, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, 3, 3))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros(out_ch))
        self.up_size = up_size

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise: NoiseFn | None) -> torch.Tensor:
        styles = self.affine(w)
        # Non-fused form (StyleGAN2-ADA's fused_modconv=False): scaling the input by the styles and
        # the output by the demodulation coefficients equals convolving with per-sample weights,
        # but runs as one ordinary conv over the whole batch, which is what CPUs do fastest.
        x = F.conv2d(x * styles[:, :, None, None], self.weight, padding=1)
        # Eq. 3: sum_{i,k} (w_oik s_i)^2 = sum_i s_i^2 sum_k w_oik^2, a [B, in] x [in, out] product.
        dcoefs = (styles.square() @ self.weight.square().sum((2, 3)).t() + 1e-8).rsqrt()
        scale = (dcoefs * LRELU_GAIN)[:, :, None, None].to(x.dtype)
        bias = (self.bias * LRELU_GAIN)[:, None, None].to(x.dtype)
        if self.up_size is None:
            shape = (x.shape[0], 1, *x.shape[2:])
            x = torch.addcmul(self._noise(shape, x, noise), x, scale) + bias
        else:
            # StyleGAN2 up-samples with a transposed conv followed by a [1,3,3,1] blur, so the conv
            # costs what it would at the lower resolution. Convolving at the lower resolution and
            # then up-sampling bilinearly (zero insertion + the same [1,3,3,1] blur, any size) costs
            # the same, a quarter of a conv on the up-sampled map, with as many weights. Bilinear
            # weights sum to one, so the bias can be added before up-sampling.
            x = F.interpolate(torch.addcmul(bias, x, scale), size=self.up_size, mode="bilinear")
            x = x + self._noise((x.shape[0], 1, *self.up_size), x, noise)
        return F.leaky_relu(x, 0.2)

    def _noise(self, shape: tuple[int, ...], x: torch.Tensor,
               noise: NoiseFn | None) -> torch.Tensor:
        n = torch.randn(shape, device=x.device) if noise is None else noise(shape).to(x.device)
        return (n * (self.noise_strength * LRELU_GAIN)).to(x.dtype)


class ToRGB(nn.Module):
    """Modulated 1x1 conv to image channels, without demodulation or activation."""

    def __init__(self, in_ch: int, out_ch: int, w_dim: int):
        super().__init__()
        self.affine = EqualLinear(w_dim, in_ch, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch))
        self.bias = nn.Parameter(torch.zeros(out_ch))
        self.weight_gain = 1 / math.sqrt(in_ch)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        # Per-sample [out, in] weights and one batched matmul: scaling x by the styles and a 1x1
        # conv to 1-4 channels took 7x longer on CPU (oneDNN), forward and backward.
        weight = self.weight[None] * styles[:, None, :]
        b, c, h, w_ = x.shape
        y = torch.bmm(weight, x.reshape(b, c, h * w_)).reshape(b, -1, h, w_)
        return y.float() + self.bias[:, None, None]  # the image accumulates in float32


class SynthesisBlock(nn.Module):
    """One resolution: (up-sampling,) two modulated convs, toRGB added to the skip image."""

    def __init__(self, in_ch: int | None, out_ch: int, w_dim: int, size: tuple[int, int],
                 img_channels: int):
        super().__init__()
        self.size = size
        # The first block works on the learned constant and has one conv, as in StyleGAN2.
        self.conv0 = ModulatedConv(in_ch, out_ch, w_dim, size) if in_ch is not None else None
        self.conv1 = ModulatedConv(out_ch, out_ch, w_dim)
        self.to_rgb = ToRGB(out_ch, img_channels, w_dim)

    def forward(self, x: torch.Tensor, img: torch.Tensor | None, w: torch.Tensor,
                noise: NoiseFn | None) -> tuple[torch.Tensor, torch.Tensor]:
        if self.conv0 is not None:
            x = self.conv0(x, w, noise)  # up-samples to self.size
        x = self.conv1(x, w, noise)
        y = self.to_rgb(x, w)
        if img is not None:  # bilinear to an explicit size: exactly 2x for even sides, odd too
            y = y + F.interpolate(img, size=self.size, mode="bilinear")
        return x, y


class StyleGAN2Generator(nn.Module):
    """Mapping network z (+ class) -> w, synthesis from a learned constant (StyleGAN2 'skip')."""

    def __init__(self, item_shape: tuple[int, int, int], num_classes: int, latent_dim: int,
                 channels: int, max_channels: int, mapping_layers: int):
        super().__init__()
        self.item_shape, self.num_classes, self.latent_dim = item_shape, num_classes, latent_dim
        sides, widths = _pyramid(item_shape, channels, max_channels)
        # StyleGAN2-ADA's conditional mapping: normalise z and a class embedding, concatenate.
        self.embed = nn.Embedding(num_classes, latent_dim) if num_classes else None
        in_features = latent_dim * (2 if num_classes else 1)
        self.mapping = nn.Sequential(*[
            EqualLinear(latent_dim if i else in_features, latent_dim, lr_mul=0.01, activate=True)
            for i in range(mapping_layers)])
        self.register_buffer("w_avg", torch.zeros(latent_dim))
        self.w_avg_beta = 0.995
        self.const = nn.Parameter(torch.randn(widths[0], *sides[0]))
        self.blocks = nn.ModuleList(SynthesisBlock(widths[i - 1] if i else None, widths[i],
                                                   latent_dim, sides[i], item_shape[0])
                                    for i in range(len(sides)))

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None, *,
                truncation: float = 1.0, noise: NoiseFn | None = None) -> torch.Tensor:
        _check_labels(self.num_classes, labels)
        x = _normalize(z.float())
        if self.embed is not None:
            x = torch.cat([x, _normalize(self.embed(labels))], dim=1)
        w = self.mapping(x).float()
        if self.training:  # track the mean w for truncation (StyleGAN2-ADA, beta 0.995)
            with torch.no_grad():
                self.w_avg.copy_(w.detach().mean(0).lerp(self.w_avg, self.w_avg_beta))
        if truncation != 1:
            w = self.w_avg.lerp(w, truncation)
        x, img = self.const.expand(z.shape[0], *self.const.shape), None
        for block in self.blocks:
            x, img = block(x, img, w, noise)
        return img.float()


class DiscriminatorBlock(nn.Module):
    """Residual block: conv, average-pool down, conv; plus a pooled 1x1 skip; sum / sqrt(2)."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        # Both branches carry the gain sqrt(1/2), so that their sum keeps unit variance.
        self.conv0 = EqualConv2d(in_ch, in_ch, 3)
        self.conv1 = EqualConv2d(in_ch, out_ch, 3, gain=math.sqrt(0.5))
        self.skip = EqualConv2d(in_ch, out_ch, 1, bias=False, activate=False, gain=math.sqrt(0.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Pooling before the second conv (StyleGAN2's blur + stride-2 conv) runs it at the lower
        # resolution; ceil_mode averages a half window at odd sides, so 25 -> 13 and 7 -> 4.
        skip = self.skip(F.avg_pool2d(x, 2, ceil_mode=True))
        x = self.conv1(F.avg_pool2d(self.conv0(x), 2, ceil_mode=True))
        return x + skip


def minibatch_std(x: torch.Tensor, group_size: int = 4) -> torch.Tensor:
    """Append the mean feature std over groups of samples as a channel (Karras et al. 2018)."""
    batch = x.shape[0]
    group = min(group_size, batch)
    while batch % group:  # any batch size works: fall back to the largest group that divides it
        group -= 1
    y = x.float().reshape(group, -1, *x.shape[1:])  # sample n is in group n % (batch // group)
    # Written out: torch.var over the leading dim was 40x slower on CPU.
    y = ((y - y.mean(0)).square().mean(0) + 1e-8).sqrt().mean((1, 2, 3))
    y = y.repeat(group)[:, None, None, None].expand(-1, 1, *x.shape[2:])
    return torch.cat([x, y.to(x.dtype)], dim=1)


class ResidualDiscriminator(nn.Module):
    """StyleGAN2 'resnet' discriminator: fromRGB, residual blocks, minibatch std, conv, FC, out."""

    def __init__(self, item_shape: tuple[int, int, int], num_classes: int, channels: int,
                 max_channels: int):
        super().__init__()
        self.item_shape, self.num_classes = item_shape, num_classes
        sides, widths = _pyramid(item_shape, channels, max_channels)
        self.from_rgb = EqualConv2d(item_shape[0], widths[-1], 1)
        self.blocks = nn.Sequential(*[DiscriminatorBlock(widths[i], widths[i - 1])
                                      for i in range(len(sides) - 1, 0, -1)])
        ch, (h, w) = widths[0], sides[0]
        self.conv = EqualConv2d(ch + 1, ch, 3)
        self.fc = EqualLinear(ch * h * w, ch, activate=True)
        self.out = EqualLinear(ch, ch if num_classes else 1)
        self.project = Projection(num_classes, ch)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        x = self.blocks(self.from_rgb(x))
        x = self.conv(minibatch_std(x))
        return self.project(self.out(self.fc(x.flatten(1))), labels)


# ----------------------------------------------------------------------------------------------
# DCGAN and MLP


class _LatentInput(nn.Module):
    """z scaled by the truncation, with a class embedding concatenated when conditional."""

    def __init__(self, latent_dim: int, num_classes: int):
        super().__init__()
        self.num_classes = num_classes
        self.embed = nn.Embedding(num_classes, latent_dim) if num_classes else None
        self.features = latent_dim * (2 if num_classes else 1)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None,
                truncation: float) -> torch.Tensor:
        _check_labels(self.num_classes, labels)
        z = z.float() * truncation
        return z if self.embed is None else torch.cat([z, self.embed(labels)], dim=1)


class DCGANGenerator(nn.Module):
    """FC to the smallest map, then ConvTranspose x2 (cropped to odd sides) + BatchNorm + ReLU."""

    def __init__(self, item_shape: tuple[int, int, int], num_classes: int, latent_dim: int,
                 channels: int, max_channels: int):
        super().__init__()
        self.item_shape, self.num_classes, self.latent_dim = item_shape, num_classes, latent_dim
        self.sides, widths = _pyramid(item_shape, channels, max_channels)
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
        sides, widths = _pyramid(item_shape, channels, max_channels)
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
