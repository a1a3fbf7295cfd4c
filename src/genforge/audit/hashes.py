"""Exact and near duplicates: content hashes, 64-bit perceptual hashes found within a few bits by
multi-index hashing, confirmed by thumbnail correlation; duplicate groups and what --dedup drops."""
from __future__ import annotations

import hashlib
from typing import Any

import numpy as np


# Near duplicates: pHash within NEAR_HAMMING bits AND 32x32 grey thumbnails correlating at
# NEAR_CORRELATION or more. The hash alone is not enough for small images: on Fashion-MNIST 17% of
# items have another within 4 bits (distinct garments with the same silhouette), while brightened
# (x1.15 +10) and JPEG-recompressed (q75) copies were within 6 bits for 99% and correlated >= 0.991
# (q50: 0.979 at the lowest). At these settings Fashion-MNIST's 60,000 items hold 275 pairs, most of
# them the same product photographed twice; --dedup would drop 231 (0.4%).
NEAR_HAMMING = 6
NEAR_CORRELATION = 0.99
THUMB = 32

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


def cosines(vectors: np.ndarray, scale: np.ndarray, pairs: np.ndarray,
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
    close = cosines(vectors, scale, local.reshape(-1, 2)) >= NEAR_CORRELATION
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


