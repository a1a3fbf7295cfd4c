"""Lode Runner playability: which gold the runner can reach from the spawn under the movement rules.

Rules (a static reading of the arcade game, enemies ignored): bricks (solid and diggable) block;
the runner is held up on a ladder, on a bar (rope), or with a brick, a ladder or the bottom edge
beneath; anything else falls one square at a time (and catches a bar it falls onto). A held runner
walks left and right, climbs up a ladder it stands in, and moves down into any non-brick square
(onto a ladder, off a bar, off a ledge). With digging, a held runner standing beside an empty
square may dig the diggable brick diagonally below it and drop into the hole; from a hole it may
also step into, or dig past, a brick beside that has space above (the two-wide hole runners dig to
go down several layers). Bricks refill, so holes are not remembered: a state is the runner's
square alone, which makes this an approximation (deep multi-layer digs are missed).
"""
from __future__ import annotations

from collections import deque

import numpy as np

from .formats import LODE_RUNNER, LevelError, Legend

SOLID, DIGGABLE, EMPTY, BAR, LADDER, GOLD, ENEMY, PLAYER = range(8)  # LODE_RUNNER legend order


def _held(grid: np.ndarray, y: int, x: int) -> bool:
    """Whether the runner on (y, x) stays put rather than falling."""
    if grid[y, x] in (LADDER, BAR) or y + 1 == grid.shape[0]:
        return True
    return grid[y + 1, x] in (SOLID, DIGGABLE, LADDER)


def _open(grid: np.ndarray, y: int, x: int) -> bool:
    """Inside the level and not a brick."""
    h, w = grid.shape
    return 0 <= y < h and 0 <= x < w and grid[y, x] not in (SOLID, DIGGABLE)


_SPACE = (EMPTY, GOLD, ENEMY, PLAYER)  # squares a brick below can be dug from


def _diggable_from_above(grid: np.ndarray, y: int, x: int) -> bool:
    """A diggable brick with empty space above it: a runner beside could have dug it already."""
    return grid[y, x] == DIGGABLE and y > 0 and grid[y - 1, x] in _SPACE


def moves(grid: np.ndarray, y: int, x: int, dig: bool) -> list[tuple[int, int]]:
    """Squares the runner on (y, x) reaches in one move."""
    in_hole = grid[y, x] == DIGGABLE  # only ever entered by digging
    h = grid.shape[0]
    if not in_hole and not _held(grid, y, x):
        return [(y + 1, x)] if y + 1 < h else []
    out = [(y, x + dx) for dx in (-1, 1) if _open(grid, y, x + dx)]
    if grid[y, x] == LADDER and _open(grid, y - 1, x):
        out.append((y - 1, x))
    if _open(grid, y + 1, x):
        out.append((y + 1, x))
    if dig and y + 1 < h:
        for dx in (-1, 1):
            if not 0 <= x + dx < grid.shape[1]:
                continue
            # Dig through empty space beside; from inside a hole, also through the other half of
            # a two-wide hole (a brick beside that could have been dug from above).
            beside = grid[y, x + dx] in _SPACE or (in_hole and _diggable_from_above(grid, y, x + dx))
            if beside and grid[y + 1, x + dx] == DIGGABLE:
                out.append((y + 1, x + dx))
            if in_hole and _diggable_from_above(grid, y, x + dx):
                out.append((y, x + dx))
    return out


def reachable(grid: np.ndarray, dig: bool = False) -> np.ndarray:
    """bool [H, W]: squares the runner can occupy, starting from the single spawn."""
    grid = np.asarray(grid)
    spawn = np.argwhere(grid == PLAYER)
    if len(spawn) != 1:
        raise LevelError(f"{len(spawn)} player spawns (need exactly one)")
    seen = np.zeros(grid.shape, dtype=bool)
    start = tuple(int(v) for v in spawn[0])
    seen[start] = True
    todo = deque([start])
    while todo:
        y, x = todo.popleft()
        for q in moves(grid, y, x, dig):
            if not seen[q]:
                seen[q] = True
                todo.append(q)
    return seen


def gold_reached(grid: np.ndarray, dig: bool = False) -> tuple[int, int]:
    """(gold the runner can reach, gold in the level)."""
    grid = np.asarray(grid)
    gold = grid == GOLD
    return int((reachable(grid, dig) & gold).sum()), int(gold.sum())


def check(grid: np.ndarray) -> str | None:
    """Why a level is not a well-formed Lode Runner level, or None: one spawn, some gold."""
    grid = np.asarray(grid)
    spawns = int((grid == PLAYER).sum())
    if spawns != 1:
        return f"{spawns} player spawns (need exactly one)"
    if not (grid == GOLD).any():
        return "no gold"
    return None


def playable(grid: np.ndarray, dig: bool = True) -> bool:
    """Well formed and every piece of gold reachable."""
    if check(grid) is not None:
        return False
    got, total = gold_reached(grid, dig)
    return got == total


def legend_ok(legend: Legend) -> bool:
    """Whether a legend is this module's (tile indices above are LODE_RUNNER's)."""
    return legend.chars == LODE_RUNNER.chars
