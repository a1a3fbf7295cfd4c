"""Dataset audit: what a model is about to learn from, before it learns it.

Sizes and modes of the originals, exact duplicates (decoded pixels; file bytes for folders), near
duplicates (perceptual hash, confirmed by correlation), neighbours in a domain encoder's feature
space, unreadable files, class balance, the dataset's licence/source/consent manifest, and C2PA
training-and-mining assertions. Pure functions over a Dataset plus the files behind it; api.audit
and api.train call them, the CLI formats the result.
"""
from __future__ import annotations

import hashlib
import io as _io
import json
import os
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from . import io
from .errors import ConfigError, DataError
from .modalities.base import Dataset
from .modalities.image import NAMED_SOURCES

FORMAT_VERSION = 1
# Near duplicates: pHash within NEAR_HAMMING bits AND 32x32 grey thumbnails correlating at
# NEAR_CORRELATION or more. The hash alone is not enough for small images: on Fashion-MNIST 17% of
# items have another within 4 bits (distinct garments with the same silhouette), while brightened
# (x1.15 +10) and JPEG-recompressed (q75) copies were within 6 bits for 99% and correlated >= 0.991
# (q50: 0.979 at the lowest). At these settings Fashion-MNIST's 60,000 items hold 275 pairs, most of
# them the same product photographed twice; --dedup would drop 231 (0.4%).
NEAR_HAMMING = 6
NEAR_CORRELATION = 0.99
THUMB = 32
# Feature-space neighbours: pairs whose centred encoder features are at an angle below FEATURE_RATIO
# of the median nearest-neighbour angle (1/3, as the memorisation metric's ratio). A fixed cosine
# does not work: a classifier encoder packs a class tightly (Fashion-MNIST sample: median nearest
# neighbour at cosine 0.986). There 1.5% of items have such a neighbour, and 65% of JPEG (q75)
# copies are found; features are no substitute for the hashes, they add what the encoder confuses.
FEATURE_RATIO = 1 / 3
FEATURE_SAMPLE = 1000  # items whose nearest neighbour sets the median angle
FEATURE_KMEANS_STEPS = 5
# Class balance: warn when one class holds more than half the items, or is more than 5 times the
# smallest (a conditional model then sees too few of the small class to learn it).
DOMINANT_SHARE = 0.5
IMBALANCE_RATIO = 5.0
# Training warns above this share of items that --dedup would drop.
DUPLICATE_WARN_SHARE = 0.01
LISTED_GROUPS = 1000  # groups listed in the report; the counts cover all of them

MANIFEST_NAME = "genforge-dataset.json"
MANIFEST_FIELDS = ("licence", "source", "consent")
_FASHION = {"licence": "MIT (Copyright (c) 2017 Zalando SE)",
            "source": "Fashion-MNIST, Zalando Research (Xiao, Rasul, Vollgraf 2017), "
                      "https://github.com/zalandoresearch/fashion-mnist",
            "consent": "released for any use under the MIT licence by the rights holder, Zalando SE"}
_FASHION_NAMES = ("fashion-mnist", "fashion-mnist-test", "fashion-mnist-sample")
BUILT_IN_MANIFESTS = {name: _FASHION for name in _FASHION_NAMES}
STORED_SHAPES = {name: {"width": 28, "height": 28, "mode": "L"} for name in _FASHION_NAMES}

# C2PA: a "training and data mining" assertion saying notAllowed to either entry excludes the file.
MINING_LABELS = ("c2pa.training-mining", "cawg.training-mining")
TRAINING_ENTRIES = ("c2pa.ai_generative_training", "c2pa.ai_training",
                    "cawg.ai_generative_training", "cawg.ai_training")
C2PA_MARKER = b"c2pa"  # the JUMBF label every embedded manifest store carries


# ----- hashes -------------------------------------------------------------------------------------

def pixel_hashes(items: np.ndarray) -> list[bytes]:
    """A 128-bit content hash of each item's bytes (items [N, ...], any integer dtype)."""
    flat = np.ascontiguousarray(items).reshape(len(items), -1)
    return [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in flat]


def _dct_matrix(n: int) -> np.ndarray:
    """Orthonormal DCT-II matrix [n, n]: row k is frequency k."""
    k, i = np.arange(n)[:, None], np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2 / n)
    m[0] /= np.sqrt(2)
    return m


def _resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """[n_out, n_in] weights of a triangle (bilinear) filter widened when shrinking, like Pillow's."""
    scale = n_in / n_out
    support = max(scale, 1.0)
    centres = (np.arange(n_out) + 0.5) * scale
    w = np.clip(1 - np.abs(np.arange(n_in)[None, :] + 0.5 - centres[:, None]) / support, 0, None)
    return w / w.sum(1, keepdims=True)


def _grey(items: np.ndarray) -> np.ndarray:
    """float32 [n, H, W] luma (ITU-R 601, as Pillow's "L") of uint8 [n, C, H, W]; alpha ignored."""
    x = items.astype(np.float32)
    if x.shape[1] < 3:
        return x[:, 0]
    return 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]


def _phash_matrices(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column matrices [8, H], [8, W]: resize to 32 then DCT rows 1..8, in one product."""
    dct = _dct_matrix(THUMB)[1:9]
    return ((dct @ _resize_matrix(h, THUMB)).astype(np.float32),
            (dct @ _resize_matrix(w, THUMB)).astype(np.float32))


def perceptual_hashes(items: np.ndarray, chunk: int = 8192) -> np.ndarray:
    """64-bit pHashes (uint64 [N]) of uint8 images [N, C, H, W].

    pHash as in the pHash library: grey, resize to 32x32, 2-D DCT, the 8x8 block of the lowest
    frequencies after the DC row and column ([1:9, 1:9]), one bit per coefficient above their
    median. Resizing and the DCT are both linear, so they fold into one [8, H] matrix per side.
    """
    n, _, h, w = items.shape
    rows, cols = _phash_matrices(h, w)
    hashes = np.empty(n, np.uint64)
    for s in range(0, n, chunk):
        coef = (rows @ _grey(items[s:s + chunk]) @ cols.T).reshape(-1, 64)
        bits = coef > np.median(coef, axis=1, keepdims=True)
        hashes[s:s + chunk] = np.packbits(bits, axis=1).view(">u8")[:, 0]
    return hashes


def thumbnails(items: np.ndarray, chunk: int = 8192) -> tuple[np.ndarray, np.ndarray]:
    """Mean-free 32x32 grey thumbnails of uint8 images, as int16 [N, 1024] and a float32 scale [N]
    (thumbnail / its norm = int16 x scale); a flat image gets scale 0: it correlates with nothing.
    Quantised because float16 converts slowly on CPUs, and 1/32767 of the peak costs no accuracy."""
    n, _, h, w = items.shape
    rows, cols = _resize_matrix(h, THUMB).astype(np.float32), _resize_matrix(w, THUMB).astype(np.float32)
    quantised, scale = np.empty((n, THUMB * THUMB), np.int16), np.zeros(n, np.float32)
    for s in range(0, n, chunk):
        t = (rows @ _grey(items[s:s + chunk]) @ cols.T).reshape(-1, THUMB * THUMB)
        t -= t.mean(1, keepdims=True)
        peak = np.abs(t).max(1, keepdims=True)
        q = np.rint(t * (32767 / np.maximum(peak, 1e-6)))
        norm = np.linalg.norm(q, axis=1)
        quantised[s:s + chunk] = q
        scale[s:s + chunk] = np.where(peak[:, 0] > 1e-3, 1 / np.maximum(norm, 1e-6), 0)
    return quantised, scale


_POPCOUNT8 = np.array([bin(i).count("1") for i in range(256)], np.uint8)


def popcount(x: np.ndarray) -> np.ndarray:
    """Set bits of each uint64."""
    if hasattr(np, "bitwise_count"):  # numpy >= 2.0
        return np.bitwise_count(x)
    return _POPCOUNT8[x.astype(np.uint64).view(np.uint8)].reshape(-1, 8).sum(1)


def hamming_pairs(hashes: np.ndarray, max_distance: int, limit: int = 4_000_000) -> np.ndarray:
    """All pairs [k, 2] (i < j) of 64-bit hashes at most max_distance (<= 7) bits apart.

    Multi-index hashing (Norouzi et al. 2012): cut each hash into four 16-bit chunks; a pair within
    7 bits differs in at most one bit on some chunk (pigeonhole), so looking each chunk up in its
    own table, and its 16 one-bit neighbours, finds every such pair without comparing all pairs.
    Candidates are expanded about `limit` at a time, so memory stays bounded.
    """
    if not 0 <= max_distance <= 7:
        raise ValueError(f"max_distance must be in 0..7, got {max_distance}")
    hashes = np.asarray(hashes, np.uint64)
    n = len(hashes)
    found = [np.zeros(0, np.int64)]
    for c in range(4):
        key = ((hashes >> np.uint64(16 * c)) & np.uint64(0xFFFF)).astype(np.int64)
        order = np.argsort(key, kind="stable")
        sizes = np.bincount(key, minlength=1 << 16)
        starts = np.cumsum(sizes) - sizes  # items with key k sit at order[starts[k]:][:sizes[k]]
        for mask in [0] + [1 << b for b in range(16)]:
            target = key ^ mask
            lo, counts = starts[target], sizes[target]
            ends = np.cumsum(counts)
            start = 0
            while start < n:  # a slice of queries with about `limit` candidates
                stop = min(n, max(start + 1, int(np.searchsorted(ends, ends[start] + limit))))
                cnt = counts[start:stop]
                total = int(cnt.sum())
                if total:
                    i = np.repeat(np.arange(start, stop), cnt)
                    j = order[np.repeat(lo[start:stop] - (np.cumsum(cnt) - cnt), cnt)
                              + np.arange(total)]
                    keep = i < j
                    i, j = i[keep], j[keep]
                    close = popcount(hashes[i] ^ hashes[j]) <= max_distance
                    found.append(i[close] * n + j[close])
                start = stop
    codes = np.unique(np.concatenate(found))
    return np.stack([codes // max(n, 1), codes % max(n, 1)], 1)


def _cosines(vectors: np.ndarray, scale: np.ndarray, pairs: np.ndarray,
             chunk: int = 8192) -> np.ndarray:
    """Cosine similarity of the rows (vectors x scale has unit norm) of each pair, in float32."""
    out = np.empty(len(pairs), np.float32)
    for s in range(0, len(pairs), chunk):
        a, b = pairs[s:s + chunk, 0], pairs[s:s + chunk, 1]
        dots = np.einsum("ij,ij->i", vectors[a].astype(np.float32), vectors[b].astype(np.float32))
        out[s:s + chunk] = dots * scale[a] * scale[b]
    return out


# ----- duplicates ---------------------------------------------------------------------------------

def exact_groups(keys: list) -> list[list[int]]:
    """Groups (two or more, in index order) of positions whose keys are equal."""
    by_key: dict[Any, list[int]] = {}
    for i, key in enumerate(keys):
        by_key.setdefault(key, []).append(i)
    return sorted((g for g in by_key.values() if len(g) > 1), key=lambda g: g[0])


def near_pairs(items: np.ndarray, candidates: list[int]) -> np.ndarray:
    """Pairs [k, 2] of dataset indices among candidates that are near duplicates (see NEAR_*)."""
    if len(candidates) < 2:
        return np.zeros((0, 2), np.int64)
    index = np.asarray(candidates)
    pairs = hamming_pairs(perceptual_hashes(items[index]), NEAR_HAMMING)
    # Thumbnails only for the items in a candidate pair: a fraction of the data, in memory at once.
    involved, local = np.unique(pairs, return_inverse=True)
    vectors, scale = thumbnails(items[index[involved]])
    close = _cosines(vectors, scale, local.reshape(-1, 2)) >= NEAR_CORRELATION
    return index[pairs[close]] if close.any() else np.zeros((0, 2), np.int64)


def components(pairs: list[list[int]]) -> list[list[int]]:
    """Connected components (sorted, in order of their first item) of the graph these pairs draw."""
    parent: dict[int, int] = {}

    def root(x: int) -> int:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[int]] = {}
    for x in parent:
        groups.setdefault(root(x), []).append(x)
    return sorted((sorted(g) for g in groups.values()), key=lambda g: g[0])


def duplicate_drops(exact: list[list[int]], near: list[list[int]],
                    excluded: set[int] = frozenset()) -> list[int]:
    """What --dedup drops: every item that duplicates an earlier item that is kept.

    An exact group keeps its first member that is not excluded. Near pairs link exact groups (by
    their first items); in index order a group goes when it is near one kept earlier, so an item
    goes only when its twin stays, and a chain a~b~c where a and c differ keeps a and c.
    """
    members = {g[0]: g for g in exact}
    first = {i: g[0] for g in exact for i in g}
    earlier: dict[int, list[int]] = {}
    for a, b in near:
        a, b = sorted((first.get(a, a), first.get(b, b)))
        if a != b:
            earlier.setdefault(b, []).append(a)
    kept: dict[int, bool] = {}
    dropped: list[int] = []
    for node in sorted(set(members) | {first.get(i, i) for pair in near for i in pair}):
        alive = [i for i in members.get(node, [node]) if i not in excluded]
        gone = any(kept[e] for e in earlier.get(node, []))
        kept[node] = bool(alive) and not gone
        dropped += alive if gone else alive[1:]
    return sorted(dropped)


def copies_of(items: set[int], exact: list[list[int]], near: list[list[int]]) -> set[int]:
    """The items, their exact duplicates, and near duplicates of those (with their exact copies)."""
    def with_exact(found: set[int]) -> set[int]:
        for group in exact:
            if found.intersection(group):
                found = found | set(group)
        return found

    out = with_exact(set(items))
    out |= {b for a, b in near if a in out} | {a for a, b in near if b in out}
    return with_exact(out)


# ----- files, C2PA, manifest ----------------------------------------------------------------------

def training_permission(store: dict) -> tuple[str | None, str]:
    """('notAllowed' | 'constrained' | 'allowed' | None, detail) from a C2PA manifest store (as
    Reader.json() gives it). Any manifest in the store counts, the active one's or an ingredient's:
    a refusal anywhere in a file's history is respected. None: no training-mining assertion."""
    rank = {"allowed": 1, "constrained": 2, "notAllowed": 3}
    verdict, detail = None, ""
    for manifest in (store.get("manifests") or {}).values():
        for assertion in manifest.get("assertions") or []:
            label = str(assertion.get("label", "")).split("__")[0]  # "__N" numbers repeats
            if not label.startswith(MINING_LABELS):
                continue
            entries = (assertion.get("data") or {}).get("entries") or {}
            for entry in TRAINING_ENTRIES:
                use = (entries.get(entry) or {}).get("use")
                if use in rank and rank[use] > rank.get(verdict, 0):
                    verdict, detail = use, f"{label}: {entry} is {use}"
    return verdict, detail


class C2paUnavailable(DataError):
    """A file carries C2PA data and c2pa-python cannot be imported to read it."""


def read_c2pa(path: Path, data: bytes) -> dict | None:
    """The file's C2PA manifest store (Reader.json() as a dict), None without one.

    Files without the marker every embedded store carries never reach the reader (or its import),
    so data without C2PA costs one byte search per file. Raises C2paUnavailable when the package
    is missing and ValueError for a store the reader rejects.
    """
    if C2PA_MARKER not in data:
        return None
    try:
        import c2pa
    except (ImportError, OSError) as err:  # OSError: its native library failed to load
        raise C2paUnavailable(f"c2pa-python is not usable ({type(err).__name__}: {err}); "
                              "install it with 'pip install c2pa-python'") from None
    try:
        reader = c2pa.Reader.try_create(str(path))
        if reader is None:
            return None
        with reader:
            return json.loads(reader.json())
    except Exception as err:  # c2pa raises its own error family for malformed stores
        raise ValueError("unreadable C2PA manifest: " + " ".join(str(err).split())[:200]) from None


def _header(data: bytes) -> dict:
    """Format, width, height and mode from an image file's header (EXIF rotation applied)."""
    try:
        with Image.open(_io.BytesIO(data)) as img:
            w, h = img.size
            if img.getexif().get(0x0112) in (5, 6, 7, 8):  # rotated a quarter turn on display
                w, h = h, w
            return {"format": img.format, "width": w, "height": h, "mode": img.mode}
    except Exception:  # unreadable files are reported from the load report
        return {}


def scan_files(root: Path, paths: list[Path], index: dict[str, int]) -> dict:
    """Read every file once: header, sha256 of the bytes, C2PA permissions."""
    headers, digests = [], []
    c2pa: dict[str, Any] = {"manifests": 0, "not_allowed": [], "constrained": [], "unreadable": [],
                            "unchecked": []}
    for path in paths:
        data = path.read_bytes()
        record = {"path": path.relative_to(root).as_posix(), "index": index.get(str(path))}
        headers.append(_header(data))
        digests.append(hashlib.sha256(data).hexdigest())
        try:
            store = read_c2pa(path, data)
        except C2paUnavailable as err:
            c2pa["unchecked"].append({**record, "reason": str(err)})
            continue
        except ValueError as err:
            c2pa["unreadable"].append({**record, "reason": str(err)})
            continue
        if store is None:
            continue
        c2pa["manifests"] += 1
        verdict, detail = training_permission(store)
        if verdict in ("notAllowed", "constrained"):
            c2pa["not_allowed" if verdict == "notAllowed" else "constrained"].append(
                {**record, "assertion": detail})
    rels = [p.relative_to(root).as_posix() for p in paths]
    return {"originals": originals([h for h in headers if h], "file headers"),
            "file_duplicates": [[rels[i] for i in g] for g in exact_groups(digests)],
            "c2pa": c2pa}


def _spread(values: list[float]) -> dict:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def originals(headers: list[dict], where: str) -> dict:
    """Width, height and aspect-ratio spread, modes and formats of the original files."""
    if not headers:
        return {"from": where}
    widths, heights = [h["width"] for h in headers], [h["height"] for h in headers]
    return {"from": where, "width": _spread(widths), "height": _spread(heights),
            "aspect": {k: round(v, 4) for k, v in
                       _spread([w / max(h, 1) for w, h in zip(widths, heights)]).items()},
            "modes": dict(Counter(h["mode"] for h in headers).most_common()),
            "formats": dict(Counter(str(h.get("format")) for h in headers).most_common())}


def read_manifest(source: str) -> dict:
    """Licence, source and consent: built in for named datasets, else DATA/genforge-dataset.json."""
    if source in NAMED_SOURCES:
        return {**BUILT_IN_MANIFESTS.get(source, {}), "file": "built in"}
    path = Path(source).expanduser() / MANIFEST_NAME
    if not path.is_file():
        return {"file": None}
    try:
        fields = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: not a readable dataset manifest ({err}); fix or remove it") from None
    if not isinstance(fields, dict):
        raise DataError(f"{path}: a dataset manifest is a JSON object, got {type(fields).__name__}")
    return {**fields, "file": str(path)}


def write_manifest(data: str, **fields: str | None) -> Path:
    """Set fields (licence, source, consent) in DATA/genforge-dataset.json, keeping the others."""
    if data in NAMED_SOURCES:
        raise ConfigError(f"{data} is a named dataset; its licence and source are built in")
    folder = Path(data).expanduser()
    if not folder.is_dir():
        raise DataError(f"{data} is not a folder: the manifest lives in the data folder")
    unknown = set(fields) - set(MANIFEST_FIELDS)
    if unknown:
        raise ConfigError(f"unknown manifest field {sorted(unknown)[0]!r} (known: "
                          f"{', '.join(MANIFEST_FIELDS)})")
    current = read_manifest(data)
    current.pop("file")
    current.update({k: v for k, v in fields.items() if v is not None})
    return io.write_json(folder / MANIFEST_NAME, current)


# ----- features -----------------------------------------------------------------------------------

def _nearest_cells(x: np.ndarray, centroids: np.ndarray, chunk: int = 8192) -> np.ndarray:
    """Indices [N, 2] of each row's most similar centroid and its second (argmax twice: cheaper
    than a partial sort)."""
    out = np.empty((len(x), 2), np.int64)
    for s in range(0, len(x), chunk):
        sims = x[s:s + chunk] @ centroids.T
        out[s:s + chunk, 0] = sims.argmax(1)
        if sims.shape[1] > 1:
            sims[np.arange(len(sims)), out[s:s + chunk, 0]] = -np.inf
        out[s:s + chunk, 1] = sims.argmax(1)
    return out


def feature_neighbours(features: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray, float]:
    """Pairs [k, 2] of items closer in feature space than FEATURE_RATIO x the median nearest-
    neighbour angle, their cosines, and that angle (radians).

    An inverted-file search (as FAISS's IVF): spherical k-means cuts the centred unit features into
    about sqrt(N) cells, and each item is compared with the items of its two nearest cells only;
    a pair this close is split across both cells' borders rarely. All pairs would be 60,000^2 x 256
    multiply-adds for Fashion-MNIST, minutes on two cores; this is about N^1.5.
    """
    x = features.astype(np.float32) - features.mean(0, dtype=np.float64).astype(np.float32)
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    n, rng = len(x), np.random.default_rng(seed)
    probe = np.sort(rng.choice(n, min(n, FEATURE_SAMPLE), replace=False))
    nearest = np.empty(len(probe), np.float32)
    for s in range(0, len(probe), 256):
        sims = x[probe[s:s + 256]] @ x.T
        sims[np.arange(len(sims)), probe[s:s + 256]] = -1  # not itself
        nearest[s:s + 256] = sims.max(1)
    median_angle = float(np.median(np.arccos(np.clip(nearest, -1, 1))))
    min_cos = float(np.cos(FEATURE_RATIO * median_angle))
    centroids = x[rng.choice(n, max(1, int(np.sqrt(n))), replace=False)].copy()
    for _ in range(FEATURE_KMEANS_STEPS):
        home = _nearest_cells(x, centroids)[:, 0]
        order = np.argsort(home, kind="stable")
        cells, starts = np.unique(home[order], return_index=True)
        sums = np.add.reduceat(x[order], starts, axis=0)  # empty cells keep their centroid
        centroids[cells] = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
    top2 = _nearest_cells(x, centroids)
    found = [np.zeros(0, np.int64)]
    for cell in range(len(centroids)):
        members = np.flatnonzero(top2[:, 0] == cell)
        queries = np.flatnonzero((top2 == cell).any(1))
        step = max(1, 16_000_000 // max(len(members), 1))  # similarity blocks of <= 64 MB
        for s in range(0, len(queries) if len(members) else 0, step):
            q, m = np.nonzero(x[queries[s:s + step]] @ x[members].T >= min_cos)
            a, b = queries[s:s + step][q], members[m]
            found.append((np.minimum(a, b) * n + np.maximum(a, b))[a != b])
    codes = np.unique(np.concatenate(found))
    pairs = np.stack([codes // n, codes % n], 1)
    return pairs, _cosines(x, np.ones(n, np.float32), pairs), median_angle


# ----- the report ---------------------------------------------------------------------------------

def cache_dir() -> Path:
    """Where audit hashes are cached ($GENFORGE_CACHE/audit), keyed by fingerprint and file stats."""
    return io.cache_dir("audit")


def cache_key(dataset: Dataset) -> str:
    """What the heavy part of an audit depends on: the items, and each file's path, size and time."""
    digest = hashlib.sha256(f"genforge-audit-{FORMAT_VERSION}:{dataset.fingerprint}".encode())
    for path in dataset.files or []:
        st = os.stat(path)
        digest.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    digest.update(f"{NEAR_HAMMING}:{NEAR_CORRELATION}".encode())
    return digest.hexdigest()


def heavy_part(dataset: Dataset) -> dict:
    """Hashes, duplicate groups, originals and C2PA: the part of the audit worth caching. The
    files are the ones the loader read (Dataset.files): the folder is not walked again."""
    started = time.perf_counter()
    items = dataset.items.numpy()
    if dataset.files is None:
        scanned = {"originals": {"from": "stored shape", **STORED_SHAPES.get(dataset.source, {})},
                   "file_duplicates": [], "c2pa": None}
    else:
        root = Path(dataset.source).expanduser()
        scanned = scan_files(root, dataset.files,
                             {str(root / n): i for i, n in enumerate(dataset.names or [])})
    read = time.perf_counter()
    exact = exact_groups(pixel_hashes(items))
    firsts = sorted({g[0] for g in exact} | (set(range(len(items))) - {i for g in exact for i in g}))
    hashed = time.perf_counter()
    near = near_pairs(items, firsts) if items.ndim == 4 else np.zeros((0, 2), np.int64)
    done = time.perf_counter()
    return {**scanned, "exact": exact, "near": near.tolist(),
            "seconds": {"files": round(read - started, 3), "exact": round(hashed - read, 3),
                        "near": round(done - hashed, 3)}}


def class_balance(dataset: Dataset) -> dict | None:
    """Items per class, the largest share and the largest/smallest ratio; None without labels."""
    if dataset.labels is None:
        return None
    counts = np.bincount(dataset.labels.numpy(), minlength=len(dataset.class_names))
    largest, smallest = int(counts.max()), int(counts.min())
    share = largest / max(int(counts.sum()), 1)
    ratio = largest / smallest if smallest else float("inf")
    big = dataset.class_names[int(counts.argmax())]
    warning = None
    if len(counts) > 1 and (share > DOMINANT_SHARE or ratio > IMBALANCE_RATIO):
        warning = (f"classes are unbalanced: {big!r} holds {largest} of {int(counts.sum())} items "
                   f"({share:.0%}), {ratio:.1f}x the smallest class ({smallest}); a conditional "
                   "model learns the small classes poorly: add items or merge classes")
    return {"counts": dict(zip(dataset.class_names, map(int, counts))), "largest_share": round(share, 4),
            "ratio": round(ratio, 2) if smallest else None, "warning": warning}


def _named(groups: list[list[int]], names: list[str] | None) -> list[list]:
    return [[names[i] if names else i for i in g] for g in groups[:LISTED_GROUPS]]


def report(dataset: Dataset, heavy: dict, *, manifest: dict, features: dict,
           max_bad_fraction: float = 1.0, dedup: bool = False) -> dict:
    """The audit record (what RUN/audit.json and 'genforge audit --json' hold)."""
    n, source, names = len(dataset), dataset.source, dataset.names
    exact, near = heavy["exact"], heavy["near"]
    near_groups = components(near)
    c2pa = heavy["c2pa"]
    forbidden = {r["index"] for r in (c2pa or {}).get("not_allowed", []) if r["index"] is not None}
    excluded = sorted(copies_of(forbidden, exact, near))
    drops = duplicate_drops(exact, near)
    balance = class_balance(dataset)
    unknown = [f for f in MANIFEST_FIELDS if not manifest.get(f)]
    warnings = []
    if drops and len(drops) / n > DUPLICATE_WARN_SHARE and not dedup:
        warnings.append(f"{len(drops)} of {n} items ({len(drops) / n:.1%}) are exact or near "
                        "duplicates: they drive memorisation; --dedup keeps the first of each "
                        "group (audit.json lists them)")
    if balance and balance["warning"]:
        warnings.append(balance["warning"])
    if unknown:
        warnings.append(f"{', '.join(unknown)} of {source} unknown: record them with 'genforge "
                        f"audit {source} --licence ... --source ... --consent ...'")
    if c2pa and c2pa["not_allowed"]:
        warnings.append(f"{len(c2pa['not_allowed'])} file(s) forbid AI training in their C2PA "
                        f"manifest (first: {c2pa['not_allowed'][0]['path']}); they and their copies "
                        f"({len(excluded)} items) are left out of training")
    for key, what in (("unchecked", "could not be checked"), ("unreadable", "is unreadable")):
        if c2pa and c2pa[key]:
            first = c2pa[key][0]
            warnings.append(f"{len(c2pa[key])} file(s) carry C2PA data that {what}; their training "
                            f"permissions are unknown (first: {first['path']}: {first['reason']})")
    bad = dataset.report.bad_fraction
    if bad > max_bad_fraction:
        warnings.append(f"{dataset.report.broken} of {dataset.report.found} files are "
                        f"unreadable ({bad:.0%}): training refuses above "
                        f"{max_bad_fraction:.0%} (--max-bad-fraction)")
    return {
        "format": "genforge-audit", "format_version": FORMAT_VERSION, "data": source,
        "kind": dataset.kind, "items": n, "item_shape": list(dataset.item_shape),
        "fingerprint": dataset.fingerprint, "originals": heavy["originals"],
        "unreadable": dataset.report.to_dict()["skipped"], "found": dataset.report.found,
        "unreadable_count": dataset.report.broken,  # the rest were left out by design
        "exact_duplicates": {
            "pixels": {"groups": len(exact), "items": sum(len(g) for g in exact),
                       "listed": _named(exact, names), "indices": exact},
            "files": {"groups": len(heavy["file_duplicates"]),
                      "listed": heavy["file_duplicates"][:LISTED_GROUPS]}},
        "near_duplicates": {
            "method": f"pHash (64-bit DCT) within {NEAR_HAMMING} bits and 32x32 grey thumbnails "
                      f"correlating >= {NEAR_CORRELATION}",
            "hamming_max": NEAR_HAMMING, "correlation_min": NEAR_CORRELATION,
            "pairs": len(near), "groups": len(near_groups), "listed": _named(near_groups, names),
            "pair_indices": near},
        "duplicates": {"items": len(drops), "share": round(len(drops) / n, 6), "drop": drops,
                       "warn_above": DUPLICATE_WARN_SHARE},
        "features": features, "classes": balance,
        "manifest": {**{f: manifest.get(f) or "unknown" for f in MANIFEST_FIELDS},
                     **{k: v for k, v in manifest.items() if k not in MANIFEST_FIELDS},
                     "unknown": unknown},
        "c2pa": c2pa, "excluded": excluded, "warnings": warnings,
        "seconds": heavy["seconds"],
    }


def training_drops(record: dict, dedup: bool) -> list[int]:
    """Items left out of training: files that forbid it (and their copies), plus duplicates with dedup."""
    excluded = set(record["excluded"])
    if not dedup:
        return sorted(excluded)
    near = record["near_duplicates"]["pair_indices"]
    return sorted(excluded | set(duplicate_drops(record["exact_duplicates"]["pixels"]["indices"],
                                                 near, excluded)))


def load_cached(path: Path) -> dict | None:
    """A cached heavy part, or None when missing or unreadable (it is then recomputed)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def short_line(record: dict) -> str:
    """One line for run summaries."""
    d, near = record["duplicates"], record["near_duplicates"]
    exact = record["exact_duplicates"]["pixels"]
    dropped = "dropped (--dedup)" if record.get("training", {}).get("dedup") else "--dedup would drop"
    parts = [f"{exact['items'] - exact['groups']} exact copies, {near['pairs']} near-duplicate "
             f"pair(s): {d['items']} items ({d['share']:.1%}) {dropped}"]
    if record["excluded"]:
        parts.append(f"{len(record['excluded'])} left out (C2PA: training notAllowed)")
    parts.append(f"{record.get('unreadable_count', len(record['unreadable']))} unreadable")
    parts.append(f"licence {record['manifest']['licence']}")
    return "; ".join(parts)


def text(record: dict) -> str:
    """A short human summary of an audit record."""
    o = record["originals"]
    lines = [f"{record['data']}: {record['items']} items of {record['found']} found, shape "
             f"{record['item_shape']}, fingerprint {record['fingerprint'][:12]}"]
    if "width" in o and isinstance(o["width"], dict):
        lines.append(f"  originals ({o['from']}): width {o['width']['min']}-{o['width']['max']} "
                     f"(median {o['width']['median']}), height {o['height']['min']}-"
                     f"{o['height']['max']} (median {o['height']['median']}), aspect "
                     f"{o['aspect']['min']}-{o['aspect']['max']}; modes "
                     f"{', '.join(f'{k} {v}' for k, v in o['modes'].items())}")
    elif "width" in o:
        lines.append(f"  originals ({o['from']}): {o['width']}x{o['height']} {o['mode']}")
    ex, near, d = record["exact_duplicates"], record["near_duplicates"], record["duplicates"]
    lines.append(f"  exact duplicates: {ex['pixels']['groups']} group(s) by pixels, "
                 f"{ex['files']['groups']} by file bytes")
    lines.append(f"  near duplicates: {near['pairs']} pair(s) in {near['groups']} group(s) "
                 f"({near['method']})")
    lines.append(f"  --dedup would drop {d['items']} items ({d['share']:.1%})")
    f = record["features"]
    lines.append(f"  feature neighbours: {f['pairs']} pair(s) closer than 1/3 of the median "
                 f"nearest-neighbour angle ({f['name']}: {f['extractor']})" if f.get("status") == "done"
                 else f"  feature neighbours: skipped ({f.get('reason')})")
    lines.append(f"  unreadable files: {len(record['unreadable'])}")
    if record["classes"]:
        c = record["classes"]
        lines.append(f"  classes: {len(c['counts'])}, largest share {c['largest_share']:.0%}, "
                     f"largest/smallest {c['ratio']}")
    m = record["manifest"]
    lines.append(f"  licence: {m['licence']}; source: {m['source']}; consent: {m['consent']}")
    if record["c2pa"] is not None:
        c = record["c2pa"]
        lines.append(f"  C2PA: {c['manifests']} file(s) with manifests, {len(c['not_allowed'])} "
                     f"forbid training, {len(c['constrained'])} constrain it; "
                     f"{len(record['excluded'])} items left out of training")
    return "\n".join(lines) + "\n"


__all__ = ["perceptual_hashes", "hamming_pairs", "training_permission", "read_manifest",
           "write_manifest", "duplicate_drops", "report", "training_drops", "text", "short_line"]
