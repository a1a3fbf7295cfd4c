"""Tensor representations of music as encode/decode pairs, on a 16th-note grid.

Two item encodings, both integer tensors whose last axis is time (one step per 16th note):

* SATB (the Coconet format), uint8 [4, T]: rows soprano, alto, tenor, bass; each entry is a
  code: 0 is a rest, 1 + (pitch - PITCH_LOW) is a pitch held over from the previous step, and that
  plus ONSET (64) is the same pitch attacked on this step. So repeated notes and held notes differ.
* Piano roll, uint8 [88, T] over the piano's keys (MIDI 21..108): 0 silent, 1 sounding, 2 attacked.

The canonical note object is `Note(pitch, start, end, voice)` in grid steps (end exclusive);
`satb_to_notes`/`notes_to_satb` and `roll_to_notes`/`notes_to_roll` are inverse pairs.
Models see one-hot planes (`satb_to_model`/`satb_from_model`), see `model_shape`.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

STEPS_PER_QUARTER = 4                 # a 16th-note grid
STEPS_PER_BAR = 4 * STEPS_PER_QUARTER  # 4/4 only
VOICES = ("soprano", "alto", "tenor", "bass")
PITCH_LOW, PITCH_HIGH = 36, 82        # Bach chorales span 36..81; one spare semitone on top
PITCH_BINS = PITCH_HIGH - PITCH_LOW + 1  # 47 pitches
WIDTH = PITCH_BINS + 1                # model width: rest bin 0 + 47 pitch bins = 48 (divides by 16)
ONSET = 64                            # flag added to a pitch code when the note is attacked
REST = 0
ROLL_LOW, ROLL_KEYS = 21, 88          # piano-roll pitch axis: A0..C8


class Note(NamedTuple):
    """One note on the grid: MIDI pitch, start and end step (end exclusive), voice index."""

    pitch: int
    start: int
    end: int
    voice: int = 0


def pitch_code(pitch: int, onset: bool) -> int:
    """The SATB code of a pitch (attacked or held)."""
    if not PITCH_LOW <= pitch <= PITCH_HIGH:
        raise ValueError(f"pitch {pitch} outside the SATB range {PITCH_LOW}..{PITCH_HIGH}")
    return 1 + pitch - PITCH_LOW + (ONSET if onset else 0)


def satb_pitches(items: torch.Tensor | np.ndarray) -> np.ndarray:
    """MIDI pitch per voice and step (int16, -1 for a rest) from SATB codes [..., 4, T]."""
    codes = np.asarray(items).astype(np.int16)
    low = codes % ONSET
    return np.where(low == REST, -1, low - 1 + PITCH_LOW).astype(np.int16)


def satb_onsets(items: torch.Tensor | np.ndarray) -> np.ndarray:
    """True where a note starts: an ONSET code, or a held code whose pitch differs from the step
    before (a hold cannot continue a rest or another pitch, so decoding treats it as an attack)."""
    pitches = satb_pitches(items)
    flagged = (np.asarray(items).astype(np.int16) >= ONSET) & (pitches >= 0)
    previous = np.concatenate([np.full_like(pitches[..., :1], -1), pitches[..., :-1]], axis=-1)
    return flagged | ((pitches >= 0) & (pitches != previous))


def canonical_satb(items: torch.Tensor | np.ndarray) -> np.ndarray:
    """The same music with every code well formed: invalid holds become onsets, rests lose flags."""
    pitches, onsets = satb_pitches(items), satb_onsets(items)
    codes = np.where(pitches < 0, 0, pitches - PITCH_LOW + 1) + np.where(onsets, ONSET, 0)
    return codes.astype(np.uint8)


def satb_to_notes(item: torch.Tensor | np.ndarray) -> list[Note]:
    """Decode one SATB item [4, T] into notes, sorted by start, voice."""
    pitches, onsets = satb_pitches(item), satb_onsets(item)
    notes = []
    for v in range(pitches.shape[0]):
        starts = np.flatnonzero(onsets[v])
        for k, s in enumerate(starts):
            limit = starts[k + 1] if k + 1 < len(starts) else pitches.shape[1]
            held = pitches[v, s:limit] == pitches[v, s]
            end = s + (int(np.argmin(held)) if not held.all() else len(held))
            notes.append(Note(int(pitches[v, s]), int(s), int(end), v))
    return sorted(notes, key=lambda n: (n.start, n.voice, n.pitch))


def notes_to_satb(notes: list[Note], steps: int) -> np.ndarray:
    """Encode notes (voice 0..3, monophonic per voice) as SATB codes [4, steps]; later notes
    overwrite earlier ones where a voice overlaps itself; notes past `steps` are cut."""
    codes = np.zeros((len(VOICES), steps), dtype=np.uint8)
    for n in sorted(notes, key=lambda n: n.start):
        start, end = max(n.start, 0), min(n.end, steps)
        if start >= end:
            continue
        codes[n.voice, start:end] = pitch_code(n.pitch, False)
        codes[n.voice, start] = pitch_code(n.pitch, True)
    return codes


def roll_to_notes(item: torch.Tensor | np.ndarray) -> list[Note]:
    """Decode one piano roll [88, T] (0 off, 1 held, 2 attacked) into notes (voice 0)."""
    roll = np.asarray(item)
    notes = []
    for key in range(roll.shape[0]):
        row = roll[key]
        on = row > 0
        previous = np.concatenate([[False], on[:-1]])
        starts = np.flatnonzero(on & ((row == 2) | ~previous))
        for k, s in enumerate(starts):
            limit = starts[k + 1] if k + 1 < len(starts) else len(row)
            run = on[s:limit]
            end = s + (int(np.argmin(run)) if not run.all() else len(run))
            notes.append(Note(ROLL_LOW + key, int(s), int(end), 0))
    return sorted(notes, key=lambda n: (n.start, n.pitch))


def notes_to_roll(notes: list[Note], steps: int) -> np.ndarray:
    """Encode notes as a piano roll [88, steps]; pitches off the keyboard are dropped."""
    roll = np.zeros((ROLL_KEYS, steps), dtype=np.uint8)
    for n in sorted(notes, key=lambda n: n.start):
        key, start, end = n.pitch - ROLL_LOW, max(n.start, 0), min(n.end, steps)
        if 0 <= key < ROLL_KEYS and start < end:
            roll[key, start:end] = 1
            roll[key, start] = 2
    return roll


def item_to_notes(item: torch.Tensor | np.ndarray) -> list[Note]:
    """Notes of one item of either encoding (told apart by the number of rows)."""
    return satb_to_notes(item) if np.asarray(item).shape[0] == len(VOICES) else roll_to_notes(item)


def is_satb(item_shape: tuple[int, ...]) -> bool:
    """True for SATB items [4, T], False for piano rolls [88, T]."""
    if len(item_shape) != 2 or item_shape[0] not in (len(VOICES), ROLL_KEYS):
        raise ValueError(f"expected music items [4, T] or [88, T], got {tuple(item_shape)}")
    return item_shape[0] == len(VOICES)


def model_shape(item_shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(C, H, W) the network sees: SATB [4, T] -> (8, T, 48): per voice a one-hot pitch plane
    (bin 0 = rest) and an onset plane marking the attacked bin; piano roll [88, T] -> (2, T, 88):
    a sounding plane and an onset plane. Time runs down H so 2-D convolutions see both time and
    interval patterns (as Coconet); the pitch axis is never folded into channels."""
    steps = item_shape[1]
    return (2 * len(VOICES), steps, WIDTH) if is_satb(item_shape) else (2, steps, ROLL_KEYS)


def satb_to_model(items: torch.Tensor) -> torch.Tensor:
    """SATB codes [N, 4, T] -> float32 [N, 8, T, 48] in {-1, 1}."""
    codes = torch.as_tensor(canonical_satb(items)).long()
    bins = codes % ONSET                                    # 0 rest, 1..47 pitch
    onehot = torch.nn.functional.one_hot(bins, WIDTH).float()  # [N, 4, T, 48]
    onset = onehot * (codes >= ONSET).float()[..., None]
    return torch.cat([onehot, onset], dim=1) * 2 - 1


def satb_from_model(x: torch.Tensor) -> torch.Tensor:
    """float [N, 8, T, 48] -> SATB codes uint8 [N, 4, T]: argmax bin per voice and step, attacked
    when the onset plane at that bin is above 0 (or the hold would be invalid)."""
    x = torch.nan_to_num(x.float())
    voices = len(VOICES)
    bins = x[:, :voices].argmax(dim=-1)                     # [N, 4, T]
    onset = x[:, voices:].gather(-1, bins[..., None])[..., 0] > 0
    codes = bins + torch.where(onset & (bins > 0), ONSET, 0)
    return torch.from_numpy(canonical_satb(codes.numpy()))


SATB_TOKENS = 1 + 2 * PITCH_BINS    # rest, each pitch held, each pitch attacked
ROLL_TOKENS = 3                      # silent, sounding, attacked


def satb_to_tokens(items: torch.Tensor | np.ndarray) -> torch.Tensor:
    """SATB codes [N, 4, T] -> tokens long [N, 4, T]: 0 rest, b (1..47) pitch bin b held,
    47 + b the same pitch attacked (the discrete family's symbols)."""
    codes = torch.as_tensor(canonical_satb(items)).long()
    bins = codes % ONSET
    return bins + torch.where((codes >= ONSET) & (bins > 0), PITCH_BINS, 0)


def satb_from_tokens(tokens: torch.Tensor) -> torch.Tensor:
    """Inverse of satb_to_tokens (made well formed: an impossible hold becomes an attack)."""
    t = torch.as_tensor(tokens).long().clamp(0, SATB_TOKENS - 1)
    attacked = t > PITCH_BINS
    codes = torch.where(attacked, t - PITCH_BINS + ONSET, t)
    return torch.from_numpy(canonical_satb(codes.numpy()))


def roll_to_model(items: torch.Tensor) -> torch.Tensor:
    """Piano rolls [N, 88, T] -> float32 [N, 2, T, 88] in {-1, 1} (sounding, attacked)."""
    roll = torch.as_tensor(np.asarray(items)).transpose(1, 2)
    return torch.stack([roll >= 1, roll == 2], dim=1).float() * 2 - 1


def roll_from_model(x: torch.Tensor) -> torch.Tensor:
    """float [N, 2, T, 88] -> piano rolls uint8 [N, 88, T]; a note starting after silence is
    attacked whatever the onset plane says."""
    x = torch.nan_to_num(x.float())
    on, attacked = x[:, 0] > 0, x[:, 1] > 0
    previous = torch.cat([torch.zeros_like(on[:, :1]), on[:, :-1]], dim=1)
    codes = on.to(torch.uint8) + (on & (attacked | ~previous)).to(torch.uint8)
    return codes.transpose(1, 2).contiguous()


def transpose_satb(items: np.ndarray, semitones: int) -> np.ndarray:
    """SATB codes shifted by semitones (rests stay rests); raises if a pitch leaves the range."""
    codes = np.asarray(items).astype(np.int16)
    low = codes % ONSET
    shifted = np.where(low == REST, 0, low + semitones)
    if ((low != REST) & ((shifted < 1) | (shifted > PITCH_BINS))).any():
        raise ValueError(f"transposing by {semitones} leaves the range {PITCH_LOW}..{PITCH_HIGH}")
    return (shifted + codes - low).astype(np.uint8)
