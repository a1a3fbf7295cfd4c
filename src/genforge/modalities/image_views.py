"""Views of images for the domain encoder (metrics.encoder): the float input it reads and the
random crops, zooms, flips and colour changes its training compares. Batched, on the device,
drawn from an explicit generator."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

# 256 features: FD estimates a dim x dim covariance, which needs several times `dim` samples to be
# stable (Inception's 2048 needs 10k+); 256 is well conditioned from a few thousand samples, keeps
# the matrix square root cheap, and is still wider than the 128 channels that feed it.
DEFAULT_DIM = 256

def to_model(items: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float32 [-1, 1], as modalities.image.to_model (channels-last: faster convs)."""
    x = items.to(torch.float32) / 127.5 - 1.0
    return x.contiguous(memory_format=torch.channels_last)


# ---------------------------------------------------------------------------------------------
# Augmentation: batched, on the device, drawn from an explicit generator


@dataclass(frozen=True)
class Augment:
    scale: tuple[float, float]   # side of the sampled region relative to the image (<1 zooms in)
    aspect: float                # max log aspect-ratio change of that region
    shift: float                 # extra translation, as a share of the side
    flip: bool                   # horizontal flips (not for classes that have a handedness)
    brightness: float            # offset drawn from +-brightness (the image spans 2)
    contrast: float              # factor drawn from 1 +- contrast
    noise: float                 # Gaussian noise, std drawn from [0, noise]


# Light for the classifier: a couple of pixels of shift and a little zoom and contrast.
LIGHT = Augment(scale=(0.9, 1.05), aspect=0.0, shift=0.08, flip=False, brightness=0.1,
                contrast=0.1, noise=0.0)
# Strong for SimCLR: the views must differ enough that matching them needs the content. Flips
# only teach the features to ignore left and right, which no self-supervised task needs (the
# classifier goes without them: in some data a class hangs on which way an item faces).
STRONG = Augment(scale=(0.55, 1.0), aspect=math.log(4 / 3), shift=0.1, flip=True, brightness=0.4,
                 contrast=0.4, noise=0.1)


def _uniform(n: int, low: float, high: float, g: torch.Generator, device) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=g, device=device)


def augment(x: torch.Tensor, aug: Augment, g: torch.Generator) -> torch.Tensor:
    """A random crop/zoom/shift/flip per item (one affine resampling), then brightness, contrast
    and noise on the colour channels (not alpha); stays in [-1, 1]."""
    n, c, dev = x.shape[0], x.shape[1], x.device
    scale = _uniform(n, *aug.scale, g, dev)
    ratio = torch.exp(_uniform(n, -aug.aspect, aug.aspect, g, dev))
    sx, sy = (scale * ratio.sqrt()).clamp(max=1.2), (scale / ratio.sqrt()).clamp(max=1.2)
    # Centres: anywhere that keeps a zoomed-in region inside the image, plus the extra shift.
    tx = _uniform(n, -1, 1, g, dev) * ((1 - sx).clamp(min=0) + 2 * aug.shift)
    ty = _uniform(n, -1, 1, g, dev) * ((1 - sy).clamp(min=0) + 2 * aug.shift)
    if aug.flip:
        sx = sx * (torch.rand(n, generator=g, device=dev) < 0.5).float().mul(2).sub(1)
    zero = torch.zeros_like(sx)
    theta = torch.stack([torch.stack([sx, zero, tx], 1), torch.stack([zero, sy, ty], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    colour = x[:, :min(c, 3)]
    mean = colour.mean(dim=(1, 2, 3), keepdim=True)
    contrast = _uniform(n, 1 - aug.contrast, 1 + aug.contrast, g, dev).view(n, 1, 1, 1)
    bright = _uniform(n, -aug.brightness, aug.brightness, g, dev).view(n, 1, 1, 1)
    colour = (colour - mean) * contrast + mean + bright
    if aug.noise:
        sigma = _uniform(n, 0, aug.noise, g, dev).view(n, 1, 1, 1)
        colour = colour + sigma * torch.randn(colour.shape, generator=g, device=dev)
    x = torch.cat([colour, x[:, 3:]], 1) if c > 3 else colour
    return x.clamp(-1, 1).contiguous(memory_format=torch.channels_last)
