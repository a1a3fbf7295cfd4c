"""The maths of sample-quality metrics: pure functions over feature matrices [N, dim].

Statistics are float64. Nearest-neighbour searches multiply float32 matrices (2x faster than
float64 on CPUs and GPUs alike) on mean-centred features, then re-check in float64 every
decision the float32 error could flip, so the results are those of an all-float64 computation.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..errors import ConfigError

# Rows of the left matrix per distance block: 2,048 x 50,000 float32 distances are 400 MB.
DISTANCE_BLOCK = 2048
# |float32 squared distance - exact| <= this x (|a|^2 + |b|^2) for centred features of any
# dimension up to ~10^5 (float32 unit round-off 6e-8 times a generous sqrt(dim) growth factor).
FLOAT32_TOLERANCE = 3e-5


def _as64(x: torch.Tensor) -> torch.Tensor:
    return x.detach().to(torch.float64)


def mean64(features: torch.Tensor, block: int = 8192) -> torch.Tensor:
    """Float64 mean, accumulated in blocks: no float64 copy of the whole set (0.8 GB at 50k x 2048)."""
    return sum(_as64(chunk).sum(0) for chunk in features.split(block)) / len(features)


# ----- Fréchet distance ------------------------------------------------------------------------

@dataclass(frozen=True)
class Statistics:
    """Mean and covariance of a feature set (what Fréchet distance compares), with its size."""

    mean: torch.Tensor        # float64 [dim]
    covariance: torch.Tensor  # float64 [dim, dim]
    count: int


def feature_statistics(features: torch.Tensor, block: int = 8192) -> Statistics:
    """Mean and unbiased covariance in float64, accumulated in blocks to bound memory."""
    n, dim = features.shape
    if n < 2:
        raise ConfigError(f"need at least 2 feature vectors for a covariance, got {n}")
    mean = mean64(features, block)
    cov = torch.zeros(dim, dim, dtype=torch.float64, device=features.device)
    for chunk in features.split(block):
        centred = _as64(chunk) - mean
        cov.addmm_(centred.T, centred)
    return Statistics(mean, cov / (n - 1), n)


def _symmetric_sqrt(matrix: torch.Tensor) -> torch.Tensor:
    """Square root of a symmetric positive semi-definite matrix via its eigen-decomposition."""
    values, vectors = torch.linalg.eigh(matrix)
    return (vectors * values.clamp(min=0).sqrt()) @ vectors.T


def trace_sqrt_product(cov_a: torch.Tensor, cov_b: torch.Tensor) -> float:
    """tr((A B)^1/2) = tr((A^1/2 B A^1/2)^1/2), whose argument is symmetric PSD: two symmetric
    eigen-decompositions instead of scipy's sqrtm of a non-symmetric product (which can return
    complex values and needs an epsilon hack when A B is near-singular)."""
    root_a = _symmetric_sqrt(cov_a)
    middle = root_a @ cov_b @ root_a
    values = torch.linalg.eigvalsh((middle + middle.T) / 2)
    return float(values.clamp(min=0).sqrt().sum())


def frechet_distance(a: Statistics, b: Statistics) -> float:
    """||mu_a - mu_b||^2 + tr(A) + tr(B) - 2 tr((A B)^1/2) (Dowson & Landau 1982; Heusel et al.
    2017). The raw value is returned even when rounding makes a near-zero distance negative."""
    diff = a.mean - b.mean
    return float(diff @ diff + a.covariance.trace() + b.covariance.trace()
                 - 2 * trace_sqrt_product(a.covariance, b.covariance))


def check_fd_sample_size(n: int, dim: int, what: str) -> None:
    """Fewer samples than dimensions make a singular covariance and a biased, unstable FD."""
    if n <= dim:
        raise ConfigError(f"Fréchet distance needs more {what} samples than feature dimensions "
                          f"({n} samples, {dim} dimensions): use more samples, or ask for a "
                          f"reduced dimension below {n} (--fd-dim)")


def pca_basis(features: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and the top-`dim` principal directions [D, dim] (float64) of reference features."""
    stats = feature_statistics(features)
    values, vectors = torch.linalg.eigh(stats.covariance)
    return stats.mean, vectors[:, values.argsort(descending=True)[:dim]]


# ----- KID ---------------------------------------------------------------------------------------

def polynomial_kernel(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """k(x, y) = (x.y / dim + 1)^3, the kernel of Bińkowski et al. (2018)."""
    ones = torch.ones((), dtype=x.dtype, device=x.device)
    return torch.addmm(ones, x, y.T, alpha=1 / x.shape[1]).pow_(3)  # in place: 3 passes fewer


def mmd2_unbiased(x: torch.Tensor, y: torch.Tensor) -> float:
    """Unbiased MMD^2 estimate: diagonal terms of the within-set kernels left out."""
    m, n = x.shape[0], y.shape[0]
    k_xx, k_yy, k_xy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    return float((k_xx.sum() - k_xx.diagonal().sum()) / (m * (m - 1))
                 + (k_yy.sum() - k_yy.diagonal().sum()) / (n * (n - 1))
                 - 2 * k_xy.mean())


def kernel_inception_distance(generated: torch.Tensor, reference: torch.Tensor, *,
                              subsets: int = 100, subset_size: int = 1000,
                              seed: int = 0) -> torch.Tensor:
    """MMD^2 of `subsets` random subset pairs (float64): KID is their mean, its spread their std."""
    size = min(subset_size, len(generated), len(reference))
    if size < 2:
        raise ConfigError(f"KID needs at least 2 samples per set, got {len(generated)} generated "
                          f"and {len(reference)} reference")
    rng = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(subsets):
        g = torch.randperm(len(generated), generator=rng)[:size].to(generated.device)
        r = torch.randperm(len(reference), generator=rng)[:size].to(reference.device)
        values.append(mmd2_unbiased(_as64(generated[g]), _as64(reference[r])))
    return torch.tensor(values, dtype=torch.float64)


# ----- nearest neighbours --------------------------------------------------------------------

def _exact_sq(a: torch.Tensor, b: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """Exact float64 squared distances between rows a[rows] and b[cols] (element-wise pairs)."""
    return (_as64(a[rows]) - _as64(b[cols])).pow(2).sum(1)


class PairwiseDistances:
    """Blocks of squared Euclidean distances between two feature sets, multiplied in float32 on
    copies centred on a common mean (so cancellation error stays small), with float64 re-checks
    computed from the original features."""

    def __init__(self, a: torch.Tensor, b: torch.Tensor, centre: torch.Tensor | None = None):
        self.a, self.b = a.detach(), b.detach()
        centre = (mean64(b) if centre is None else centre).to(torch.float32)
        self.a32 = self.a.float() - centre
        self.b32 = self.a32 if b is a else self.b.float() - centre   # a set against itself: one copy
        self.a_norm = self.a32.pow(2).sum(1)
        self.b_norm = self.a_norm if b is a else self.b32.pow(2).sum(1)

    def blocks(self, block: int = DISTANCE_BLOCK):
        """Yield (row offset, float32 squared distances [rows, len(b)])."""
        for start in range(0, len(self.a32), block):
            rows = self.a32[start:start + block]
            d = torch.addmm(self.b_norm, rows, self.b32.T, alpha=-2)
            d += self.a_norm[start:start + block, None]
            yield start, d.clamp_(min=0)

    def exact(self, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        return _exact_sq(self.a, self.b, rows, cols)

    def below(self, start: int, d: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
        """Boolean [rows, cols]: exact distance < radius (squared radius broadcast against d)."""
        diff = d - radius.to(d.dtype)  # float32 radius: its rounding is far inside the tolerance
        inside = diff < 0
        # one bound for the whole block (its largest norms): a few more re-checks, but no
        # per-element tolerance matrix, which cost more than the matrix product at small dims
        tol = FLOAT32_TOLERANCE * float(self.a_norm[start:start + len(d)].max() + self.b_norm.max())
        unsure = diff.abs_() <= tol
        if unsure.any():
            r, c = unsure.nonzero(as_tuple=True)
            exact = self.exact(r + start, c)
            inside[r, c] = exact < radius.expand_as(d)[r, c].to(torch.float64)
        return inside

    def smallest(self, k: int, exclude_self: bool = False, margin: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact float64 squared distances and indices of each row's k nearest columns.

        Candidates come from float32 (k + margin per row), ranked again in float64. With
        exclude_self (a set against itself) the item itself is dropped, not its duplicates.
        """
        want = k + (1 if exclude_self else 0)
        take = min(want + margin, len(self.b32))
        if take < want:
            raise ConfigError(f"need more than {want} reference items for {k} nearest neighbours, "
                              f"got {len(self.b32)}")
        dists, indices = [], []
        for start, d in self.blocks():
            own = torch.arange(start, start + len(d), device=d.device)
            if exclude_self:
                d[own - start, own] = -1
            cand = d.topk(take, dim=1, largest=False).indices
            exact = self.exact(own.repeat_interleave(take), cand.reshape(-1)).reshape(len(d), take)
            if exclude_self:
                exact[cand == own[:, None]] = -1
            order = exact.argsort(dim=1)[:, (1 if exclude_self else 0):want]
            dists.append(exact.gather(1, order))
            indices.append(cand.gather(1, order))
        return torch.cat(dists), torch.cat(indices)


def knn_radii(features: torch.Tensor, k: int) -> torch.Tensor:
    """Squared distance from each item to its k-th nearest other item (float64)."""
    dists, _ = PairwiseDistances(features, features).smallest(k, exclude_self=True)
    return dists[:, -1]


@dataclass(frozen=True)
class Manifold:
    """Per-sample indicators behind precision, recall, density and coverage (float64 [N])."""

    precision: torch.Tensor  # per generated item: inside some reference item's k-NN ball
    recall: torch.Tensor     # per reference item: inside some generated item's k-NN ball
    density: torch.Tensor    # per generated item: reference balls containing it / k
    coverage: torch.Tensor   # per reference item: its nearest generated item lies in its ball


def manifold_indicators(generated: torch.Tensor, reference: torch.Tensor, *, k_pr: int = 3,
                        k_dc: int = 5) -> Manifold:
    """Precision/recall (Kynkäänniemi et al. 2019, k=3) and density/coverage (Naeem et al.
    2020, k=5) from k-NN balls; a point is inside a ball when its distance is strictly smaller
    than the radius, as in Naeem et al.'s reference code."""
    for name, f, k in (("generated", generated, k_pr), ("reference", reference, max(k_pr, k_dc))):
        if len(f) <= k:
            raise ConfigError(f"precision/recall and density/coverage need more than {k} "
                              f"{name} items, got {len(f)}")
    ref_radii, _ = PairwiseDistances(reference, reference).smallest(max(k_pr, k_dc), exclude_self=True)
    ref_pr, ref_dc = ref_radii[:, k_pr - 1], ref_radii[:, k_dc - 1]
    gen_pr = knn_radii(generated, k_pr)
    centre = mean64(reference)
    pairs = PairwiseDistances(reference, generated, centre)   # rows: reference, cols: generated
    precision = torch.zeros(len(generated), dtype=torch.bool)
    density = torch.zeros(len(generated), dtype=torch.float64)
    recall, coverage = [], []
    for start, d in pairs.blocks():
        rows = slice(start, start + len(d))
        precision |= pairs.below(start, d, ref_pr[rows, None]).any(0).cpu()
        recall.append(pairs.below(start, d, gen_pr[None, :]).any(1).cpu())
        in_dc = pairs.below(start, d, ref_dc[rows, None])   # density and coverage share the balls
        density += in_dc.sum(0).cpu()
        coverage.append(in_dc.any(1).cpu())
    return Manifold(precision.double(), torch.cat(recall).double(), density / k_dc,
                    torch.cat(coverage).double())


# ----- memorisation -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Nearest:
    """For each generated item: its nearest training items and memorisation scores."""

    index: torch.Tensor       # int64 [N]: nearest training item
    distance: torch.Tensor    # float64 [N]: distance to it
    ratio: torch.Tensor       # float64 [N]: nearest / second-nearest distance
    normalised: torch.Tensor  # float64 [N]: Carlini et al.'s normalised distance


def nearest_training_items(generated: torch.Tensor, training: torch.Tensor, *,
                           neighbourhood: int = 50, alpha: float = 0.5) -> Nearest:
    """Nearest training item of each generated item, the nearest/second-nearest distance ratio
    (a copy sits much closer to one training item than to any other: ratio < 1/3), and Carlini et
    al.'s (2023, eq. 1) distance normalised by alpha x the mean distance to the `neighbourhood`
    nearest training items."""
    if len(training) < 2:
        raise ConfigError(f"memorisation needs at least 2 training items, got {len(training)}")
    n = min(neighbourhood, len(training))
    sq, idx = PairwiseDistances(generated, training).smallest(max(2, n))
    dist = sq.sqrt()
    ratio = dist[:, 0] / dist[:, 1].clamp(min=1e-12)
    normalised = dist[:, 0] / (alpha * dist[:, :n].mean(1)).clamp(min=1e-12)
    return Nearest(idx[:, 0], dist[:, 0], ratio, normalised)


# ----- intervals --------------------------------------------------------------------------------

def wilson_interval(successes: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion (sane at 0 and 1, unlike the normal one)."""
    if n == 0:
        return (math.nan, math.nan)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def mean_interval(values: torch.Tensor, z: float = 1.96) -> tuple[float, float]:
    """Normal-approximation 95% interval of a mean of per-sample values."""
    mean = float(values.mean())
    half = z * float(values.std()) / math.sqrt(len(values)) if len(values) > 1 else math.nan
    return (mean - half, mean + half)


def bootstrap_fd_interval(generated: torch.Tensor, reference: Statistics, *, resamples: int,
                          seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of FD over resamplings of the generated set (the reference
    statistics held fixed: they are the yardstick, cached and shared by every evaluation)."""
    rng = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(resamples):
        pick = torch.randint(len(generated), (len(generated),), generator=rng)
        values.append(frechet_distance(feature_statistics(generated[pick]), reference))
    low, high = torch.tensor(values, dtype=torch.float64).quantile(
        torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=torch.float64))
    return (float(low), float(high))
