"""From pieces to training items: fixed-length crops on bar lines, a split by work, and
transposition as a data-level expansion.

Crops are `bars` full 4/4 bars (16 steps each) starting on every `hop`-th bar line of a piece whose
following bar lines are all present (so a crop never straddles a pickup or a missing bar).
Transposition by -k..+k semitones keeps a copy only when every voice stays inside the range that
voice covers in the untransposed training crops (all keys together for piano rolls), so a bass
is never moved into the tenor's register.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import representation as rep
from .corpus import Piece, piece_split

SPLITS = ("train", "validation", "test", "all")


@dataclass
class Crops:
    """Items [N, rows, T] and, per item, the index of its piece and its transposition."""

    items: np.ndarray
    piece: np.ndarray       # int64 [N]
    shift: np.ndarray       # int64 [N] semitones


def crop_starts(piece: Piece, bars: int, hop: int = 1) -> list[int]:
    """Steps where a crop of `bars` complete bars can start, every `hop`-th bar line."""
    lines = set(int(s) for s in piece.bar_starts)
    steps = piece.grid.shape[1]
    good = [s for s in sorted(lines) if s + bars * rep.STEPS_PER_BAR <= steps
            and all(s + k * rep.STEPS_PER_BAR in lines for k in range(bars))]
    return good[::hop]


def crop_pieces(pieces: list[Piece], bars: int, hop: int = 1) -> Crops:
    """Every crop of every piece; crops of nothing but rests are dropped."""
    length, items, index = bars * rep.STEPS_PER_BAR, [], []
    for i, piece in enumerate(pieces):
        for s in crop_starts(piece, bars, hop):
            crop = piece.grid[:, s:s + length]
            if crop.any():
                # a crop may start mid-note: the first step becomes an attack (canonical form)
                items.append(rep.canonical_satb(crop) if len(crop) == len(rep.VOICES)
                             else _roll_start(crop))
                index.append(i)
    rows = pieces[0].grid.shape[0] if pieces else len(rep.VOICES)
    array = np.stack(items) if items else np.zeros((0, rows, length), np.uint8)
    return Crops(array, np.array(index, dtype=np.int64), np.zeros(len(index), dtype=np.int64))


def _roll_start(crop: np.ndarray) -> np.ndarray:
    crop = crop.copy()
    crop[:, 0] = np.where(crop[:, 0] > 0, 2, 0)
    return crop


def select_split(pieces: list[Piece], split: str) -> list[Piece]:
    """The pieces of one split (see corpus.piece_split), or all of them."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    return [p for p in pieces if split == "all" or piece_split(p) == split]


def voice_ranges(items: np.ndarray) -> np.ndarray:
    """[groups, 2] lowest and highest pitch: per voice for SATB, one group for piano rolls."""
    if len(items) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    if rep.is_satb(items.shape[1:]):
        pitches = rep.satb_pitches(items)
        out = []
        for v in range(len(rep.VOICES)):
            sounding = pitches[:, v][pitches[:, v] >= 0]
            out.append((sounding.min(), sounding.max()) if sounding.size else (rep.PITCH_HIGH, rep.PITCH_LOW))
        return np.array(out, dtype=np.int64)
    keys = np.flatnonzero(items.any(axis=(0, 2))) + rep.ROLL_LOW
    if not keys.size:
        return np.array([[rep.ROLL_LOW + rep.ROLL_KEYS, rep.ROLL_LOW]], dtype=np.int64)
    return np.array([[keys.min(), keys.max()]], dtype=np.int64)


def _span(item: np.ndarray) -> np.ndarray:
    """[groups, 2] the item's own lowest and highest pitch (empty groups: an impossible span)."""
    return voice_ranges(item[None])


def transpose_item(item: np.ndarray, semitones: int) -> np.ndarray:
    """One item moved by semitones (SATB codes or piano roll)."""
    if rep.is_satb(item.shape):
        return rep.transpose_satb(item, semitones)
    return np.roll(item, semitones, axis=0)  # callers check no key wraps around


def transpose_crops(crops: Crops, semitones: int, ranges: np.ndarray | None = None) -> Crops:
    """Add each crop moved by -semitones..+semitones (except 0) when it stays within `ranges`
    (default: the crops' own per-voice ranges). Originals come first, then each shift in order."""
    if semitones <= 0 or len(crops.items) == 0:
        return crops
    ranges = voice_ranges(crops.items) if ranges is None else ranges
    spans = [_span(item) for item in crops.items]
    items, piece, shift = [crops.items], [crops.piece], [crops.shift]
    for t in [t for k in range(1, semitones + 1) for t in (-k, k)]:
        keep = [i for i, span in enumerate(spans)
                if ((span[:, 0] + t >= ranges[:, 0]) | (span[:, 0] > span[:, 1])).all()
                and ((span[:, 1] + t <= ranges[:, 1]) | (span[:, 0] > span[:, 1])).all()]
        if keep:
            items.append(np.stack([transpose_item(crops.items[i], t) for i in keep]))
            piece.append(crops.piece[keep])
            shift.append(np.full(len(keep), t, dtype=np.int64))
    return Crops(np.concatenate(items), np.concatenate(piece), np.concatenate(shift))
