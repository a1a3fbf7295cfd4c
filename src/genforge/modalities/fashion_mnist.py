"""Fashion-MNIST (Xiao, Rasul, Vollgraf 2017, arXiv:1708.07747): IDX files, finding them, downloading them.

Returns plain numpy arrays (images uint8 [N, 28, 28], labels int64 [N]); `image.py` turns them into a
Dataset. Files found locally are checked for shape only, so any valid IDX pair can stand in; files
this module downloads are checked against the sha256 of their *decompressed* content, because
Debian recompresses the .gz files and only content hashes agree across sources.
"""
from __future__ import annotations

import gzip
import hashlib
import math
import os
import tempfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError

CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

DEFAULT_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
URL_ENV = "GENFORGE_FASHION_MNIST_URL"
DATA_ENV = "GENFORGE_DATA"
# Debian's dataset-fashion-mnist package; a module constant so tests can point it elsewhere.
SYSTEM_DIRS = (Path("/usr/share/datasets/fashion-mnist"),)

SPLITS = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
          "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
# sha256 of the decompressed content of each official file.
SHA256 = {
    "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    "train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
}

# The bundled class-balanced sample, made by scripts/make_fashion_sample.py.
SAMPLE_DIR = Path(__file__).resolve().parent.parent / "data"
SAMPLE_FILES = ("fashion-mnist-sample-images-idx3-ubyte.gz", "fashion-mnist-sample-labels-idx1-ubyte.gz")

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


MAX_IDX_BYTES = 256 << 20  # Fashion-MNIST's largest file holds 47 MB; EMNIST-balanced 103 MB


def idx_header(head: bytes, name: str) -> tuple[np.dtype, tuple[int, ...], int, int]:
    """(dtype, shape, header length, total length) from the start of an IDX file, checked before
    anything is allocated: DataError unless the magic number is right and the data it promises
    is at most MAX_IDX_BYTES. `head` holds at least the first 4 bytes, or the whole header."""
    if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in _IDX_DTYPES:
        raise DataError(f"{name} is not an IDX file (bad magic number {head[:4].hex() or 'empty'})")
    dtype, ndim = np.dtype(_IDX_DTYPES[head[2]]), head[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(head) < header:
        raise DataError(f"{name} is a malformed IDX file ({ndim} dimensions, {len(head)} bytes)")
    shape = tuple(int(d) for d in np.frombuffer(head, ">u4", ndim, 4))
    size = math.prod(shape) * dtype.itemsize
    if size > MAX_IDX_BYTES:
        raise DataError(f"{name}: its header promises shape {shape} ({size:,} bytes), more than "
                        f"the {MAX_IDX_BYTES >> 20} MiB an IDX file may hold here")
    return dtype, shape, header, header + size


def parse_idx(data: bytes, name: str) -> np.ndarray:
    """Decode the bytes of one IDX file (http://yann.lecun.com/exdb/mnist/ format); name is for errors."""
    dtype, shape, header, expected = idx_header(data[:4 + 4 * 255], name)  # the longest header
    if len(data) != expected:
        raise DataError(f"{name} is a malformed IDX file: header says shape {shape} "
                        f"({expected} bytes) but the file has {len(data)} bytes")
    # A copy, so the array is writable (torch warns about read-only buffers) and owns its memory.
    return np.frombuffer(data, dtype, offset=header).reshape(shape).copy()


def encode_idx(array: np.ndarray) -> bytes:
    """The IDX bytes of a uint8 array (the inverse of parse_idx for the type Fashion-MNIST uses)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    return header + array.tobytes()


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file, gzipped or plain (told apart by the gzip magic number). The header is
    read first and checked, so a small file (a gzip bomb, say) cannot make it allocate more than
    the header promises, nor the header promise more than MAX_IDX_BYTES."""
    try:
        with open(path, "rb") as raw:
            packed = raw.read(2) == b"\x1f\x8b"
            raw.seek(0)
            f = gzip.GzipFile(fileobj=raw) if packed else raw
            head = f.read(4)
            head += f.read(4 * head[3]) if len(head) == 4 else b""
            dtype, shape, header, expected = idx_header(head, str(path))
            buffer = bytearray(expected - header)  # writable: the array owns it, no copy
            got = f.readinto(buffer)
            while got < len(buffer) and (more := f.readinto(memoryview(buffer)[got:])):
                got += more  # gzip hands out at most one member's worth at a time
            extra = f.read(1)
    except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
        raise DataError(f"cannot read {path}: {e}") from None
    if got != len(buffer) or extra:
        size = f"{header + got} bytes" if not extra else "more bytes"
        raise DataError(f"{path} is a malformed IDX file: header says shape {shape} "
                        f"({expected} bytes) but the file has {size}")
    return np.frombuffer(buffer, dtype).reshape(shape)


def locate(folder: Path, name: str) -> Path | None:
    """The file `name` in folder, or its un-gzipped twin; None when neither exists."""
    for candidate in (folder / name, folder / name.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None


def read_pair(folder: Path, images_name: str, labels_name: str) -> tuple[np.ndarray, np.ndarray]:
    """Read and cross-check an images/labels IDX pair: uint8 [N, H, W] and int64 [N] with N equal."""
    paths = [locate(folder, n) for n in (images_name, labels_name)]
    if None in paths:
        missing = [n for n, p in zip((images_name, labels_name), paths) if p is None]
        raise DataError(f"{folder} lacks {', '.join(missing)}")
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataError(f"{paths[0]} should hold uint8 images [N, H, W], got {images.dtype} {images.shape}")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise DataError(f"{paths[1]} should hold uint8 labels [N], got {labels.dtype} {labels.shape}")
    if len(images) != len(labels):
        raise DataError(f"{paths[0]} has {len(images)} images but {paths[1]} has {len(labels)} labels")
    if labels.size and labels.max() >= len(CLASS_NAMES):
        raise DataError(f"{paths[1]} has label {labels.max()}; Fashion-MNIST labels are 0-9")
    return images, labels.astype(np.int64)


def cache_dir() -> Path:
    """Where downloads go: $XDG_CACHE_HOME/genforge/fashion-mnist, else ~/.cache/genforge/fashion-mnist."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "genforge" / "fashion-mnist"


def search_dirs() -> list[Path]:
    """Folders searched in order when no root is given: $GENFORGE_DATA/fashion-mnist, Debian's, the cache."""
    dirs = [Path(os.environ[DATA_ENV]) / "fashion-mnist"] if os.environ.get(DATA_ENV) else []
    return dirs + list(SYSTEM_DIRS) + [cache_dir()]


def _content_sha256(path: Path) -> str:
    """sha256 of a gzip file's decompressed content."""
    digest = hashlib.sha256()
    with gzip.open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download(dest: Path, base_url: str | None = None, timeout: float = 60.0) -> Path:
    """Fetch the four official files into dest, verifying each; return dest."""
    base = (base_url or os.environ.get(URL_ENV) or DEFAULT_URL).rstrip("/") + "/"
    dest.mkdir(parents=True, exist_ok=True)
    for name, expected in SHA256.items():
        if (dest / name).is_file():
            continue
        url = base + name
        # A temp file in the same folder, so os.replace is atomic and a broken download never
        # leaves a file under the final name.
        fd, tmp_name = tempfile.mkstemp(dir=dest, prefix=f".{name}.", suffix=".part")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
                for block in iter(lambda: response.read(1 << 20), b""):
                    out.write(block)
            try:
                actual = _content_sha256(tmp)
            except (OSError, EOFError, zlib.error) as e:
                raise DataError(f"download of {url} is not a valid gzip file ({e}); "
                                "the file was not kept") from None
            if actual != expected:
                raise DataError(f"checksum mismatch for {url}: content sha256 {actual}, expected "
                                f"{expected}; the file was not kept")
            os.replace(tmp, dest / name)
        finally:
            tmp.unlink(missing_ok=True)
    return dest


def _install_hint() -> str:
    return (f"install it with `apt-get install dataset-fashion-mnist`, or set {DATA_ENV} to a "
            "folder holding fashion-mnist/train-images-idx3-ubyte.gz and friends")


def find(root: str | None = None, allow_download: bool = True, split: str = "train") -> Path:
    """The folder holding the split's files: root if given, else the search path, else a fresh download."""
    images_name, labels_name = SPLITS[split]
    if root is not None:
        folder = Path(root).expanduser()
        if locate(folder, images_name) is None or locate(folder, labels_name) is None:
            raise DataError(f"Fashion-MNIST not found in data.root {folder}: expected "
                            f"{images_name} and {labels_name} there")
        return folder
    looked = search_dirs()
    for folder in looked:
        if locate(folder, images_name) and locate(folder, labels_name):
            return folder
    where = ", ".join(str(p) for p in looked)
    if not allow_download:
        raise DataError(f"Fashion-MNIST not found (looked in {where}) and downloading is off; "
                        f"{_install_hint()}")
    base = os.environ.get(URL_ENV) or DEFAULT_URL
    try:
        return download(cache_dir(), base)
    except (urllib.error.URLError, OSError) as e:  # URLError, HTTPError, timeouts, disk errors
        reason = getattr(e, "reason", None) or e
        raise DataError(f"Fashion-MNIST not found (looked in {where}) and the download from {base} "
                        f"failed ({reason}); {_install_hint()}") from None


def load(root: str | None = None, allow_download: bool = True,
         split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 [N, 28, 28] and labels int64 [N] of the full training (or test) set."""
    return read_pair(find(root, allow_download, split), *SPLITS[split])


def load_sample() -> tuple[np.ndarray, np.ndarray]:
    """The bundled sample: 4,000 training images, 400 per class."""
    return read_pair(SAMPLE_DIR, *SAMPLE_FILES)
