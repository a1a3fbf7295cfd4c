"""Per-sample random streams in numpy: sample i depends only on seed i, whatever the batch.

The runtime cannot use torch's generators, and numpy's normal draws are not torch's, so a seed
gives the runtime its own samples, not PyTorch's: records say which noise made a file
("noise": "numpy-pcg64"). Given the same noise, both paths compute the same thing: the
equivalence tests feed these streams to the PyTorch samplers too (tests/onnx_models.py).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

NOISE = "numpy-pcg64"
_SQRT2 = np.float32(math.sqrt(2))


def _erf_table(step: float = 0.125, terms: int = 12, top: float = 4.0) -> tuple[np.ndarray, list]:
    """Taylor coefficients of erf around c = 0, step, ..., top: erf(c + d) = sum_k a_k d^k with
    a_0 = erf(c), a_k = 2/sqrt(pi) e^(-c^2) (-1)^(k-1) H_(k-1)(c) / k! (H: Hermite polynomials).
    With |d| <= step/2 twelve terms reach float64 rounding (checked against math.erf)."""
    centers = np.arange(0, top + step / 2, step)
    table = np.zeros((terms, len(centers)))
    for j, c in enumerate(centers):
        hermite = [1.0, 2 * c]
        for n in range(1, terms):
            hermite.append(2 * c * hermite[n] - 2 * n * hermite[n - 1])
        table[0, j] = math.erf(c)
        scale = 2 / math.sqrt(math.pi) * math.exp(-c * c)
        for k in range(1, terms):
            table[k, j] = scale * (-1) ** (k - 1) * hermite[k - 1] / math.factorial(k)
    return centers, [np.ascontiguousarray(row) for row in table]


_CENTERS, _TERMS = _erf_table()
_TOP, _STEP = float(_CENTERS[-1]), float(_CENTERS[1])


def erf(x: np.ndarray) -> np.ndarray:
    """erf in float64 to about 1e-16 (past 4, 1 - 1.5e-8, which float32 rounds to 1 as it does
    erf itself), vectorised: numpy has no erf, and math.erf per element was 35% of a discrete
    sample's time (cProfile, chorale model, batch 1)."""
    a = np.minimum(np.abs(x.astype(np.float64)), _TOP)
    index = np.rint(a / _STEP).astype(np.intp)
    d = a - np.take(_CENTERS, index)
    out = np.take(_TERMS[-1], index)
    for row in reversed(_TERMS[:-1]):
        out *= d
        out += np.take(row, index)
    return np.copysign(out, x)


class SeedStreams:
    """One numpy PCG64 generator per sample (like sampling.SeededNoise, one torch.Generator each)."""

    def __init__(self, seeds: Sequence[int]):
        self.generators = [np.random.Generator(np.random.PCG64(int(s) % (1 << 63))) for s in seeds]

    def __len__(self) -> int:
        return len(self.generators)

    def __call__(self, item_shape: Sequence[int]) -> np.ndarray:
        """Standard normal float32 noise [len(seeds), *item_shape], one stream per row."""
        return np.stack([g.standard_normal(tuple(item_shape), dtype=np.float32)
                         for g in self.generators])


def uniform(z: np.ndarray) -> np.ndarray:
    """Uniform (0, 1) float32 from standard normal z (the probability transform), computed as
    the PyTorch sampler does: 0.5 (1 + erf(z / sqrt 2)) in float32, clamped to [1e-7, 1 - 1e-7]."""
    e = erf((z.astype(np.float32) / _SQRT2).astype(np.float64)).astype(np.float32)
    return np.clip(np.float32(0.5) * (np.float32(1) + e), np.float32(1e-7), np.float32(1 - 1e-7))


def gumbel(u: np.ndarray) -> np.ndarray:
    """Gumbel noise -log(-log(u)) in float32."""
    return -np.log(-np.log(u))
