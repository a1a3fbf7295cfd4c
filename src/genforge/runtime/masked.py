"""Masked (discrete) sampling in numpy: families/discrete.sample_tokens, line for line, over a
predict(tokens, rate, labels) -> logits function (one ONNX evaluation). Rule moves (--rules)
need the content kinds' rule checks, which live with PyTorch: the runtime refuses them."""
from __future__ import annotations

import math

import numpy as np

from .noise import SeedStreams, gumbel, uniform

F32 = np.float32


def reveal_schedule(positions: int, steps: int) -> list[int]:
    """How many positions stay masked after each step: MaskGIT's cosine, ending at 0."""
    counts = [math.floor(positions * math.cos(math.pi / 2 * (s + 1) / steps)) for s in range(steps)]
    return [min(c, positions - s - 1) if positions > s else 0 for s, c in enumerate(counts)]


def _softmax(logits: np.ndarray, axis: int = 1) -> np.ndarray:
    shifted = logits - logits.max(axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=axis, keepdims=True)


def _log_softmax(logits: np.ndarray, axis: int = 1) -> np.ndarray:
    shifted = logits - logits.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def _where_masked(z: np.ndarray, masked: np.ndarray, transform) -> np.ndarray:
    """transform(z) where masked (broadcast to z), 0 elsewhere."""
    where = np.broadcast_to(masked, z.shape)
    out = np.zeros_like(z)
    out[where] = transform(z[where])
    return out


def _place_unique(tokens, masked, logits, noise_g, unique):
    """Each item lacking one of the unique symbols gets one (see discrete._place_unique)."""
    ids = np.asarray(unique)
    n = tokens.shape[0]
    has = np.isin(tokens, ids).reshape(n, -1).any(1)
    missing = ~has & masked.reshape(n, -1).any(1)
    if missing.any():
        probs = _softmax(logits)[:, ids].sum(1)
        weight = np.where(masked, probs, F32(0)).reshape(n, -1)
        weight = weight + masked.reshape(n, -1).astype(F32) * F32(1e-12)
        with np.errstate(divide="ignore"):
            square = (np.log(weight) + noise_g[:, 0].reshape(n, -1)).argmax(1)
        kind = ids[(logits[:, ids] + noise_g[:, 1:1 + len(ids)]).argmax(1)].reshape(n, -1)
        flat = tokens.reshape(n, -1).copy()
        rows = np.flatnonzero(missing)
        flat[rows, square[rows]] = kind[rows, square[rows]]
        tokens = flat.reshape(tokens.shape)
        masked = masked & ~np.isin(tokens, ids)
    logits = logits.copy()
    logits[:, ids] = -np.inf
    return tokens, masked, logits


def sample_tokens(predict, grid: tuple[int, int], classes: int, mask_token: int,
                  noise: SeedStreams, labels: np.ndarray | None = None, *, sampler: str,
                  steps: int, temperature: float, unique: tuple[int, ...] = ()) -> np.ndarray:
    """Tokens int64 [N, H, W], one grid per stream, revealed over `steps` steps."""
    n, (h, w), k = len(noise), grid, classes
    tokens = np.full((n, h, w), mask_token, dtype=np.int64)
    masked = tokens == mask_token
    free = int(masked.reshape(n, -1).sum(1).max())
    steps = max(1, min(steps, free))
    for s, left in enumerate(reveal_schedule(free, steps)):
        rate = (masked.reshape(n, -1).sum(1).astype(F32) / F32(h * w)).astype(F32)
        logits = predict(tokens, rate, labels).astype(F32) / F32(max(temperature, 1e-4))
        # Noise is drawn whole (each stream advances as PyTorch's does) but transformed only
        # where a position is still masked: elsewhere nothing reads it (-inf or unused below),
        # and the erf is most of the loop's own time.
        g = _where_masked(noise((k, h, w)), masked[:, None], lambda z: gumbel(uniform(z)))
        if unique:
            tokens, masked, logits = _place_unique(tokens, masked, logits, g, unique)
        drawn = (logits + g).argmax(1)
        u = _where_masked(noise((h, w)), masked, uniform)
        if sampler == "confidence":
            logp = np.take_along_axis(_log_softmax(logits), drawn[:, None], 1)[:, 0]
            anneal = F32(temperature * (1 - (s + 1) / steps))
            order = logp + anneal * _where_masked(u, masked, gumbel)
        else:
            order = _where_masked(u, masked, np.log)
        score = np.where(masked, order, F32(-np.inf)).reshape(n, -1)
        reveal = np.clip(masked.reshape(n, -1).sum(1) - left, 0, None)
        # ranks by descending score; stable, so equal scores keep position order as torch's sort
        ranks = np.argsort(np.argsort(-score, axis=1, kind="stable"), axis=1, kind="stable")
        chosen = (ranks < reveal[:, None]).reshape(n, h, w) & masked
        tokens = np.where(chosen, drawn, tokens)
        masked = masked & ~chosen
    return tokens
