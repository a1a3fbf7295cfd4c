"""The genforge domain encoder: a small CNN trained on the user's own data to make features for FD.

Standard FID needs Inception weights that many users cannot download, and ImageNet features say
little about 28x28 garments or 16x16 sprites anyway. `train_encoder` fits a small network to the
dataset at hand: a classifier (cross-entropy on a linear head) where the data has labels, else
SimCLR (Chen et al. 2020, arXiv:2002.05709) on two augmented views. It reads images [N, C, H, W]
and SATB music [N, 4, T]; each content kind says how in its modality's `encoder_input()` (how
items become the network's input, which views SimCLR compares, the feature size). Music is read as the one-hot planes music
models see, [N, 8, T, 48], with musical views (genforge.music.augment). Numbers made with it are
labelled FD-<name>, never FID (see extractors.metric_label), because they are not comparable with
anyone else's FID.

The file is safetensors (the encoder's weights; the training heads are dropped) with JSON metadata
(io.save_tensors) that rebuilds the network and says what it was trained on:
  format "genforge-encoder", format_version, genforge_version, name, kind, item_shape, dim, arch,
  mode ("classifier" | "self-supervised"), checksum (state_checksum of the weights),
  dataset {source, fingerprint, items, classes}, training {steps, batch_size, seed, lr, seconds,
  final_loss, device}, validation {items, accuracy | alignment [, knn_accuracy]
  | retrieval_items, retrieval_accuracy (music)}; music files add augment {transpose, beats, drop}.
`load_encoder` turns the file into a FeatureExtractor; training is in metrics.encoder_training.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from .. import io
from ..errors import CheckpointError, ConfigError
from ..modalities import MODALITIES
from ..modalities.base import EncoderInput
from ..modalities.image_views import DEFAULT_DIM, to_model
from ..version import __version__
from .extractors import register_file_loader, state_checksum

FORMAT = "genforge-encoder"
FORMAT_VERSION = 1
# Channels of the first stage; the two later stages double it. Measured on 2 cores of a Xeon
# (batch 128, 28x28): width 24 trains at 88 ms a step and embeds 10,000 images in 1.3 s, width 32
# at 191 ms and 4.0 s; on Fashion-MNIST 2000 steps reached 91.0% (24) and 91.6% (32) validation
# accuracy, so 24 is the default.
DEFAULT_WIDTH = 24


# ---------------------------------------------------------------------------------------------
# The network


def patch_size(resolution: int) -> int:
    """Pixels folded into the stem's stride: large images run the body at 24-47 px, like small ones."""
    p = 1
    while resolution // (2 * p) >= 24:
        p *= 2
    return p


def _conv(in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1) -> list[nn.Module]:
    padding = kernel // 2 if stride == 1 or kernel == 3 else 0
    return [nn.Conv2d(in_ch, out_ch, kernel, stride, padding, bias=False), nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True)]


class Encoder(nn.Module):
    """Images in [-1, 1] [N, C, H, W] -> features [N, dim].

    Stem (3x3 conv, or a p x p patch conv for large images), two stages that halve the side and
    double the width (28 -> 14 -> 7), a 1x1 projection to `dim` channels, ReLU, global average.
    BatchNorm rather than GroupNorm: at inference it is a fixed scale and shift, the cheapest norm
    on a CPU. The projection comes before the ReLU and the pooling, as in Inception's pool3, so
    the features average a non-linear map and their covariance can be full rank; a linear layer
    after the pooling would give a covariance of rank <= 128, whose square root FD cannot take
    reliably.

    `stem` ({"kernel": [h, w], "stride": [h, w]}) replaces the first conv: music's is a beat long
    and an octave wide (4 x 13), so the first layer sees the intervals between neighbouring
    notes; its stride of 2 in time and pitch halves a step's time (batch 128 of 4-bar crops, one
    thread of a busy 2-core Xeon: 0.65 s, against 1.3 s at stride 1 in pitch).
    """

    def __init__(self, channels: int, resolution: int, dim: int = DEFAULT_DIM,
                 width: int = DEFAULT_WIDTH, stem: dict | None = None):
        super().__init__()
        p = patch_size(resolution)
        self.arch = {"channels": channels, "resolution": resolution, "dim": dim, "width": width}
        w1, w2, w3 = width, 2 * width, 4 * width
        if stem is not None:
            self.arch["stem"] = stem
            (kh, kw), stride = stem["kernel"], tuple(stem["stride"])
            first = [nn.Conv2d(channels, w1, (kh, kw), stride, ((kh - 1) // 2, kw // 2),
                               bias=False), nn.BatchNorm2d(w1), nn.ReLU(inplace=True)]
        else:
            first = _conv(channels, w1) if p == 1 else _conv(channels, w1, kernel=p, stride=p)
        self.body = nn.Sequential(
            *first,
            *_conv(w1, w2, stride=2), *_conv(w2, w2),
            *_conv(w2, w3, stride=2), *_conv(w3, w3),
            *_conv(w3, dim, kernel=1))
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).mean(dim=(2, 3))


# ---------------------------------------------------------------------------------------------
# What the encoder reads: each content kind's EncoderInput, declared in its modality


def default_encoder_dir() -> Path:
    """Where 'genforge features train' keeps encoders by default ($GENFORGE_CACHE/encoders),
    named by the training data's fingerprint, so evaluation and the audit find them."""
    return io.cache_dir("encoders")


def cached_encoder(fingerprint: str | None) -> Path | None:
    """The cached encoder trained on the data with this fingerprint, if there is one."""
    path = default_encoder_dir() / f"{(fingerprint or '')[:16]}.safetensors"
    return path if fingerprint and path.exists() else None


def readable() -> str:
    """What the encoder reads, for error messages."""
    return " and ".join(r.items for r in (m.encoder_input() for m in MODALITIES.values()) if r)


def reader(kind: str) -> EncoderInput:
    """How the encoder reads a kind; ConfigError for a kind it cannot read."""
    read = MODALITIES[kind].encoder_input() if kind in MODALITIES else None
    if read is None:
        raise ConfigError(f"the domain encoder reads {readable()}; not {kind} items")
    return read


# ---------------------------------------------------------------------------------------------
# Features


def weights(model: Encoder) -> dict[str, torch.Tensor]:
    """What an encoder file holds: the state dict less BatchNorm's step counters, which eval
    mode never reads (and which state_checksum cannot hash: they are 0-d)."""
    # clone to standard strides: channels-last 1x1 kernels report is_contiguous() with odd strides
    return {k: v.detach().cpu().clone(memory_format=torch.contiguous_format)
            for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}


def recalibrate(model: Encoder, items: torch.Tensor, batch_size: int = 256,
                prepare: Callable[[torch.Tensor], torch.Tensor] = to_model) -> None:
    """Set BatchNorm's running statistics to their exact averages over clean items ("precise BN").

    Training leaves them as moving averages over augmented batches, but features are taken from
    clean items; measured on the Fashion-MNIST sample, this added about a point of kNN accuracy.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # None: a cumulative average over all batches seen
    was_training = model.training
    model.train()
    with torch.no_grad():
        for start in range(0, len(items), batch_size):
            model(prepare(items[start:start + batch_size]))
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    model.train(was_training)


def embed(model: Encoder, items: torch.Tensor, batch_size: int = 256,
          prepare: Callable[[torch.Tensor], torch.Tensor] = to_model) -> torch.Tensor:
    """float32 CPU features of integer items (prepare: how the network reads them, images by
    default), in eval mode without autograd; restores the mode."""
    was_training, device = model.training, next(model.parameters()).device
    model.eval()
    out = [torch.zeros(0, model.dim)]
    with torch.inference_mode():
        for start in range(0, len(items), batch_size):
            out.append(model(prepare(items[start:start + batch_size].to(device))).float().cpu())
    model.train(was_training)
    return torch.cat(out)



def default_name(source: str) -> str:
    """A name from the data source: 'fashion-mnist' -> 'fashion-mnist', '~/art/sprites/' -> 'sprites'."""
    stem = Path(str(source).rstrip("/\\")).name.lower()
    return re.sub(r"[^a-z0-9._-]+", "-", stem).strip("-.") or "encoder"


def check_name(name: str) -> str:
    """Refuse names that would mislabel metrics: inception-v3 makes FID, and only the real one may."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name or ""):
        raise ConfigError(f"encoder name {name!r} must be letters, digits, '.', '_' or '-' "
                          "(it labels metrics as FD-<name>)")
    if name.lower() == "inception-v3":
        raise ConfigError("encoder name 'inception-v3' is reserved for the standard FID network; "
                          "choose another name")
    return name


def resolve_device(device: str | torch.device) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except RuntimeError:
        raise ConfigError(f"unknown device {device!r} (expected auto, cpu, cuda or cuda:N)") from None


# ---------------------------------------------------------------------------------------------
# Loading


class EncoderExtractor:
    """A trained domain encoder as a FeatureExtractor: integer items of the kind it was trained
    on (uint8 images, SATB music) in, float32 [N, dim] out."""

    def __init__(self, model: Encoder, metadata: dict, checksum: str, device: torch.device):
        self.device = device
        self.kind = metadata.get("kind", "image")
        self.reader = reader(self.kind)
        self.model = model.to(device).to(memory_format=torch.channels_last).eval()
        self.model.requires_grad_(False)
        self.metadata = metadata
        self.name = metadata["name"]
        self.dim = int(metadata["dim"])
        self.item_shape = tuple(metadata["item_shape"])
        self.checksum = checksum
        self.fingerprint = metadata["dataset"]["fingerprint"]

    def features(self, items: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """float32 [N, dim] on the CPU for integer items of the shape it was trained on (uint8
        images [N, C, H, W], SATB codes [N, 4, T])."""
        want = self.item_shape
        if self.kind != "image":
            if (items.dim() != len(want) + 1 or items.is_floating_point()
                    or items.dtype == torch.bool or tuple(items.shape[1:]) != want):
                raise ConfigError(f"encoder {self.name!r} reads integer {self.kind} items of shape "
                                  f"{list(want)}; got {items.dtype} {tuple(items.shape)}")
            return embed(self.model, items, batch_size, prepare=self.reader.prepare)
        if items.dim() != 4 or items.is_floating_point() or items.dtype == torch.bool:
            raise ConfigError(f"encoder {self.name!r} reads integer images [N, C, H, W]; got "
                              f"{items.dtype} {tuple(items.shape)}")
        if items.shape[1] != want[0]:
            raise ConfigError(f"encoder {self.name!r} expects {want[0]} channels and got "
                              f"{items.shape[1]}")
        if tuple(items.shape[1:]) != want:
            raise ConfigError(f"encoder {self.name!r} expects {'x'.join(map(str, want))} images and "
                              f"got {'x'.join(map(str, items.shape[1:]))}; use the resolution it "
                              "was trained at")
        return embed(self.model, items, batch_size)


def load_encoder(path: str | Path, device: str | torch.device = "cpu") -> EncoderExtractor:
    """The encoder saved by train_encoder at path; a file that is not one is a one-line ConfigError."""
    path = Path(path)
    expected = "a genforge encoder made by 'genforge features train'"
    try:
        state, meta = io.load_tensors(path)
    except CheckpointError as err:
        reason = "not found" if not path.is_file() else "not a readable safetensors file"
        raise ConfigError(f"{path}: {reason}; expected {expected}") from err
    if meta.get("format") != FORMAT:
        found = f"format {meta['format']!r}" if meta.get("format") else "no genforge encoder metadata"
        raise ConfigError(f"{path}: not a genforge encoder ({found}); expected {expected}")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ConfigError(f"{path}: encoder format version {meta.get('format_version')!r} (written by "
                          f"genforge {meta.get('genforge_version', '?')}); this genforge "
                          f"{__version__} reads version {FORMAT_VERSION}")
    try:
        check_name(meta["name"])
        arch = meta["arch"]
        read = reader(meta.get("kind", "image"))
        model = Encoder(arch["channels"], arch["resolution"], dim=arch["dim"], width=arch["width"],
                        stem=arch.get("stem"))
        missing, unexpected = model.load_state_dict(state, strict=False)
        if unexpected or any(not k.endswith("num_batches_tracked") for k in missing):
            raise KeyError(f"missing {missing[:3]}, unexpected {unexpected[:3]}")
        shape = tuple(meta["item_shape"])
        if not read.accepts(shape) or read.input_shape(shape)[0] != arch["channels"]:
            raise KeyError(f"item_shape {meta['item_shape']} against arch {arch}")
        if not isinstance(meta["dataset"]["fingerprint"], str):
            raise KeyError("dataset.fingerprint")
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        reason = " ".join(str(err).split())[:200]
        raise ConfigError(f"{path}: damaged genforge encoder (weights or metadata do not match: "
                          f"{reason})") from None
    checksum = state_checksum(state)
    if checksum != meta.get("checksum"):
        raise ConfigError(f"{path}: damaged genforge encoder (weights checksum {checksum[:12]} does "
                          f"not match the {str(meta.get('checksum'))[:12]} recorded when it was saved)")
    return EncoderExtractor(model, meta, checksum, resolve_device(device))


register_file_loader(".safetensors", load_encoder)
