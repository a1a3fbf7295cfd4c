"""Musical augmentations of SATB model tensors, for the self-supervised domain encoder.

They act on what models see (representation.satb_to_model: float [N, 8, T, 48] in {-1, 1}; per
voice a one-hot pitch plane whose bin 0 is the rest, then per voice an onset plane), batched and
drawn from an explicit generator, and every output is again a valid one-hot tensor:

* transposition: bins 1..47 shift together by a whole number of semitones, the rest bin stays;
  each item's shift is limited so that no note leaves the range (nothing wraps, nothing is lost);
* a crop of whole beats: a window `beats` shorter than the item, at a random beat, whose first
  step becomes an attack for every sounding note (as dataset.crop_pieces makes crops);
* a voice dropped: with probability `drop`, one voice's notes become rests.

Image flips and colour jitter have no musical meaning and are not used.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .representation import STEPS_PER_QUARTER, VOICES

V = len(VOICES)


@dataclass(frozen=True)
class MusicAugment:
    transpose: int   # largest shift each way, in semitones
    beats: int       # beats cut from each view (at most a quarter of the item)
    drop: float      # chance that one voice becomes rests


# SimCLR's views: within a fourth each way (a key a chorale could be in), a bar of 4/4 cut, a
# voice gone in a third of the views. Matching two views then needs the harmony and its motion.
STRONG = MusicAugment(transpose=5, beats=4, drop=0.3)


def shift_limits(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per item, the lowest and highest transposition (semitones) keeping every note in range."""
    width = x.shape[-1] - 1
    used = (x[:, :V, :, 1:] > 0).any(dim=2).any(dim=1)                 # [N, 47]
    bins = torch.arange(width, device=x.device)
    lowest = torch.where(used, bins, width).min(dim=1).values
    highest = torch.where(used, bins, -1).max(dim=1).values
    silent = ~used.any(dim=1)
    low = torch.where(silent, 0, -lowest)
    high = torch.where(silent, 0, width - 1 - highest)
    return low, high


def random_shifts(x: torch.Tensor, most: int, g: torch.Generator,
                  avoid: torch.Tensor | None = None) -> torch.Tensor:
    """int64 [N] shifts drawn uniformly from [-most, most] within shift_limits; with `avoid`,
    never equal to it where the range holds another value."""
    low, high = shift_limits(x)
    low, high = low.clamp(min=-most), high.clamp(max=most)
    span = (high - low + 1).clamp(min=1)
    if avoid is None:
        return low + (torch.rand(len(x), generator=g, device=x.device) * span).long().clamp(
            max=span - 1)
    other = (span - 1).clamp(min=1)
    pick = low + (torch.rand(len(x), generator=g, device=x.device) * other).long().clamp(
        max=other - 1)
    pick = pick + ((pick >= avoid) & (span > 1)).long()
    return torch.minimum(pick, high)


def transpose(x: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Shift pitch bins 1..W-1 of every plane by shifts[i] semitones (positive is up); bin 0
    stays. Bins shifted in from outside are off (-1): callers keep shifts in shift_limits."""
    width = x.shape[-1] - 1
    source = torch.arange(width, device=x.device) - shifts.view(-1, 1)   # [N, 47]
    inside = (source >= 0) & (source < width)
    index = source.clamp(0, width - 1).view(len(x), 1, 1, width).expand(*x.shape[:3], width)
    pitches = x[..., 1:].gather(-1, index)
    pitches = torch.where(inside.view(len(x), 1, 1, width), pitches, -1.0)
    return torch.cat([x[..., :1], pitches], dim=-1)


def crop_beats(x: torch.Tensor, beats: int, g: torch.Generator) -> torch.Tensor:
    """A window `beats` beats shorter than the item at a random beat per item (the same length
    for all, so a batch stays one tensor); its first step attacks every sounding note."""
    steps = x.shape[2]
    beats = min(beats, steps // STEPS_PER_QUARTER // 4)
    if beats <= 0:
        return x
    length = steps - beats * STEPS_PER_QUARTER
    start = torch.randint(0, beats + 1, (len(x),), generator=g, device=x.device) * STEPS_PER_QUARTER
    index = (start.view(-1, 1) + torch.arange(length, device=x.device)).view(len(x), 1, length, 1)
    x = x.gather(2, index.expand(len(x), x.shape[1], length, x.shape[3])).clone()
    x[:, V:, 0, 1:] = x[:, :V, 0, 1:]  # a note held into the window is attacked at its start
    return x


def drop_voice(x: torch.Tensor, chance: float, g: torch.Generator) -> torch.Tensor:
    """With probability `chance` per item, one voice (uniformly chosen) becomes rests."""
    n = len(x)
    dropped = torch.rand(n, generator=g, device=x.device) < chance
    voice = torch.randint(0, V, (n,), generator=g, device=x.device)
    hit = torch.zeros(n, V, dtype=torch.bool, device=x.device)
    hit[torch.arange(n, device=x.device), voice] = dropped
    rest = torch.full_like(x[:, :V], -1.0)
    rest[..., 0] = 1.0
    planes = torch.where(hit.view(n, V, 1, 1), rest, x[:, :V])
    onsets = torch.where(hit.view(n, V, 1, 1), -1.0, x[:, V:])
    return torch.cat([planes, onsets], dim=1)


def augment(x: torch.Tensor, aug: MusicAugment, g: torch.Generator) -> torch.Tensor:
    """One random view per item: transposed, cropped to whole beats, maybe a voice dropped."""
    x = transpose(x, random_shifts(x, aug.transpose, g))
    x = crop_beats(x, aug.beats, g)
    return drop_voice(x, aug.drop, g)
