"""Harmonisation's music side: a melody (a MIDI or MusicXML soprano line, or any voices of a
four-part file) becomes SATB codes plus a mask of given entries [4, T]; the mask is widened to
the model's one-hot planes; decoding forces the given entries back in, so they come out exactly.
The sampling itself is the family's inpainting (families.diffusion.inpaint_items, or a masked
model that never hides the given notes), driven by generation.inpaint.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from . import representation as rep
from .corpus import Skip, read_parts


def read_given(path: str | Path, voices: tuple[int, ...] = (0,),
               steps: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """SATB codes [4, T] and a bool mask [4, T] of the given entries from a file: one part is a
    soprano melody (its top note where it has chords); four parts give the listed voices. A pickup
    is preceded by rests so bars start every 16 steps. T is `steps`, else whole bars."""
    try:  # in a child bounded in time and memory: the melody is anyone's upload
        parts, all_starts = read_parts(Path(path))
    except Skip as why:
        raise DataError(f"{path}: {why}") from None
    except Exception as e:  # Unreadable, or the file vanished
        raise DataError(f"{path}: not readable music ({e or type(e).__name__})") from None
    if len(parts) == 1:
        notes = parts[0]
        tops = {}
        for n in notes:  # keep the top note of each chord
            if n.start not in tops or n.pitch > tops[n.start].pitch:
                tops[n.start] = n
        notes, voices = list(tops.values()), (0,)
    elif len(parts) == len(rep.VOICES):
        notes = [n for v, part in enumerate(parts) if v in voices for n in part]
    else:
        raise DataError(f"{path}: {len(parts)} parts with notes; expected a melody (1) or SATB (4)")
    if not notes:
        raise DataError(f"{path}: no notes")
    # rests before a pickup, so bar lines fall every 16 steps as in the training crops
    starts = all_starts[all_starts + rep.STEPS_PER_BAR <= max(n.end for n in notes)]
    lead = (-int(starts[0])) % rep.STEPS_PER_BAR if len(starts) else 0
    notes = [n._replace(start=n.start + lead, end=n.end + lead) for n in notes]
    end = max(n.end for n in notes)
    steps = steps or -(-end // rep.STEPS_PER_BAR) * rep.STEPS_PER_BAR
    outside = [n.pitch for n in notes if not rep.PITCH_LOW <= n.pitch <= rep.PITCH_HIGH]
    if outside:
        raise DataError(f"{path}: pitch {outside[0]} outside {rep.PITCH_LOW}..{rep.PITCH_HIGH}")
    codes = rep.notes_to_satb(notes, steps)
    mask = np.zeros(codes.shape, dtype=bool)
    mask[list(voices)] = True
    return codes, mask


def given_mask(voices: tuple[int, ...] = (0,), bars: tuple[int, ...] | None = None,
               steps: int = 4 * rep.STEPS_PER_BAR) -> np.ndarray:
    """A mask [4, steps] giving the listed voices in the listed bars (all bars when None)."""
    mask = np.zeros((len(rep.VOICES), steps), dtype=bool)
    for b in (range(-(-steps // rep.STEPS_PER_BAR)) if bars is None else bars):
        mask[list(voices), b * rep.STEPS_PER_BAR:(b + 1) * rep.STEPS_PER_BAR] = True
    return mask


def model_mask(mask: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Item mask [N, 4, T] -> model mask [N, 8, T, 48]: a given (voice, step) fixes that voice's
    whole pitch row and onset row at that step."""
    m = torch.as_tensor(np.asarray(mask), dtype=torch.bool)
    return torch.cat([m, m], dim=1)[..., None].expand(*m.shape[:1], 2 * m.shape[1], m.shape[2],
                                                       rep.WIDTH)


def force_given(generated: np.ndarray, given: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The given entries exactly, the generated ones elsewhere made well formed (a generated hold
    that cannot continue the step before becomes an attack); given entries are never touched."""
    out = np.where(mask, given, generated).astype(np.uint8)
    return np.where(mask, out, rep.canonical_satb(out)).astype(np.uint8)
