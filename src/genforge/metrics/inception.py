"""The FID Inception-v3 network: the TensorFlow graph of 2015-12-05 that defines FID, in plain PyTorch.

FID is only comparable across papers when it is computed with this one network, so the layers
follow the graph the TF FID code loads (`pool_3:0`, as ported by pytorch-fid and torch-fidelity),
not torchvision's Inception-v3. Where the graph differs from the paper's Inception-v3 the code says
so. Module names follow torch-fidelity's `FeatureExtractorInceptionV3`, so both usual weight files
load unchanged: pytorch-fid's `pt_inception-2015-12-05-6726825d.pth` and torch-fidelity's
`weights-inception-2015-12-05-6726825d.pth` (the same tensors under the same names).

Images go in as uint8 [N, C, H, W] of any size and leave as the 2048-d pool3 features.
"""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError, DataError
from .extractors import register_extractor, state_checksum

WEIGHT_FILES = ("pt_inception-2015-12-05-6726825d.pth",        # pytorch-fid
                "weights-inception-2015-12-05-6726825d.pth")   # torch-fidelity
WEIGHTS_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
               "pt_inception-2015-12-05-6726825d.pth")
WEIGHTS_ENV = "GENFORGE_INCEPTION_WEIGHTS"
INPUT_SIZE = 299


# ---------------------------------------------------------------------------------------------
# Input: TF1 resize and channel handling


def resize_like_tf1(x: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize of float [N, C, H, W] to size x size exactly as TF1's `ResizeBilinear`
    with align_corners=False: source = dest * (in / out), no half-pixel offset, edges clamped.

    This is what the FID graph does before its first convolution; torch's own bilinear
    interpolation uses half-pixel centres and gives different features.
    """
    def taps(n_in: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        pos = torch.arange(size, dtype=torch.float32, device=x.device) * (n_in / size)
        lo = pos.long()  # floor: positions are never negative
        hi = (lo + 1).clamp_max(n_in - 1)
        return lo, hi, (pos - lo).to(x.dtype)

    y_lo, y_hi, dy = taps(x.shape[2])
    x_lo, x_hi, dx = taps(x.shape[3])
    top, bottom = x[:, :, y_lo], x[:, :, y_hi]
    # Same association order as the TF kernel: left + (right - left) * dx, then the same down rows.
    top = top[..., x_lo] + (top[..., x_hi] - top[..., x_lo]) * dx
    bottom = bottom[..., x_lo] + (bottom[..., x_hi] - bottom[..., x_lo]) * dx
    return top + (bottom - top) * dy[:, None]


def to_rgb(images: torch.Tensor) -> torch.Tensor:
    """uint8 [N, C, H, W] with C = 1, 3 or 4 -> uint8 RGB [N, 3, H, W].

    Grey is repeated into the three channels. RGBA is composited over opaque white and rounded
    to the nearest integer, which is exactly what Pillow's `alpha_composite` onto white gives, so
    an RGBA item scores the same as its flattened RGB file would.
    """
    channels = images.shape[1]
    if channels == 3:
        return images
    if channels == 1:
        return images.expand(-1, 3, -1, -1)
    rgb, alpha = images[:, :3].int(), images[:, 3:].int()
    return ((rgb * alpha + 255 * (255 - alpha) + 127) // 255).to(torch.uint8)


# ---------------------------------------------------------------------------------------------
# Blocks. Channel counts and kernel shapes are those of the TF graph's mixed_* nodes.


class BasicConv2d(nn.Module):
    """Convolution without bias, batch norm (TF epsilon 0.001), ReLU."""

    def __init__(self, in_channels: int, out_channels: int, **conv_args) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **conv_args)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg_pool_3x3(x: torch.Tensor) -> torch.Tensor:
    # TF's average pool ignores the zero padding at the borders: count_include_pad=False.
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class FIDInceptionA(nn.Module):
    """mixed, mixed_1, mixed_2 (Mixed_5b-d): 1x1, 5x5, double 3x3 and pooled branches at 35x35."""

    def __init__(self, in_channels: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([
            self.branch1x1(x),
            self.branch5x5_2(self.branch5x5_1(x)),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            self.branch_pool(_avg_pool_3x3(x)),
        ], 1)


class InceptionB(nn.Module):
    """mixed_3 (Mixed_6a): grid reduction 35x35 -> 17x17."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([
            self.branch3x3(x),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            F.max_pool2d(x, kernel_size=3, stride=2),
        ], 1)


class FIDInceptionC(nn.Module):
    """mixed_4 to mixed_7 (Mixed_6b-e): factorised 7x7 branches at 17x17."""

    def __init__(self, in_channels: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        row, col = dict(kernel_size=(1, 7), padding=(0, 3)), dict(kernel_size=(7, 1), padding=(3, 0))
        self.branch1x1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, **row)
        self.branch7x7_3 = BasicConv2d(c7, 192, **col)
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, **col)
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, **row)
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, **col)
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, **row)
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seven = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        double = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                      self.branch7x7dbl_5):
            double = layer(double)
        return torch.cat([self.branch1x1(x), seven, double, self.branch_pool(_avg_pool_3x3(x))], 1)


class InceptionD(nn.Module):
    """mixed_8 (Mixed_7a): grid reduction 17x17 -> 8x8."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seven = self.branch7x7x3_1(x)
        for layer in (self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            seven = layer(seven)
        return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), seven,
                          F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class FIDInceptionE(nn.Module):
    """mixed_9 and mixed_10 (Mixed_7b, Mixed_7c): expanded 3x3 branches at 8x8.

    pool="avg" for mixed_9 (pytorch-fid's FIDInceptionE_1); pool="max" for mixed_10
    (FIDInceptionE_2): the TF graph max-pools there, unlike the paper, and FID inherits that.
    """

    def __init__(self, in_channels: int, pool: str) -> None:
        super().__init__()
        self.pool = pool
        row, col = dict(kernel_size=(1, 3), padding=(0, 1)), dict(kernel_size=(3, 1), padding=(1, 0))
        self.branch1x1 = BasicConv2d(in_channels, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, **row)
        self.branch3x3_2b = BasicConv2d(384, 384, **col)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, **row)
        self.branch3x3dbl_3b = BasicConv2d(384, 384, **col)
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        three = self.branch3x3_1(x)
        double = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        if self.pool == "max":
            pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        else:
            pooled = _avg_pool_3x3(x)
        return torch.cat([
            self.branch1x1(x),
            self.branch3x3_2a(three), self.branch3x3_2b(three),
            self.branch3x3dbl_3a(double), self.branch3x3dbl_3b(double),
            self.branch_pool(pooled),
        ], 1)


class FIDInceptionV3(nn.Module):
    """uint8 RGB [N, 3, H, W] -> pool3 features [N, 2048], as the TF FID graph computes them."""

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.MaxPool_1 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.MaxPool_2 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.Mixed_5b = FIDInceptionA(192, pool_features=32)
        self.Mixed_5c = FIDInceptionA(256, pool_features=64)
        self.Mixed_5d = FIDInceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
        self.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = FIDInceptionE(1280, pool="avg")
        self.Mixed_7c = FIDInceptionE(2048, pool="max")
        self.AvgPool = nn.AdaptiveAvgPool2d(1)
        # The 1008-way classifier is unused for FID; it is kept so the weight files load as they are.
        self.fc = nn.Linear(2048, 1008)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = resize_like_tf1(images.float(), INPUT_SIZE)
        x = (x - 128) / 128  # the graph's Sub/Mul: (x - 128) * 0.0078125, bit-identical
        for name in ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "MaxPool_1",
                     "Conv2d_3b_1x1", "Conv2d_4a_3x3", "MaxPool_2",
                     "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c",
                     "Mixed_6d", "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c", "AvgPool"):
            x = getattr(self, name)(x)
        return x.flatten(1)  # pool_3:0


# ---------------------------------------------------------------------------------------------
# The extractor and its loader


class InceptionExtractor:
    """The FeatureExtractor for FID: images in, 2048-d pool3 features out."""

    name = "inception-v3"
    kind = "image"
    dim = 2048
    fingerprint = None  # trained on ImageNet, not on a genforge dataset

    def __init__(self, network: FIDInceptionV3, checksum: str, device: str | torch.device) -> None:
        self.device = torch.device(device)
        self.network = network.to(self.device).eval().requires_grad_(False)
        self.checksum = checksum

    def features(self, items: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """float32 [N, 2048] on the CPU for uint8 images [N, C, H, W], C = 1 (grey), 3 (RGB) or
        4 (RGBA, composited over white); any height and width."""
        if items.dtype != torch.uint8 or items.dim() != 4 or items.shape[1] not in (1, 3, 4):
            raise DataError(f"inception-v3 reads uint8 images [N, C, H, W] with C = 1, 3 or 4; "
                            f"got {items.dtype} {tuple(items.shape)}")
        out = [torch.zeros(0, self.dim)]
        with torch.inference_mode():
            for start in range(0, len(items), batch_size):
                batch = to_rgb(items[start:start + batch_size].to(self.device))
                out.append(self.network(batch).float().cpu())
        return torch.cat(out)


def find_weights(weights: str | None) -> Path:
    """The weights file: the path given, else $GENFORGE_INCEPTION_WEIGHTS, else the torch hub cache."""
    fix = f"download {WEIGHT_FILES[0]} from {WEIGHTS_URL}"
    given = ""
    if weights is None and os.environ.get(WEIGHTS_ENV):
        weights, given = os.environ[WEIGHTS_ENV], f" (from ${WEIGHTS_ENV})"
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise ConfigError(f"inception-v3 weights file {path}{given} not found: {fix}")
        return path
    hub = Path(torch.hub.get_dir()) / "checkpoints"
    for name in WEIGHT_FILES:
        if (hub / name).is_file():
            return hub / name
    raise ConfigError(f"inception-v3 needs the FID Inception weights {WEIGHT_FILES[0]} (or "
                      f"torch-fidelity's {WEIGHT_FILES[1]}): none given, ${WEIGHTS_ENV} unset and "
                      f"not in {hub}; {fix} and pass its path or put it in {hub}")


def read_state(path: Path) -> dict[str, torch.Tensor]:
    """Tensors from a .safetensors file or a .pth state dict, never running pickled code."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file
            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        # torch's safe unpickler refused it: damaged, or it holds objects other than tensors.
        detail = str(err).split("WeightsUnpickler error:")[-1].strip().splitlines() or [""]
        reason = detail[0].split(". ")[0]
        raise ConfigError(f"{path}: not a plain state dict of tensors, which is all genforge will "
                          f"unpickle ({' '.join(reason.split())[:160]}); expected the FID "
                          f"Inception weights {WEIGHT_FILES[0]}") from None
    except Exception as err:  # corrupt files raise many types
        reason = " ".join(str(err).split())[:200]
        raise ConfigError(f"{path}: not a readable inception-v3 weights file "
                          f"({type(err).__name__}: {reason})") from None
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise ConfigError(f"{path}: not a state dict of tensors; expected the FID Inception "
                          f"weights {WEIGHT_FILES[0]}")
    return state


def build_inception(state: dict[str, torch.Tensor], source: str = "weights") -> tuple[FIDInceptionV3, str]:
    """The network with these weights, and their checksum; a mismatch is a ConfigError naming source.

    BatchNorm's num_batches_tracked counters are optional (older files lack them) and are left out
    of the checksum, so the same weights give the same checksum from either file or format.
    """
    network = FIDInceptionV3()
    wanted = {k: v for k, v in network.state_dict().items() if not k.endswith("num_batches_tracked")}
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    missing, extra = sorted(wanted.keys() - state.keys()), sorted(state.keys() - wanted.keys())
    wrong = sorted(k for k in wanted.keys() & state.keys() if state[k].shape != wanted[k].shape)
    if missing or extra or wrong:
        parts = [f"{label} {len(keys)} ({', '.join(keys[:3])}{', ...' if len(keys) > 3 else ''})"
                 for label, keys in (("missing", missing), ("unexpected", extra),
                                     ("wrong shape", wrong)) if keys]
        raise ConfigError(f"{source}: not the FID Inception-v3 weights: {'; '.join(parts)}; "
                          f"expected {WEIGHT_FILES[0]} from {WEIGHTS_URL}")
    network.load_state_dict(state, strict=False)  # only the counters can be missing
    loaded = network.state_dict()
    return network, state_checksum({k: loaded[k] for k in wanted})


@register_extractor("inception-v3")
def load_inception(weights: str | None, device: str | torch.device = "cpu") -> InceptionExtractor:
    """The FID extractor from a weights file (.pth or .safetensors), found as find_weights says."""
    path = find_weights(weights)
    network, checksum = build_inception(read_state(path), source=str(path))
    return InceptionExtractor(network, checksum, device)
