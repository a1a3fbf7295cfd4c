"""A fixed held-out split of level sets, as the chorales have (music.corpus.work_split).

A level's split follows its tiles, not its file name: the key is the smallest byte string among
the level's symmetric images (levels.formats.symmetries), so a level shipped twice, in two sets or
mirrored, lands in one split, and moving the files elsewhere changes nothing.
"""
from __future__ import annotations

import hashlib

import numpy as np
import torch

from ..music.corpus import work_split
from ..music.dataset import SPLITS
from .formats import Legend, symmetries


def level_key(grid: np.ndarray, legend: Legend) -> str:
    """sha256 of the level's canonical form under its game's symmetries."""
    tiles = torch.from_numpy(np.ascontiguousarray(grid, dtype=np.uint8))
    images = [g(tiles).contiguous().numpy() for g in symmetries(legend, tuple(tiles.shape))]
    best = min(f"{a.shape[0]}x{a.shape[1]}:".encode() + a.tobytes() for a in images)
    return hashlib.sha256(best).hexdigest()


def level_split(grid: np.ndarray, legend: Legend) -> str:
    """train (80%), validation (10%) or test (10%) for one level, fixed by its tiles."""
    return work_split(level_key(grid, legend))


def select(levels: list, legend: Legend, split: str) -> list:
    """The levels (sources.Level) of one split, or all of them for 'all'."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    return [lv for lv in levels if split == "all" or level_split(lv.grid, legend) == split]
