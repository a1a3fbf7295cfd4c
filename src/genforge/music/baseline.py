"""A benchmark baseline: a Markov chain over SATB chords, one chord (the four voices' codes,
attacks included) per 16th-note step, learned from training items, with back-off.

Generation looks up the last `order` chords; a context never seen in training backs off to the
last order-1 chords, down to the chords' overall frequencies. Pure and seeded: sample i depends
only on (seed, i), so it is the same whatever the number drawn.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import torch

from . import representation as rep
from .harmonize import force_given

Chord = tuple[int, int, int, int]


@dataclass(frozen=True)
class MarkovChords:
    """Next-chord counts per context length 0..order: tables[k][context of k chords]."""

    order: int
    tables: tuple[dict[tuple[Chord, ...], tuple[list[Chord], np.ndarray]], ...]
    starts: tuple[list[Chord], np.ndarray]   # first chords of the training items, with counts


def _freeze(counter: Counter) -> tuple[list, np.ndarray]:
    keys = sorted(counter)
    return keys, np.array([counter[k] for k in keys], dtype=np.float64)


def fit_markov(items, order: int = 2) -> MarkovChords:
    """Count chord successions in SATB items [N, 4, T] for every context of 0..order chords."""
    if not 1 <= order <= 4:
        raise ValueError(f"order must be 1..4, got {order}")
    items = rep.canonical_satb(np.asarray(items))
    if len(items) == 0:
        raise ValueError("need at least one training item")
    counts = [dict() for _ in range(order + 1)]
    starts = Counter()
    for item in items:
        chords = [tuple(int(c) for c in column) for column in item.T]
        starts[chords[0]] += 1
        for t, chord in enumerate(chords):
            for k in range(min(order, t) + 1):
                counts[k].setdefault(tuple(chords[t - k:t]), Counter())[chord] += 1
    tables = tuple({ctx: _freeze(c) for ctx, c in table.items()} for table in counts)
    return MarkovChords(order, tables, _freeze(starts))


def _draw(rng: np.random.Generator, choice: tuple[list, np.ndarray]):
    keys, weights = choice
    return keys[int(rng.choice(len(keys), p=weights / weights.sum()))]


def sample_markov(model: MarkovChords, count: int, steps: int, seed: int = 0) -> torch.Tensor:
    """count SATB items uint8 [count, 4, steps] from the chain (well-formed codes)."""
    out = np.zeros((count, len(rep.VOICES), steps), dtype=np.uint8)
    for i in range(count):
        rng = np.random.default_rng([seed, i])
        chords = [_draw(rng, model.starts)]
        while len(chords) < steps:
            for k in range(min(model.order, len(chords)), -1, -1):  # back off to shorter contexts
                choice = model.tables[k].get(tuple(chords[len(chords) - k:]))
                if choice is not None:
                    chords.append(_draw(rng, choice))
                    break
        out[i] = np.array(chords[:steps], dtype=np.uint8).T
    return torch.from_numpy(rep.canonical_satb(out))


def _matching(choice: tuple[list, np.ndarray], given: np.ndarray, known: np.ndarray):
    """The (chords, weights) of a table entry whose given voices equal `given` where `known`."""
    keys, weights = choice
    keep = [i for i, chord in enumerate(keys)
            if all(chord[v] == given[v] for v in np.flatnonzero(known))]
    return ([keys[i] for i in keep], weights[keep]) if keep else None


def harmonize_markov(model: MarkovChords, given, mask, seed: int = 0) -> np.ndarray:
    """One setting uint8 [4, T] of the given voices (codes [4, T] where mask [4, T] is True,
    e.g. the soprano): at each step a chord drawn from the longest seen context among those that
    keep the given codes there, backing off to shorter contexts, then to the chords that keep the
    given pitches (any onset); the given entries come back exactly."""
    given, mask = np.asarray(given).astype(np.uint8), np.asarray(mask, dtype=bool)
    rng = np.random.default_rng([seed])
    pitch_only = given % rep.ONSET  # a code's pitch part: a held note matches an attacked one
    chords: list[Chord] = []
    for t in range(given.shape[1]):
        chord = None
        for k in range(min(model.order, t), -1, -1):
            table = model.tables[k].get(tuple(chords[t - k:t]))
            choice = table and _matching(table, given[:, t], mask[:, t])
            if choice:
                chord = _draw(rng, choice)
                break
        if chord is None:  # no chord in training held these codes: match the pitches alone
            keys, weights = model.tables[0][()]
            keep = [i for i, c in enumerate(keys) if all(
                c[v] % rep.ONSET == pitch_only[v, t] for v in np.flatnonzero(mask[:, t]))]
            chord = _draw(rng, ([keys[i] for i in keep], weights[keep]) if keep else (keys, weights))
        chords.append(tuple(int(c) for c in chord))
    return force_given(np.array(chords, dtype=np.uint8).T, given, mask)
