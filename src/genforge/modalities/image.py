"""Images: a folder of PNG/JPEG/WebP/BMP files, or Fashion-MNIST by name, as uint8 tensors [N, C, H, W].

Folders are read in two passes: the first opens each file's header (format, size, mode) to choose the
channel count and resolution, the second decodes every pixel and fits it. Only one decoded source
image is held at a time, so memory follows the fitted output, not the source files. Pillow and numpy
only (no torchvision).
"""
from __future__ import annotations

import json
import math
import os
import statistics
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from PIL.PngImagePlugin import PngInfo

from .. import io
from ..errors import DataError
from ..options import Declared, between, option
from ..provenance import marking, watermark
from . import fashion_mnist, image_views
from .image_pixels import MAX_ASPECT, MODES, natural_channels, to_array
from .base import Dataset, EncoderInput, LoadReport, Modality, SamplingPreset, named_items

EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
NAMED_SOURCES = ("fashion-mnist", "fashion-mnist-test", "fashion-mnist-sample")
MAX_DEFAULT_RESOLUTION = 128
MAX_RESOLUTION = 2048  # a whole dataset is held in memory: 2048x2048x4 is 16 MiB an item


@dataclass(frozen=True)
class ImageOptions(Declared):
    """How images become items: the image kind's data options."""

    section = "data"
    resolution: int | None = option(None, "image side in pixels (default: from the data)",
                                    check=between(1, MAX_RESOLUTION))
    channels: int | None = option(None, "1 (grey), 3 (RGB) or 4 (RGBA); default: keep the data's",
                                  choices=(None, 1, 3, 4))
    fit: str = option("crop", "how non-square images become square", choices=("crop", "pad"))
    labels: str = option("auto", "class labels from sub-folder names: auto uses them when every "
                         "image sits in one of two or more sub-folders",
                         choices=("auto", "folders", "none"))


def find_images(root: Path) -> list[Path]:
    """Image files under root, recursively, sorted by path parts so the order is the same everywhere.

    Hidden files and folders (names starting with '.') and macOS `__MACOSX` folders are skipped:
    archives made on a Mac carry `._name.png` resource forks that are not images.
    """
    found = []
    for folder, dirnames, filenames in os.walk(root):  # does not follow symlinked folders
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and d != "__MACOSX"]
        found += [Path(folder, f) for f in filenames
                  if not f.startswith(".") and os.path.splitext(f)[1].lower() in EXTENSIONS]
    return sorted(found, key=lambda p: p.relative_to(root).parts)


@contextmanager
def _refuse_bombs(path: Path) -> Iterator[None]:
    """Turn Pillow's decompression-bomb warning and error into a DataError naming the file."""
    with warnings.catch_warnings():
        # Pillow only warns between MAX_IMAGE_PIXELS and twice that; we refuse both.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            yield
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            raise DataError(f"refusing {path}: {e} Remove or shrink the file, or raise "
                            "PIL.Image.MAX_IMAGE_PIXELS if you trust it") from None


def _reason(error: Exception) -> str:
    """A short one-line reason for a file Pillow could not read."""
    if isinstance(error, UnidentifiedImageError):
        return "not an image Pillow can read"
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def folder_classes(root: Path, paths: list[Path], labels: str) -> list[str] | None:
    """Each file's class (its first-level sub-folder), or None when the dataset is unlabelled."""
    if labels == "none":
        return None
    parts = [p.relative_to(root).parts for p in paths]
    at_root = [p for p, part in zip(paths, parts) if len(part) == 1]
    if labels == "folders" and at_root:
        raise DataError(f"data.labels is 'folders' but {at_root[0]} sits directly in {root}: "
                        "put every image in a class sub-folder, or use labels 'auto' or 'none'")
    classes = [part[0] for part in parts]
    folders = {part[0] for part in parts if len(part) > 1}
    if labels == "auto" and at_root and len(folders) >= 2:  # said, never silent
        warnings.warn(f"{len(at_root)} image(s) sit directly in {root} (first: {at_root[0].name}) "
                      f"while the others are in {len(folders)} class sub-folders: training "
                      "without class labels; move them into a class folder to use the classes, "
                      "or pass --labels none")
    if labels == "auto" and (at_root or len(set(classes)) < 2):
        return None
    return classes


Probe = tuple[int, Path, int, int]  # (index in the file list, path, natural channels, shorter side)


def _probe(paths: list[Path], skipped: list[tuple[str, str]]) -> list[Probe]:
    """Pass 1: headers only (Image.open reads size and mode without decoding); bad files go to skipped."""
    probes = []
    for i, path in enumerate(paths):
        try:
            with _refuse_bombs(path), Image.open(path) as img:
                problem = size_problem(img)
                if problem:  # skipped before it can vote for the resolution
                    skipped.append((str(path), problem))
                    continue
                probes.append((i, path, natural_channels(img), min(img.size)))
        except DataError:
            raise
        except Exception as e:  # Pillow's plugins raise many types on corrupt input
            skipped.append((str(path), _reason(e)))
    return probes


def _choose(cfg, probes: list[Probe]) -> tuple[int, int]:
    """Channels and resolution: the config's, else from the data (see read_folder)."""
    channels = cfg.channels or max((c for _, _, c, _ in probes), default=3)
    resolution = cfg.resolution or min(
        MAX_DEFAULT_RESOLUTION, statistics.median_low([s for *_, s in probes] or [1]))
    return channels, resolution


def _decode(probes: list[Probe], channels: int, resolution: int, fit: str,
            skipped: list[tuple[str, str]]) -> tuple[list[np.ndarray], list[Probe]]:
    """Pass 2: decode every pixel (load() is what detects a truncated file), then fit."""
    arrays, decoded = [], []
    for probe in probes:
        path = probe[1]
        try:
            with _refuse_bombs(path), Image.open(path) as img:
                problem = size_problem(img)  # again: the file may have changed since pass 1
                if problem:
                    skipped.append((str(path), problem))
                    continue
                img.load()
                arrays.append(to_array(ImageOps.exif_transpose(img), channels, resolution, fit))
                decoded.append(probe)
        except DataError:
            raise
        except Exception as e:
            skipped.append((str(path), _reason(e)))
    return arrays, decoded


# Budgets checked from the header, before any decoding. Decoding and converting take up to 27
# bytes a pixel (16-bit grey; 12 for RGBA PNG, 8 for RGB JPEG), so 25 megapixels (a 24 MP camera's
# frames pass) stays near 700 MiB and 5 s; Pillow's bomb limit (89 MP) let one file take 2.7 GB.
MAX_PIXELS = 5000 * 5000


def size_problem(img: Image.Image) -> str | None:
    """Why an opened image should not be decoded, from its header alone, or None: no pixels, too
    many, or a strip too thin to become a square."""
    w, h = img.size
    if min(w, h) < 1:
        return f"{w}x{h} pixels: an image without pixels"
    if w * h > MAX_PIXELS:
        return f"{w}x{h} pixels: more than {MAX_PIXELS / 1e6:g} megapixels; shrink it first"
    if max(w, h) > MAX_ASPECT * min(w, h):
        return f"{w}x{h} pixels: thinner than {MAX_ASPECT}:1, too thin to fit a square"
    return None


def read_folder(cfg) -> Dataset:
    """Read every image under the folder cfg.source names.

    Channels default to 1 when every image is grey, 4 when any has alpha, else 3. Resolution
    defaults to the median (lower median) of each image's shorter side, capped at 128 pixels.
    Unreadable or truncated files are skipped and listed in the report, unless more than
    cfg.max_bad_fraction of the files are bad; a possible decompression bomb is always refused.
    """
    root = Path(cfg.source).expanduser()
    if not root.exists():
        raise DataError(f"data source {cfg.source!r} not found: expected a folder of images or one "
                        f"of: {', '.join(NAMED_SOURCES)}")
    if not root.is_dir():
        raise DataError(f"data source {cfg.source!r} is a file, not a folder: put the images in a "
                        "folder and give the folder")
    paths = find_images(root)
    if not paths:
        raise DataError(f"no image files found in {root} (looked for {', '.join(EXTENSIONS)}, "
                        "in sub-folders too, any letter case)")
    classes = folder_classes(root, paths, cfg.labels)
    report = LoadReport(found=len(paths))

    probes = _probe(paths, report.skipped)
    channels, resolution = _choose(cfg, probes)
    arrays, decoded = _decode(probes, channels, resolution, cfg.fit, report.skipped)
    if decoded and _choose(cfg, decoded) != (channels, resolution):
        # A file whose header voted then failed to decode swung a default (say, one truncated RGB
        # file among grey ones); decode the good files again without its vote.
        channels, resolution = _choose(cfg, decoded)
        arrays, decoded = _decode(decoded, channels, resolution, cfg.fit, report.skipped)
    kept = [i for i, *_ in decoded]
    report.skipped.sort(key=lambda s: s[0])
    report.loaded = len(arrays)

    bad = len(report.skipped)
    first = (f"first: {Path(report.skipped[0][0]).relative_to(root)}: {report.skipped[0][1]}"
             if bad else "")
    if not arrays:
        raise DataError(f"none of the {len(paths)} image files in {root} could be read ({first})")
    if report.bad_fraction > cfg.max_bad_fraction:
        limit = f"{cfg.max_bad_fraction * 100:g}%"
        raise DataError(f"{bad} of {len(paths)} files in {root} could not be read ({first}); refusing "
                        f"to train: more than {limit} of the files are bad (data.max_bad_fraction); "
                        "fix or remove them")

    labels, class_names = None, []
    if classes is not None:  # named by the images that loaded, so every class has examples
        class_names = sorted({classes[i] for i in kept})
        index = {name: k for k, name in enumerate(class_names)}
        labels = torch.tensor([index[classes[i]] for i in kept], dtype=torch.int64)
    return Dataset(kind="image", items=torch.from_numpy(np.stack(arrays)), labels=labels,
                   class_names=class_names, source=cfg.source, report=report,
                   names=[paths[i].relative_to(root).as_posix() for i in kept], files=paths)


def open_fashion_mnist(cfg) -> Dataset:
    """Fashion-MNIST by name: the training or test split, or the bundled sample, fitted to the request."""
    if cfg.source == "fashion-mnist-sample":
        images, labels = fashion_mnist.load_sample()
    else:
        split = "test" if cfg.source == "fashion-mnist-test" else "train"
        images, labels = fashion_mnist.load(cfg.root, cfg.download, split)
    channels, resolution = cfg.channels or 1, cfg.resolution or images.shape[-1]
    if images.shape[1:] != (resolution, resolution):
        images = np.stack([to_array(Image.fromarray(a), 1, resolution, cfg.fit)[0] for a in images])
    # Resize in grey, then replicate: the same pixels as Pillow's L -> RGB(A), a third of the work.
    items = np.repeat(images[:, None], min(channels, 3), axis=1)
    if channels == 4:
        items = np.concatenate([items, np.full_like(items[:, :1], 255)], axis=1)
    keep_labels = cfg.labels != "none"
    return Dataset(kind="image", items=torch.from_numpy(np.ascontiguousarray(items)),
                   labels=torch.from_numpy(labels) if keep_labels else None,
                   class_names=list(fashion_mnist.CLASS_NAMES) if keep_labels else [],
                   source=cfg.source, report=LoadReport(found=len(images), loaded=len(images)))


PNG_METADATA_KEY = "genforge"  # the text chunk holding how an image was made (JSON)


def read_metadata(path: str | Path) -> dict | None:
    """The generation record stored in a PNG by write(), or None when it has none."""
    with Image.open(path) as image:
        text = getattr(image, "text", {}).get(PNG_METADATA_KEY)
    return json.loads(text) if text else None


def _to_pil(item: torch.Tensor) -> Image.Image:
    """One uint8 item [C, H, W] as an L, RGB or RGBA image."""
    arr = item.detach().cpu().numpy()
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[0] not in MODES:
        raise ValueError(f"expected a uint8 image [C, H, W] with C in 1, 3, 4; got {arr.dtype} {arr.shape}")
    return Image.fromarray(arr[0] if arr.shape[0] == 1 else arr.transpose(1, 2, 0))


class ImageModality(Modality):
    """Images as uint8 [N, C, H, W]; models see float32 in [-1, 1]."""

    name = "image"
    options_type = ImageOptions
    default_metrics = ("fd", "kid", "prdc", "memorisation")
    default_extractor = None  # the domain encoder trained on the data, found by fingerprint
    evaluation_samples = 10_000
    named_sources, extensions = NAMED_SOURCES, EXTENSIONS
    # Class-conditional diffusion samples with classifier-free guidance 1.7 at noise levels in
    # (0.3, 5] only (6 of the default 20 steps; benchmarks/README.md, "Quality per CPU-minute"):
    # at cpu-small on Fashion-MNIST, FD-fashion-mnist 0.269 against 0.354 with guidance 1.3 at
    # every step after 5 minutes of training, 0.237 against 0.272 after 10, 0.141 against 0.149
    # after 30. Guiding at every step, scales above 1.3 hurt longer-trained models. A guided step
    # costs two evaluations, so the interval also makes sampling cheaper (26 against 40).
    sampling_presets = (SamplingPreset(
        "diffusion", "class-conditional images", lambda spec: spec.num_classes > 0,
        {"guidance": 1.7, "guidance_interval": (0.3, 5.0)}),)

    def open(self, data_config) -> Dataset:
        """The named dataset or folder cfg.source gives; a name wins over a folder of that name."""
        if data_config.source in NAMED_SOURCES:
            return open_fashion_mnist(data_config)
        return read_folder(data_config)

    def check_file(self, path: Path) -> None:
        """An image file whose header Pillow reads and whose size passes the budgets."""
        super().check_file(path)
        try:
            with _refuse_bombs(Path(path).name), Image.open(path) as img:
                problem = size_problem(img)
        except DataError:
            raise
        except Exception as e:  # Pillow's plugins raise many types on corrupt input
            raise DataError(f"{Path(path).name}: {_reason(e)}") from None
        if problem:
            raise DataError(f"{Path(path).name}: {problem}")

    def model_shape(self, item_shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(item_shape)

    def to_model(self, items: torch.Tensor) -> torch.Tensor:
        """uint8 [0, 255] -> float32 [-1, 1]."""
        return items.to(torch.float32) / 127.5 - 1.0

    def from_model(self, x: torch.Tensor) -> torch.Tensor:
        """float [-1, 1] -> uint8, clamped and rounded (NaN becomes mid-grey rather than garbage)."""
        x = torch.nan_to_num(x.to(torch.float32))
        return ((x + 1.0) * 127.5).clamp(0, 255).round().to(torch.uint8)

    def write(self, items: torch.Tensor, folder: Path, stems: list[str],
              metadata: list[dict] | None = None) -> list[Path]:
        """One PNG per item, each written to a temp name and renamed so no half-written file
        appears; metadata (one dict per item) goes into a 'genforge' text chunk as JSON."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for i, item, stem in named_items(items, stems):
            image, info = _to_pil(item), None
            if metadata is not None:
                info = PngInfo()
                info.add_text("Software", "genforge")
                info.add_text(PNG_METADATA_KEY, json.dumps(metadata[i], sort_keys=True))
            paths.append(io.write_with(folder / f"{stem}.png",
                                       lambda tmp: image.save(tmp, format="PNG", pnginfo=info)))
        return paths

    def preview(self, items: torch.Tensor, columns: int | None = None) -> Image.Image:
        """A grid of items with 2 px of black around each; float items are taken as model output."""
        if items.is_floating_point():
            items = self.from_model(items)
        n, c, h, w = items.shape
        if n == 0:
            raise ValueError("preview needs at least one item")
        pad, columns = 2, columns or math.ceil(math.sqrt(n))
        rows = math.ceil(n / columns)
        grid = Image.new(MODES[c], (columns * (w + pad) + pad, rows * (h + pad) + pad), 0)
        for k, item in enumerate(items):
            row, col = divmod(k, columns)
            grid.paste(_to_pil(item), (pad + col * (w + pad), pad + row * (h + pad)))
        return grid


    def watermark(self, items: torch.Tensor, weights_sha256: str | None, enabled: bool, *,
                  signed: bool = True) -> tuple[torch.Tensor, dict]:
        """Images of at least 128x128 carry the invisible watermark naming the model."""
        return marking.mark_images(items, weights_sha256, enabled=enabled, signed=signed)

    has_display_copies = True

    def display_copies(self, items: torch.Tensor, size: int, resample: str) -> torch.Tensor | None:
        """Images under the watermark's minimum upscaled (marking.upscale); None for the
        others, which carry the mark themselves."""
        h, w = items.shape[-2:]
        return None if watermark.fits(h, w) else marking.upscale(items, size, resample)

    def encoder_input(self) -> EncoderInput:
        """Images [N, C, H, W] at any size; classifier views light, SimCLR views strong."""
        return EncoderInput(lambda shape: len(shape) == 3, tuple, image_views.to_model,
                            lambda x, g: image_views.augment(x, image_views.STRONG, g),
                            lambda x, g: image_views.augment(x, image_views.LIGHT, g),
                            image_views.DEFAULT_DIM, None, "images [N, C, H, W]")

IMAGE = ImageModality()
