"""A fixed held-out split of level sets, as the chorales have (music.corpus.work_split).

A level's split follows its tiles, not its file name: the key is the smallest byte string among
the level's symmetric images (levels.formats.symmetries) once outer rows and columns of the filler
tile are trimmed, so a level shipped twice, in two sets, mirrored or padded, lands in one split,
and moving the files elsewhere changes nothing.
"""
from __future__ import annotations

import hashlib

import numpy as np
import torch

from ..music.corpus import work_split
from ..music.dataset import SPLITS
from .formats import Legend, symmetries


def trimmed(grid: np.ndarray, legend: Legend) -> np.ndarray:
    """The level without outer rows and columns of nothing but the filler tile (Sokoban: wall),
    so a level padded to a model's size keeps its key."""
    grid = np.asarray(grid, dtype=np.uint8)
    fill = grid != legend.index(legend.filler)
    rows, cols = np.flatnonzero(fill.any(axis=1)), np.flatnonzero(fill.any(axis=0))
    if not len(rows):
        return grid
    return grid[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def level_key(grid: np.ndarray, legend: Legend) -> str:
    """sha256 of the level's canonical form: trimmed of filler, then the smallest of its images
    under the game's symmetries."""
    tiles = torch.from_numpy(np.ascontiguousarray(trimmed(grid, legend)))
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
