"""StyleGAN2 (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN") as
configured in StyleGAN2-ADA: mapping network, modulated and demodulated convolutions with noise
inputs, skip toRGB outputs; a residual discriminator with a minibatch standard-deviation layer.
Plain PyTorch: the convolution weights are per-sample (grouped), no custom CUDA operators."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .gan_layers import (LRELU_GAIN, EqualConv2d, EqualLinear, NoiseFn, Projection, check_labels,
                         normalize, pyramid)


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
        sides, widths = pyramid(item_shape, channels, max_channels)
        # StyleGAN2-ADA's conditional mapping: normalise z and a class embedding, concatenate.
        self.embed = nn.Embedding(num_classes, latent_dim) if num_classes else None
        in_features = latent_dim * (2 if num_classes else 1)
        self.mapping = nn.Sequential(*[
            EqualLinear(latent_dim if i else in_features, latent_dim, lr_mul=0.01, activate=True)
            for i in range(mapping_layers)])
        self.register_buffer("w_avg", torch.zeros(latent_dim))
        self.w_avg_beta = 0.995
        # sum of w and count since the last fold_w_avg (not saved: folded after every phase)
        self.register_buffer("w_pending", torch.zeros(latent_dim + 1), persistent=False)
        self.const = nn.Parameter(torch.randn(widths[0], *sides[0]))
        self.blocks = nn.ModuleList(SynthesisBlock(widths[i - 1] if i else None, widths[i],
                                                   latent_dim, sides[i], item_shape[0])
                                    for i in range(len(sides)))

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None, *,
                truncation: float = 1.0, noise: NoiseFn | None = None) -> torch.Tensor:
        check_labels(self.num_classes, labels)
        x = normalize(z.float())
        if self.embed is not None:
            x = torch.cat([x, normalize(self.embed(labels))], dim=1)
        w = self.mapping(x).float()
        if self.training:  # track the mean w for truncation (folded in by fold_w_avg)
            with torch.no_grad():
                self.w_pending += torch.cat([w.detach().sum(0), w.new_ones(1) * w.shape[0]])
        if truncation != 1:
            w = self.w_avg.lerp(w, truncation)
        x, img = self.const.expand(z.shape[0], *self.const.shape), None
        for block in self.blocks:
            x, img = block(x, img, w, noise)
        return img.float()


    @torch.no_grad()
    def fold_w_avg(self, total=lambda x: x) -> None:
        """Move w_avg toward the mean w of the training passes since the last call, once per
        training phase (StyleGAN2-ADA, beta 0.995); total(x) sums over training processes, so
        the mean is the global batch's however many processes computed it."""
        pending = total(self.w_pending.clone())
        self.w_pending.zero_()
        count = pending[-1].item()
        if count > 0:
            self.w_avg.copy_((pending[:-1] / count).lerp(self.w_avg, self.w_avg_beta))


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
        sides, widths = pyramid(item_shape, channels, max_channels)
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
