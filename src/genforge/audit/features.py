"""Neighbours in a domain encoder's feature space, found by an inverted-file search (k-means
cells, each item against its two nearest cells) instead of all pairs."""
from __future__ import annotations

import numpy as np

from .hashes import cosines

# Feature-space neighbours: pairs whose centred encoder features are at an angle below FEATURE_RATIO
# of the median nearest-neighbour angle (1/3, as the memorisation metric's ratio). A fixed cosine
# does not work: a classifier encoder packs a class tightly (Fashion-MNIST sample: median nearest
# neighbour at cosine 0.986). There 1.5% of items have such a neighbour, and 65% of JPEG (q75)
# copies are found; features are no substitute for the hashes, they add what the encoder confuses.
FEATURE_RATIO = 1 / 3
FEATURE_SAMPLE = 1000  # items whose nearest neighbour sets the median angle
FEATURE_KMEANS_STEPS = 5


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
    return pairs, cosines(x, np.ones(n, np.float32), pairs), median_angle


# ----- the report ---------------------------------------------------------------------------------

