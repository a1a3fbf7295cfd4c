"""Baseline level generators for the benchmark: pure, seeded, no training loop.

`MarkovLevels` is the multi-dimensional Markov chain of Snodgrass and Ontañón (2014, "Experiments
in map generation using Markov chains"): each tile is drawn given its left, top and top-left
neighbours, learned by counting over the training levels, filled in row-major order. Contexts
never seen in training fall back to the left-and-top context, then to the tile frequencies.
`random_sokoban` places walls, boxes, goals and a player uniformly: the floor of what any learned
model should beat.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from . import sokoban as sk


@dataclass
class MarkovLevels:
    """Tile given (left, top, top-left) neighbours; outside the level counts as tile `num_tiles`."""

    num_tiles: int
    full: dict = field(default_factory=dict)      # (left, top, top-left) -> counts [K]
    pair: dict = field(default_factory=dict)      # (left, top) -> counts [K]
    prior: np.ndarray | None = None               # counts [K]
    shape: tuple[int, int] = (0, 0)

    @classmethod
    def fit(cls, levels: np.ndarray, num_tiles: int) -> "MarkovLevels":
        """Count every tile's context in the training levels uint8 [N, H, W]."""
        levels = np.asarray(levels, dtype=np.int64)
        border = num_tiles
        padded = np.pad(levels, ((0, 0), (1, 0), (1, 0)), constant_values=border)
        full: dict = defaultdict(lambda: np.zeros(num_tiles))
        pair: dict = defaultdict(lambda: np.zeros(num_tiles))
        _, h, w = levels.shape
        for y in range(h):
            for x in range(w):
                tile = levels[:, y, x]
                left, top, corner = padded[:, y + 1, x], padded[:, y, x + 1], padded[:, y, x]
                for t, l, u, c in zip(tile, left, top, corner):
                    full[(l, u, c)][t] += 1
                    pair[(l, u)][t] += 1
        prior = np.bincount(levels.reshape(-1), minlength=num_tiles).astype(float)
        return cls(num_tiles, dict(full), dict(pair), prior, (h, w))

    def _counts(self, left: int, top: int, corner: int) -> np.ndarray:
        counts = self.full.get((left, top, corner))
        if counts is None:
            counts = self.pair.get((left, top), self.prior)
        return counts

    def sample(self, n: int, seed: int = 0, shape: tuple[int, int] | None = None) -> np.ndarray:
        """n levels uint8 [n, H, W] (default: the training shape); the same seed, the same levels."""
        rng = np.random.default_rng(seed)
        h, w = shape or self.shape
        border = self.num_tiles
        out = np.full((n, h + 1, w + 1), border, dtype=np.int64)
        for i in range(n):
            for y in range(1, h + 1):
                for x in range(1, w + 1):
                    counts = self._counts(out[i, y, x - 1], out[i, y - 1, x], out[i, y - 1, x - 1])
                    out[i, y, x] = rng.choice(self.num_tiles, p=counts / counts.sum())
        return out[:, 1:, 1:].astype(np.uint8)


def random_sokoban(n: int, shape: tuple[int, int] = (10, 10), boxes: int = 2,
                   wall_share: float = 0.2, seed: int = 0) -> np.ndarray:
    """n random Sokoban levels uint8 [n, H, W]: a wall border, inner walls at wall_share, then
    `boxes` boxes, as many goals and a player on distinct free squares."""
    rng = np.random.default_rng(seed)
    h, w = shape
    out = np.full((n, h, w), sk.WALL, dtype=np.uint8)
    for i in range(n):
        inner = np.where(rng.random((h - 2, w - 2)) < wall_share, sk.WALL, sk.FLOOR)
        out[i, 1:-1, 1:-1] = inner
        free = np.argwhere(out[i] == sk.FLOOR)
        if len(free) < 2 * boxes + 1:
            continue  # too crowded: left as walls, which the metrics count as unplayable
        pick = free[rng.choice(len(free), 2 * boxes + 1, replace=False)]
        for k, (y, x) in enumerate(pick):
            out[i, y, x] = sk.PLAYER if k == 0 else sk.BOX if k <= boxes else sk.GOAL
    return out
