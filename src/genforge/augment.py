"""Augmentation for training on little data: DiffAugment and ADA (GANs), EDM's non-leaking one (diffusion).

Every function takes a batch (B, C, H, W) in [-1, 1] with C = 1 (grey), 3 (RGB) or 4 (RGBA: colour ops
touch RGB only, alpha follows the geometric ops), any H and W. Every random draw comes from the caller's
torch.Generator, so a resumed run replays the same augmentations. Every op is differentiable w.r.t. the
images, because GANs augment generated images inside the generator's loss. Nothing is clamped: values may
leave [-1, 1] slightly, as in the reference code.

Geometry follows StyleGAN2-ADA's AugmentPipe: per-image inverse maps (output pixel -> input pixel) as 3x3
matrices in pixel units about the image centre, so that rotations of non-square images are true rotations;
they are composed into one matrix and applied with one grid_sample (bilinear, reflection padding). ADA
itself upsamples 2x through a wavelet filter before sampling; we sample once, which blurs a little more.
grid_sample's reflection mirrors about the outer pixel edges, so the border pixel repeats once, where
ADA's padding mirrors about the border pixel's centre.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from genforge.errors import ConfigError


class _Draw:
    """Random draws from one generator, moved to the images' device (so a CPU generator serves CUDA too)."""

    def __init__(self, generator: torch.Generator, device: torch.device):
        self.generator, self.device = generator, device

    def uniform(self, *shape: int) -> Tensor:
        return torch.rand(shape, generator=self.generator,
                          device=self.generator.device).to(self.device)

    def normal(self, *shape: int) -> Tensor:
        return torch.randn(shape, generator=self.generator,
                           device=self.generator.device).to(self.device)

    def integers(self, high: int, *shape: int) -> Tensor:
        """Whole numbers 0..high-1 as float32."""
        return torch.randint(high, shape, generator=self.generator,
                             device=self.generator.device).to(self.device, torch.float32)

    def chance(self, p: float | Tensor, n: int) -> Tensor:
        """n booleans, each true with probability p."""
        return self.uniform(n) < p


def _on_colour(x: Tensor, op: Callable[[Tensor], Tensor]) -> Tensor:
    """op applied to the colour channels; an alpha channel passes through untouched."""
    return torch.cat([op(x[:, :3]), x[:, 3:]], dim=1) if x.shape[1] == 4 else op(x)


def _moved_only(x: Tensor, moved: Tensor, op: Callable[[Tensor, Tensor], Tensor]) -> Tensor:
    """op(x[idx], idx) for the images flagged in `moved`; the others are returned bit for bit."""
    if x.device.type != "cpu":
        # On an accelerator the work on untouched images is cheap, and a host sync (nonzero) is not.
        everyone = torch.arange(len(x), device=x.device)
        return torch.where(moved.view(-1, 1, 1, 1), op(x, everyone), x)
    idx = moved.nonzero().flatten()
    if idx.numel() == 0:
        return x
    return x.index_copy(0, idx, op(x[idx], idx))


# ---------------------------------------------------------------------------------------------------------
# DiffAugment (Zhao et al. 2020), after the paper's DiffAugment_pytorch.py.

DIFFAUGMENT_POLICY = ("color", "translation", "cutout")


def _brightness(x: Tensor, draw: _Draw) -> Tensor:
    shift = draw.uniform(x.shape[0], 1, 1, 1).to(x.dtype) - 0.5
    return _on_colour(x, lambda rgb: rgb + shift)


def _saturation(x: Tensor, draw: _Draw) -> Tensor:
    factor = draw.uniform(x.shape[0], 1, 1, 1).to(x.dtype) * 2

    def op(rgb: Tensor) -> Tensor:
        mean = rgb.mean(dim=1, keepdim=True)  # grey: the image itself, so a no-op as in the reference
        return (rgb - mean) * factor + mean
    return _on_colour(x, op)


def _contrast(x: Tensor, draw: _Draw) -> Tensor:
    factor = draw.uniform(x.shape[0], 1, 1, 1).to(x.dtype) + 0.5

    def op(rgb: Tensor) -> Tensor:
        mean = rgb.mean(dim=(1, 2, 3), keepdim=True)
        return (rgb - mean) * factor + mean
    return _on_colour(x, op)


def _translation(x: Tensor, draw: _Draw, ratio: float = 0.125) -> Tensor:
    """Whole-pixel shift by up to `ratio` of each side, zeros shifted in (the reference's pad-and-gather)."""
    b, c, h, w = x.shape
    reach_y, reach_x = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = draw.integers(2 * reach_y + 1, b, 1, 1).long() - reach_y
    tx = draw.integers(2 * reach_x + 1, b, 1, 1).long() - reach_x
    # Output pixel (i, j) reads input (i + ty, j + tx); clamping into the one-pixel zero border of the
    # padded image makes every out-of-range read a zero.
    rows = (torch.arange(h, device=x.device).view(1, h, 1) + ty + 1).clamp(0, h + 1)
    cols = (torch.arange(w, device=x.device).view(1, 1, w) + tx + 1).clamp(0, w + 1)
    index = (rows * (w + 2) + cols).view(b, 1, h * w).expand(b, c, h * w)
    return F.pad(x, [1, 1, 1, 1]).flatten(2).gather(2, index).view(b, c, h, w)


def _cutout(x: Tensor, draw: _Draw, ratio: float = 0.5) -> Tensor:
    """Zero a square of `ratio` of each side, centred anywhere in the image (it may hang over an edge)."""
    b, _, h, w = x.shape
    size_y, size_x = int(h * ratio + 0.5), int(w * ratio + 0.5)
    top = draw.integers(h + (1 - size_y % 2), b, 1, 1) - size_y // 2
    left = draw.integers(w + (1 - size_x % 2), b, 1, 1) - size_x // 2
    rows = torch.arange(h, device=x.device, dtype=torch.float32).view(1, h, 1)
    cols = torch.arange(w, device=x.device, dtype=torch.float32).view(1, 1, w)
    inside = (rows >= top) & (rows < top + size_y) & (cols >= left) & (cols < left + size_x)
    return x * (~inside).unsqueeze(1).to(x.dtype)


_DIFFAUGMENT_OPS: dict[str, tuple[Callable[[Tensor, _Draw], Tensor], ...]] = {
    "color": (_brightness, _saturation, _contrast),
    "translation": (_translation,),
    "cutout": (_cutout,),
}


def diffaugment(x: Tensor, generator: torch.Generator,
                policy: tuple[str, ...] = DIFFAUGMENT_POLICY) -> Tensor:
    """DiffAugment (Zhao et al. 2020): the same random colour, translation and cutout ops as the
    paper's reference code (brightness ±0.5, saturation x[0,2], contrast x[0.5,1.5]; translation
    by up to 1/8 of the side with zero padding; cutout of a square half the side), applied to
    every image.
    """
    unknown = [name for name in policy if name not in _DIFFAUGMENT_OPS]
    if unknown:
        raise ConfigError(f"unknown DiffAugment op(s) {unknown}; choose from {sorted(_DIFFAUGMENT_OPS)}")
    draw = _Draw(generator, x.device)
    for name in policy:
        for op in _DIFFAUGMENT_OPS[name]:
            x = op(x, draw)
    return x


# ---------------------------------------------------------------------------------------------------------
# Per-image 3x3 matrices in pixel units about the image centre (x right, y down), float32, shape (B, 3, 3).

def _matrix(a: Tensor, b: Tensor, tx: Tensor, c: Tensor, d: Tensor, ty: Tensor) -> Tensor:
    zero, one = torch.zeros_like(a), torch.ones_like(a)
    return torch.stack([a, b, tx, c, d, ty, zero, zero, one], dim=-1).view(-1, 3, 3)


def _scale(sx: Tensor, sy: Tensor) -> Tensor:
    zero = torch.zeros_like(sx)
    return _matrix(sx, zero, zero, zero, sy, zero)


def _rotate(cos: Tensor, sin: Tensor) -> Tensor:
    zero = torch.zeros_like(cos)
    return _matrix(cos, -sin, zero, sin, cos, zero)


def _translate(tx: Tensor, ty: Tensor) -> Tensor:
    zero, one = torch.zeros_like(tx), torch.ones_like(tx)
    return _matrix(one, zero, tx, zero, one, ty)


def _quarter_turns(turns: Tensor) -> tuple[Tensor, Tensor]:
    """Exact (cos, sin) of turns * 90°: float cos(pi/2) is 4e-8, which would blur a pure 90° turn."""
    k = turns.long() % 4
    return (torch.tensor([1.0, 0.0, -1.0, 0.0], device=turns.device)[k],
            torch.tensor([0.0, 1.0, 0.0, -1.0], device=turns.device)[k])


def _warp(x: Tensor, inverse: Tensor) -> Tensor:
    """Resample each image through its inverse map (output pixel -> input pixel, pixels about the centre)."""
    _, c, h, w = x.shape
    eye = torch.eye(3, device=inverse.device)
    moved = (inverse != eye).flatten(1).any(dim=1)
    # Flips, quarter turns and whole-pixel shifts read input pixel centres exactly; 'nearest' then copies
    # pixels bit for bit, where bilinear would mix in ~1e-6 of a neighbour through rounding of the grid.
    linear = inverse[:, :2, :2]
    centre = torch.tensor([(w - 1) / 2, (h - 1) / 2], device=inverse.device)
    offset = inverse[:, :2, 2] + centre - linear @ centre  # in absolute pixel indices
    on_grid = (((linear - linear.round()).abs().amax(dim=(1, 2)) < 1e-5)
               & ((offset - offset.round()).abs().amax(dim=1) < 1e-4))
    # grid_sample reads [-1, 1] coordinates; with align_corners=False those are pixel units times 2/side.
    to_unit = torch.diag(torch.tensor([2 / w, 2 / h, 1.0], device=inverse.device))
    to_pixels = torch.diag(torch.tensor([w / 2, h / 2, 1.0], device=inverse.device))
    theta = (to_unit @ inverse @ to_pixels)[:, :2]
    xs = (torch.arange(w, device=inverse.device) * 2 + 1) / w - 1
    ys = (torch.arange(h, device=inverse.device) * 2 + 1) / h - 1

    def sample(mode: str) -> Callable[[Tensor, Tensor], Tensor]:
        def op(images: Tensor, idx: Tensor) -> Tensor:
            # The affine grid as an outer sum of a row and a column term: F.affine_grid does the same
            # with a batched matmul of inner size 3, several times slower on CPU.
            t = theta[idx]
            along_x = (t[:, :, 0:1] * xs).transpose(1, 2)[:, None]  # (k, 1, W, 2)
            along_y = (t[:, :, 1:2] * ys + t[:, :, 2:3]).transpose(1, 2)[:, :, None]  # (k, H, 1, 2)
            return F.grid_sample(images, (along_x + along_y).to(images.dtype), mode=mode,
                                 padding_mode="reflection", align_corners=False)
        return op
    x = _moved_only(x, moved & on_grid, sample("nearest"))
    return _moved_only(x, moved & ~on_grid, sample("bilinear"))


# ---------------------------------------------------------------------------------------------------------
# Colour as per-image 4x4 affine matrices acting on (r, g, b, 1), shape (B, 4, 4).

_LUMA = torch.full((3,), 1 / math.sqrt(3))  # ADA's luma axis: the grey diagonal, not Rec. 601 weights


def _colour(linear: Tensor, shift: Tensor) -> Tensor:
    """4x4 matrices from (B, 3, 3) linear parts and (B, 3) shifts."""
    out = torch.eye(4, device=linear.device).repeat(len(linear), 1, 1)
    out[:, :3, :3], out[:, :3, 3] = linear, shift
    return out


def _recolour(x: Tensor, matrix: Tensor) -> Tensor:
    """Apply per-image colour matrices; grey images take the matrix's action on the grey diagonal (ADA)."""
    c = x.shape[1]
    moved = (matrix != torch.eye(4, device=matrix.device)).flatten(1).any(dim=1)

    def op(images: Tensor, idx: Tensor) -> Tensor:
        m = matrix[idx].to(images.dtype)
        if c == 1:
            # Brightness, contrast and luma flip keep grey on the grey diagonal, so every row agrees.
            gain = m[:, :3, :3].sum(dim=2).mean(dim=1).view(-1, 1, 1, 1)
            return images * gain + m[:, :3, 3].mean(dim=1).view(-1, 1, 1, 1)

        def rgb_op(rgb: Tensor) -> Tensor:
            return (m[:, :3, :3] @ rgb.flatten(2) + m[:, :3, 3:]).view(rgb.shape)
        return _on_colour(images, rgb_op)
    return _moved_only(x, moved, op)


# ---------------------------------------------------------------------------------------------------------
# StyleGAN2-ADA (Karras et al. 2020), pipeline 'bgc' with the AugmentPipe defaults.

def _ada_geometry(draw: _Draw, n: int, h: int, w: int, p: Tensor) -> Tensor:
    """Inverse maps: x-flip, quarter turns, integer shift, scale, rotation, anisotropy, fractional shift."""
    one = torch.ones(n, device=draw.device)
    inverse = torch.eye(3, device=draw.device).repeat(n, 1, 1)
    flip = torch.where(draw.chance(p, n), draw.integers(2, n), 0)
    inverse = inverse @ _scale(1 - 2 * flip, one)
    turns = torch.where(draw.chance(p, n), draw.integers(4, n), 0)
    inverse = inverse @ _rotate(*_quarter_turns(turns))
    shift = (draw.uniform(n, 2) * 2 - 1) * 0.125
    shift = torch.where(draw.chance(p, n)[:, None], shift, 0)
    inverse = inverse @ _translate(-(shift[:, 0] * w).round(), -(shift[:, 1] * h).round())
    scale = torch.where(draw.chance(p, n), torch.exp2(draw.normal(n) * 0.2), 1)
    inverse = inverse @ _scale(1 / scale, 1 / scale)
    # Rotation is drawn before and after anisotropy, each with 1 - sqrt(1 - p) so that P(either) = p.
    p_rotate = 1 - (1 - p).clamp(0, 1).sqrt()
    theta = torch.where(draw.chance(p_rotate, n), (draw.uniform(n) * 2 - 1) * math.pi, 0)
    inverse = inverse @ _rotate(theta.cos(), theta.sin())
    aniso = torch.where(draw.chance(p, n), torch.exp2(draw.normal(n) * 0.2), 1)
    inverse = inverse @ _scale(1 / aniso, aniso)
    theta = torch.where(draw.chance(p_rotate, n), (draw.uniform(n) * 2 - 1) * math.pi, 0)
    inverse = inverse @ _rotate(theta.cos(), theta.sin())
    shift = torch.where(draw.chance(p, n)[:, None], draw.normal(n, 2) * 0.125, 0)
    return inverse @ _translate(-shift[:, 0] * w, -shift[:, 1] * h)


def _ada_colour(draw: _Draw, n: int, channels: int, p: Tensor) -> Tensor:
    """Colour matrices for brightness, contrast, luma flip and, with colour channels, hue and saturation."""
    eye = torch.eye(3, device=draw.device).expand(n, 3, 3)
    zero = torch.zeros(n, 3, device=draw.device)
    luma = _LUMA.to(draw.device)
    luma_outer = torch.outer(luma, luma)
    brightness = torch.where(draw.chance(p, n), draw.normal(n) * 0.2, 0)
    matrix = _colour(eye, brightness[:, None].expand(n, 3))
    contrast = torch.where(draw.chance(p, n), torch.exp2(draw.normal(n) * 0.5), 1)
    matrix = _colour(eye * contrast.view(n, 1, 1), zero) @ matrix
    # Luma flip: a Householder reflection through the plane normal to the grey diagonal.
    flip = torch.where(draw.chance(p, n), draw.integers(2, n), 0)
    matrix = _colour(eye - 2 * luma_outer * flip.view(n, 1, 1), zero) @ matrix
    if channels > 1:
        # Hue: rotation about the grey diagonal (Rodrigues' formula).
        theta = torch.where(draw.chance(p, n), (draw.uniform(n) * 2 - 1) * math.pi, 0).view(n, 1, 1)
        cross = torch.tensor([[0.0, -1, 1], [1, 0, -1], [-1, 1, 0]], device=draw.device) / math.sqrt(3)
        hue = theta.cos() * eye + theta.sin() * cross + (1 - theta.cos()) * luma_outer
        matrix = _colour(hue, zero) @ matrix
        saturation = torch.where(draw.chance(p, n), torch.exp2(draw.normal(n)), 1).view(n, 1, 1)
        # Written as eye + (s - 1)(...) so that s = 1 gives the identity exactly, not to rounding.
        matrix = _colour(eye + (saturation - 1) * (eye - luma_outer), zero) @ matrix
    return matrix


def ada_augment(x: Tensor, p: float | Tensor, generator: torch.Generator) -> Tensor:
    """StyleGAN2-ADA's 'bgc' pipeline (Karras et al. 2020, Appendix B): each op applied per image
    with probability p: x-flip, 90° rotations, integer translation (±1/8), isotropic scale
    (lognormal, std 0.2·ln2), arbitrary rotation, anisotropic scale, fractional translation (std
    0.125); brightness (std 0.2), contrast (lognormal std 0.5·ln2), luma flip, hue rotation,
    saturation (lognormal std 1·ln2). Geometric ops compose into one affine matrix per image
    applied with one grid_sample (reflection padding, bilinear); colour ops compose into one 4x4
    colour matrix. Grey images get brightness, contrast and luma flip only. p = 0 must return x
    unchanged (bit-identical, and cheaply).
    """
    p = torch.as_tensor(p, dtype=torch.float32, device=x.device)
    if not bool(p > 0):  # a host sync when p lives on a GPU; it skips all draws and work at p = 0
        return x
    n, c, h, w = x.shape
    draw = _Draw(generator, x.device)
    x = _warp(x, _ada_geometry(draw, n, h, w, p))
    return _recolour(x, _ada_colour(draw, n, c, p))


def ada_update(p: float, real_sign: float, target: float, images: int, speed_images: float) -> float:
    """ADA's controller step: p moves by sign(real_sign - target) * images / speed_images, clamped to
    [0, 1). real_sign is E[sign(D(real))] over the interval; images is how many real images that
    interval saw; speed_images is how many images it takes p to go from 0 to 1 (StyleGAN2-ADA:
    500k).
    """
    difference = real_sign - target
    sign = float(difference > 0) - float(difference < 0)  # 0 at the target, and for NaN (no data)
    return min(max(p + sign * images / speed_images, 0.0), math.nextafter(1.0, 0.0))


# ---------------------------------------------------------------------------------------------------------
# EDM (Karras et al. 2022, Appendix F.2): geometric augmentation with the transform as a conditioning label.

# Label layout, each entry zero for an unchanged image; together they determine the transform:
#   0 xflip (0/1)   1 yflip (0/1)   2, 3 quarter turns: cos - 1, sin   4 scale: log2(s) / 0.2
#   5, 6 rotation: cos(theta) - 1, sin(theta)
#   7, 8 anisotropy: a cos(2r), a sin(2r), with a = log2(stretch) / 0.2 along the axis at angle r.
#        EDM uses (a cos r, a sin r), which cannot tell (a, r) from (-a, r + pi), two different
#        stretches; the doubled angle is the log of the stretch matrix, so it is unique (a's axis is mod pi).
#   9, 10 fractional translation in units of 0.125 of the width and height.
AUGMENT_LABEL_DIM = 11


def nonleaking_augment(x: Tensor, p: float, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """EDM's augmentation (Karras et al. 2022, Appendix F.2, their AugmentPipe with xflip, yflip,
    integer/arbitrary rotation, scale, anisotropy, fractional translation): each op applied per
    image with probability p; returns the augmented images and a (B, AUGMENT_LABEL_DIM) float
    vector describing the transform that is exactly zero for an image left unchanged. A diffusion
    network conditioned on this vector learns the augmented distributions as separate conditions,
    so sampling with a zero vector gives the un-augmented distribution (no leaking).
    """
    n, _, h, w = x.shape
    if p <= 0:
        return x, torch.zeros(n, AUGMENT_LABEL_DIM, device=x.device)
    draw = _Draw(generator, x.device)
    one = torch.ones(n, device=x.device)
    xflip = torch.where(draw.chance(p, n), draw.integers(2, n), 0)
    yflip = torch.where(draw.chance(p, n), draw.integers(2, n), 0)
    turn_cos, turn_sin = _quarter_turns(torch.where(draw.chance(p, n), draw.integers(4, n), 0))
    inverse = _scale(1 - 2 * xflip, one) @ _scale(one, 1 - 2 * yflip) @ _rotate(turn_cos, turn_sin)
    scale = torch.where(draw.chance(p, n), draw.normal(n), 0)
    inverse = inverse @ _scale(torch.exp2(-0.2 * scale), torch.exp2(-0.2 * scale))
    theta = torch.where(draw.chance(p, n), (draw.uniform(n) * 2 - 1) * math.pi, 0)
    inverse = inverse @ _rotate(theta.cos(), theta.sin())
    aniso = torch.where(draw.chance(p, n), draw.normal(n), 0)
    # EDM stretches along a random axis half the time and along x otherwise. Without a stretch the axis
    # is zeroed: turning there and back is the identity only up to rounding, and would cost a resample.
    axis = torch.where(draw.chance(0.5, n), (draw.uniform(n) * 2 - 1) * math.pi, 0)
    axis = torch.where(aniso != 0, axis, 0)
    stretch = torch.exp2(0.2 * aniso)
    inverse = (inverse @ _rotate(axis.cos(), -axis.sin()) @ _scale(1 / stretch, stretch)
               @ _rotate(axis.cos(), axis.sin()))
    shift = torch.where(draw.chance(p, n)[:, None], draw.normal(n, 2), 0)
    inverse = inverse @ _translate(-shift[:, 0] * (0.125 * w), -shift[:, 1] * (0.125 * h))
    labels = torch.stack([xflip, yflip, turn_cos - 1, turn_sin, scale, theta.cos() - 1, theta.sin(),
                          aniso * (2 * axis).cos(), aniso * (2 * axis).sin(), shift[:, 0], shift[:, 1]],
                         dim=1)
    return _warp(x, inverse), labels
