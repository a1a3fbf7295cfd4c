"""Four-part voice-leading rules as pure functions of pitches and onsets, shared by the metrics
(counting broken rules) and the discrete sampler's rule moves (re-pitching a note that breaks
one).

Conventions (the metrics' docstring states them too): a succession is two successive steps at
which either voice of a pair attacks while both sound, with no rest in either between; parallel
means both voices move the same way and keep the same perfect interval class (octaves include
unisons, fifths include twelfths).
"""
from __future__ import annotations

from itertools import combinations
from typing import NamedTuple

import numpy as np
import torch

from ..sampling.moves import Edit, TokenMove
from . import representation as rep

FIFTH, OCTAVE = 7, 0  # interval classes


class Parallel(NamedTuple):
    upper: int      # voice index (0 = soprano)
    lower: int
    before: int     # step of the first interval
    after: int      # step of the second: both voices attack here
    interval: int   # FIFTH or OCTAVE


def _successions(p: np.ndarray, onsets: np.ndarray, one: int, other: int):
    """The (before, after) steps of two voices' successions: successive steps at which either
    attacks while both sound, with no rest in either between."""
    both = (p[one] >= 0) & (p[other] >= 0)
    events = np.flatnonzero(both & (onsets[one] | onsets[other]))
    a, b = events[:-1], events[1:]
    breaks = np.concatenate([[0], np.cumsum(~both)])
    unbroken = breaks[b + 1] == breaks[a]
    return a[unbroken], b[unbroken]


def _parallel_hits(line: np.ndarray, other: np.ndarray, a: np.ndarray, b: np.ndarray, classes):
    """Which successions (a -> b) of `line` ([T], or [C, T]: candidates) against `other` [T] are
    parallel in one of the interval classes, and each one's class at a."""
    same_way = (line[..., b] - line[..., a]) * (other[b] - other[a]) > 0
    before = np.abs(line[..., a] - other[a]) % 12
    after = np.abs(line[..., b] - other[b]) % 12
    return same_way & (before == after) & np.isin(before, classes), before


def parallels(pitches: np.ndarray, onsets: np.ndarray, classes=(FIFTH, OCTAVE),
              voices: tuple[int, ...] | None = None) -> list[Parallel]:
    """Every parallel perfect interval in one piece: pitches int [V, T] (-1 rest), onsets bool
    [V, T]; only pairs that include one of `voices` when given. Vectorised over steps."""
    p = np.asarray(pitches).astype(np.int64)
    found = []
    for upper, lower in combinations(range(p.shape[0]), 2):
        if voices is not None and upper not in voices and lower not in voices:
            continue
        a, b = _successions(p, onsets, upper, lower)
        hit, before = _parallel_hits(p[upper], p[lower], a, b, classes)
        found += [Parallel(upper, lower, int(a[i]), int(b[i]), int(before[i]))
                  for i in np.flatnonzero(hit)]
    return found


def note_span(pitches: np.ndarray, onsets: np.ndarray, voice: int, step: int) -> slice:
    """The steps of the note that sounds in `voice` at `step` (from its attack to its end)."""
    p, on = pitches[voice], onsets[voice]
    start = step
    while start > 0 and not on[start] and p[start - 1] == p[start]:
        start -= 1
    end = step + 1
    while end < len(p) and not on[end] and p[end] == p[step]:
        end += 1
    return slice(start, end)


# Which voice of a parallel pair to re-pitch first: inner voices, then the bass, the melody last
# (the soprano is what a listener follows, and the line a harmonisation is given).
REPITCH_ORDER = (1, 2, 3, 0)


def repitch_options(pitches: np.ndarray, onsets: np.ndarray, voice: int, span: slice,
                    candidates) -> list[int]:
    """The candidate pitches for the (sounding) note at `span` of `voice` that leave fewer
    parallels involving that voice than it has now; all candidates judged at once (re-pitching
    a note moves no onset or rest, so every pair's successions stay where they are)."""
    p = np.asarray(pitches).astype(np.int64)
    candidates = np.asarray(list(candidates), dtype=np.int64)
    trial = np.repeat(p[voice][None], len(candidates), axis=0)      # [C, T]
    trial[:, span] = candidates[:, None]
    now, counts = 0, np.zeros(len(candidates), dtype=np.int64)
    for other in range(p.shape[0]):
        if other != voice:
            a, b = _successions(p, onsets, voice, other)
            now += int(_parallel_hits(p[voice], p[other], a, b, (FIFTH, OCTAVE))[0].sum())
            counts += _parallel_hits(trial, p[other], a, b, (FIFTH, OCTAVE))[0].sum(1)
    return [int(c) for c in candidates[counts < now]]


def repitch_move(tokens: np.ndarray, fixed: np.ndarray) -> TokenMove | None:
    """The discrete sampler's rule move for one SATB piece (tokens [4, T], see
    representation.satb_to_tokens; fixed: given notes, never changed): re-pitch the note that
    completes the first parallel fifth or octave, keeping its rhythm, to any pitch that leaves
    fewer parallels involving its voice. None when the piece has none (or none can be fixed)."""
    codes = rep.satb_from_tokens(torch.as_tensor(tokens)[None])[0].numpy()
    pitches, onsets = rep.satb_pitches(codes), rep.satb_onsets(codes)
    for found in parallels(pitches, onsets):
        for voice in sorted((found.upper, found.lower), key=REPITCH_ORDER.index):
            span = note_span(pitches, onsets, voice, found.after)
            if fixed[voice, span].any():
                continue
            old = int(pitches[voice, span.start])
            after = span.stop < tokens.shape[1] and 1 <= tokens[voice, span.stop] <= rep.PITCH_BINS
            # a hold right after the note would merge into it if it took that hold's pitch
            merge = int(pitches[voice, span.stop]) if after else None
            candidates = [p for p in range(rep.PITCH_LOW, rep.PITCH_HIGH + 1)
                          if p not in (old, merge)]
            options = repitch_options(pitches, onsets, voice, span, candidates)
            if not options:
                continue
            mask = np.zeros(tokens.shape, dtype=bool)
            mask[voice, span] = True
            length = span.stop - span.start
            edits = [Edit(voice, span.start, attack_token(p),
                          np.array([attack_token(p)] + [hold_token(p)] * (length - 1)))
                     for p in options]
            return TokenMove(mask, edits)
    return None


def hold_token(pitch: int) -> int:
    return 1 + pitch - rep.PITCH_LOW


def attack_token(pitch: int) -> int:
    return hold_token(pitch) + rep.PITCH_BINS
