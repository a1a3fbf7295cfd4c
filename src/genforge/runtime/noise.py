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
_erf = np.frompyfunc(math.erf, 1, 1)  # float64 erf, then rounded: what torch.erf gives in float32


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
    e = _erf((z.astype(np.float32) / _SQRT2).astype(np.float64)).astype(np.float32)
    return np.clip(np.float32(0.5) * (np.float32(1) + e), np.float32(1e-7), np.float32(1 - 1e-7))


def gumbel(u: np.ndarray) -> np.ndarray:
    """Gumbel noise -log(-log(u)) in float32."""
    return -np.log(-np.log(u))
