"""Level metrics: small pure functions over uint8 tile grids [N, H, W], and registered wrappers.

Conventions, shared by every function here:
- distances between levels are normalised Hamming distances: the share of squares whose tiles
  differ, in [0, 1]; levels of different shapes cannot be compared (ValueError);
- tile-pattern KL divergence follows Lucas and Volz (2019, "Tile pattern KL-divergence for
  analysing and evolving game levels"): counts of every k x k window, each count plus EPSILON,
  normalised over the union of patterns either set shows, and KL(training || generated), so a
  generator that never makes a pattern the training levels use is penalised most;
- a level the solver gives up on (node budget spent) counts as not playable, and its count is
  reported in the details.
The registered metrics find the game from the reference dataset's `vocabulary` (the legend).
"""
from __future__ import annotations

import hashlib
import math
import statistics
from collections import Counter

import numpy as np
import torch

from ..errors import ConfigError
from ..levels.formats import SOKOBAN, Legend
from ..levels.playable import NODE_BUDGET, as_grids as _grids, playability
from . import maths
from .extractors import register_extractor
from .registry import EvalInputs, Value, register_metric

EPSILON = 1e-4           # added to every pattern count before normalising (Lucas and Volz: small)
PATTERN_SIZES = (2, 3)


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Normalised Hamming distances [len(a), len(b)] between two sets of levels of one shape."""
    a, b = _grids(a), _grids(b)
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(f"levels of shape {a.shape[1:]} and {b.shape[1:]} cannot be compared")
    flat_a, flat_b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    out = np.empty((len(a), len(b)))
    for i in range(0, len(a), 256):  # in blocks: [256, len(b), H*W] booleans at most
        out[i:i + 256] = (flat_a[i:i + 256, None] != flat_b[None]).mean(-1)
    return out


def novelty(generated, training) -> dict:
    """Nearest-training-level distance per generated level: its mean, the share of exact copies
    (distance 0) and the share of novel levels (1 - copies)."""
    nearest = hamming(generated, training).min(axis=1)
    copies = float((nearest == 0).mean())
    return {"nn_distance": float(nearest.mean()), "copy_share": copies, "novel_share": 1 - copies,
            "copies": int((nearest == 0).sum()), "nearest": nearest.tolist()}


def diversity(levels) -> float:
    """Mean normalised Hamming distance over all pairs of distinct levels (0 for fewer than two)."""
    d = hamming(levels, levels)
    n = len(d)
    return float(d[np.triu_indices(n, 1)].mean()) if n > 1 else 0.0


def pattern_counts(levels, size: int) -> Counter:
    """How often each size x size window of tiles occurs, over all levels."""
    grids = _grids(levels)
    counts: Counter = Counter()
    n, h, w = grids.shape
    for y in range(h - size + 1):
        for x in range(w - size + 1):
            windows = grids[:, y:y + size, x:x + size].reshape(n, -1)
            counts.update(map(bytes, windows.astype(np.uint8)))
    return counts


def pattern_kl(generated, training, size: int, epsilon: float = EPSILON) -> float:
    """KL(training || generated) of size x size tile patterns, each count plus epsilon."""
    p_counts, q_counts = pattern_counts(training, size), pattern_counts(generated, size)
    keys = set(p_counts) | set(q_counts)
    p_total = sum(p_counts.values()) + epsilon * len(keys)
    q_total = sum(q_counts.values()) + epsilon * len(keys)
    kl = 0.0
    for key in keys:
        p = (p_counts[key] + epsilon) / p_total
        q = (q_counts[key] + epsilon) / q_total
        kl += p * math.log(p / q)
    return kl


def tile_distribution(levels, num_tiles: int) -> np.ndarray:
    """Share of squares holding each tile, over all levels: float [num_tiles]."""
    counts = np.bincount(_grids(levels).reshape(-1), minlength=num_tiles)[:num_tiles]
    return counts / max(1, counts.sum())


def tile_distribution_error(generated, training, num_tiles: int) -> float:
    """Total variation distance between the two tile distributions: half the L1 distance, in [0, 1]."""
    return float(0.5 * np.abs(tile_distribution(generated, num_tiles)
                              - tile_distribution(training, num_tiles)).sum())


# ---- registered wrappers ---------------------------------------------------------------------

def legend_for(inputs: EvalInputs) -> Legend:
    """The game of an evaluation: the reference (else training) dataset's vocabulary."""
    for data in (inputs.reference, inputs.training):
        vocabulary = getattr(data, "vocabulary", None)
        if vocabulary:
            return Legend.from_dict(vocabulary)
    raise ConfigError("level metrics need the reference levels' vocabulary (their legend)")


def _training(inputs: EvalInputs) -> torch.Tensor:
    return (inputs.training if inputs.training is not None else inputs.reference).items


@register_metric("level-playability", "share of generated levels that can be played through "
                 "(Sokoban: solved by the solver; Lode Runner: all gold reachable), and the "
                 "median solution length")
def _playability(inputs: EvalInputs) -> list[Value]:
    legend = legend_for(inputs)
    rows = playability(inputs.generated, legend)
    ok = sum(r["playable"] for r in rows)
    statuses = Counter(r["status"] for r in rows)
    lengths = [r["length"] for r in rows if r["length"] is not None]
    details = {"game": legend.game, "statuses": dict(statuses), "node_budget": NODE_BUDGET}
    values = [Value("playable_share", ok / len(rows), maths.wilson_interval(ok, len(rows)),
                    details, extractor="rules")]
    if legend.chars == SOKOBAN.chars:
        values.append(Value("solution_length", float(statistics.median(lengths)) if lengths
                            else float("nan"), None, {"statistic": "median LURD moves",
                                                      "solved": len(lengths)}, extractor="rules"))
    return values


@register_metric("level-novelty", "nearest training level of each generated level (normalised "
                 "Hamming distance): mean distance, share of exact copies", needs_training=True)
def _novelty(inputs: EvalInputs) -> list[Value]:
    train = _training(inputs)
    result = novelty(inputs.generated, train)
    n = len(inputs.generated)
    inputs.histograms["generated_to_train"] = result["nearest"]
    return [Value("novel_share", result["novel_share"],
                  maths.wilson_interval(n - result["copies"], n), {"copies": result["copies"]},
                  extractor="tiles", reference=len(train)),
            Value("nn_hamming", result["nn_distance"], None, {"statistic": "mean"},
                  extractor="tiles", reference=len(train))]


@register_metric("level-diversity", "mean pairwise normalised Hamming distance among generated levels")
def _diversity(inputs: EvalInputs) -> list[Value]:
    return [Value("diversity", diversity(inputs.generated), None,
                  {"reference_diversity": diversity(inputs.reference_items)}, extractor="tiles")]


@register_metric("level-patterns", "tile-pattern KL divergence KL(training || generated) of 2x2 "
                 "and 3x3 windows (Lucas and Volz 2019)", needs_training=True)
def _patterns(inputs: EvalInputs) -> list[Value]:
    train = _training(inputs)
    return [Value(f"pattern_kl_{k}x{k}", pattern_kl(inputs.generated, train, k), None,
                  {"epsilon": EPSILON, "direction": "KL(training || generated)"},
                  extractor="tiles", reference=len(train)) for k in PATTERN_SIZES]


@register_metric("level-tiles", "total variation distance between generated and training tile "
                 "frequencies", needs_training=True)
def _tiles(inputs: EvalInputs) -> list[Value]:
    legend, train = legend_for(inputs), _training(inputs)
    return [Value("tile_distribution_error",
                  tile_distribution_error(inputs.generated, train, legend.size), None,
                  {"tiles": list(legend.chars)}, extractor="tiles", reference=len(train))]


class TileFeatures:
    """A weightless extractor for levels: tile frequencies (16 bins) and 2x2 pattern frequencies
    hashed into 240 bins, so FD/precision/recall can run on levels of any game."""

    name, kind, dim, fingerprint = "level-tiles", "level", 256, None
    checksum = hashlib.sha256(b"level-tiles v1: 16 tile bins + 240 hashed 2x2 bins").hexdigest()

    def features(self, items: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """float32 [N, 256]: each half sums to 1 per level."""
        grids = _grids(items).clip(0, 15)
        n = len(grids)
        tiles = np.zeros((n, 16))
        np.add.at(tiles, (np.repeat(np.arange(n), grids[0].size), grids.reshape(-1)), 1)
        code = (grids[:, :-1, :-1] * 4099 + grids[:, :-1, 1:] * 257 + grids[:, 1:, :-1] * 17
                + grids[:, 1:, 1:]) % 240
        pairs = np.zeros((n, 240))
        np.add.at(pairs, (np.repeat(np.arange(n), code[0].size), code.reshape(-1)), 1)
        norm = lambda a: a / np.maximum(1, a.sum(1, keepdims=True))  # noqa: E731
        return torch.from_numpy(np.concatenate([norm(tiles), norm(pairs)], 1)).float()


@register_extractor("level-tiles")
def _load_tile_features(weights=None, device="cpu") -> TileFeatures:
    return TileFeatures()
