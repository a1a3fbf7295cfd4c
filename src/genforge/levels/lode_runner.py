"""Lode Runner playability: which gold the runner can reach from the spawn under the movement rules.

The rules are KGoldrunner's hero's (kgrlevelgrid.cpp, kgrrunner.cpp, kgrlevelplayer.cpp), read as a
sound static check: a square counts as reachable only if some sequence of moves really gets the
runner there, so a level called playable is one whose gold can all be taken. Enemies are ignored:
their squares count as empty, as if they could always be dodged.

- Squares: bricks (solid and diggable) block; the edges of the level are concrete (the runner
  stands on the bottom edge and never leaves by the top while gold is left).
- Held or falling: the runner is held in a ladder or bar square, or with a brick, a ladder or the
  bottom edge beneath him; gold, empty space and an open hole beneath hold nothing. A runner who
  is not held falls one square a move, catches a ladder or bar he falls into, and takes any gold
  he falls through.
- A held runner walks left or right into any square that is not a brick, climbs up only inside a
  ladder, and moves down into any square below that is not a brick (down a ladder, or off a bar
  or a ledge, to fall).
- Digging (dig=True): a held runner digs the diggable brick diagonally below him on the left or the
  right when the square above that brick is empty (an enemy or the spawn there moves away), an open
  hole, or gold, which he first steps onto and takes (two more moves); never under a ladder, a bar
  or a brick. Some KGoldrunner games also let a falling runner dig (dig_while_falling=True); then a
  runner who steps off a square and falls may dig the brick under the square he left.
- Holes refill. KGoldrunner keeps a hole open at least (23 + 6) cycles of 200 ms (Traditional
  rules, no enemies: the quickest), while the runner takes 160 ms to run a square and 232 ms to
  fall one: 36 runs or 25 falls (145 ticks of 40 ms). Here a hole is sure to be open for HOLE_LIFE
  ticks, a run or a climb taking RUN, a fall FALL and a dig DIG ticks: about two thirds of that.
  So the holes dug recently, with the ticks each has left, are part of the search state. While a
  hole is open the runner only goes down (walks, falls, digs; no climbing), so holes above him can
  no longer matter and are forgotten; the search gives up a line before any hole it remembers may
  refill, and the line ends once the runner is held on a square that is not a hole (he waits there
  until every hole has refilled) or no hole is left at or below him. This finds the classic
  multi-layer dig (dig as many bricks as there are layers, drop in, dig one fewer, and so on), a
  shaft dug beside a ladder, a tunnel through a wall and, falling, a shaft dug two wide. To keep
  the search small, the holes remembered lie in one run a row, in the two rows at and below the
  runner, within WINDOW columns of him, and a level gets at most SEARCH_LIMIT digging states (a
  bound on time; past it fewer paths are found, never more).
- KGoldrunner's hidden ladders appear only once all gold is taken and its false bricks cannot be
  stood on, so formats.KGR_TO_VGLC makes both empty space (that a false brick also stops a runner
  walking into it from the side is lost in the VGLC legend).
- Not modelled: enemies. The runner can stand and walk on an enemy's head, ride one down, trap one
  in a hole to cross it, or let one carry gold down to him, and some KGoldrunner levels need that;
  enemies move, so none of it is sure from the layout alone, and such levels count as unplayable.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from .formats import LODE_RUNNER, LevelError, Legend

SOLID, DIGGABLE, EMPTY, BAR, LADDER, GOLD, ENEMY, PLAYER = range(8)  # LODE_RUNNER legend order

RUN, FALL, DIG = 4, 6, 2  # ticks a move takes (KGoldrunner: 160 ms a square run, 232 ms fallen)
HOLE_LIFE = 100           # ticks a hole is surely open (KGoldrunner: at least 145)
WINDOW = 6                # remembered holes and the runner lie within this many columns
SEARCH_LIMIT = 50_000     # digging states a level may cost; past it the check finds fewer paths

_BRICKS = frozenset((SOLID, DIGGABLE))
_FOOTHOLDS = frozenset((SOLID, DIGGABLE, LADDER))  # what holds up a runner standing on it
_CLEAR = frozenset((EMPTY, ENEMY, PLAYER))         # squares a brick below may be dug from


@dataclass(frozen=True)
class _Level:
    """A grid flattened for the search: square p is row p // width, column p % width."""

    width: int
    tiles: tuple[int, ...]
    start: int


def _flatten(grid: np.ndarray) -> _Level:
    """The grid as a _Level; LevelError unless it has exactly one spawn."""
    spawn = np.argwhere(grid == PLAYER)
    if len(spawn) != 1:
        raise LevelError(f"{len(spawn)} player spawns (need exactly one)")
    width = grid.shape[1]
    return _Level(width, tuple(grid.ravel().tolist()), int(spawn[0][0]) * width + int(spawn[0][1]))


def _held(level: _Level, p: int, holes: tuple[int, ...]) -> bool:
    """Whether the runner on square p stays put rather than falling (holes: open ones)."""
    tiles = level.tiles
    if tiles[p] == LADDER or tiles[p] == BAR:
        return True
    below = p + level.width
    return below >= len(tiles) or (tiles[below] in _FOOTHOLDS and below not in holes)


def _open(level: _Level, p: int, holes: tuple[int, ...]) -> bool:
    """Whether the runner can move into square p (inside the level)."""
    return level.tiles[p] not in _BRICKS or p in holes


def _moves(level: _Level, p: int, holes: tuple[int, ...], held: bool,
           climb: bool) -> list[tuple[int, int]]:
    """(square, ticks) the runner on p reaches in one move; climb: whether he may go up."""
    width, below = level.width, p + level.width
    if not held:
        return [(below, FALL)] if below < len(level.tiles) else []
    x = p % width
    out = []
    if x > 0 and _open(level, p - 1, holes):
        out.append((p - 1, RUN))
    if x + 1 < width and _open(level, p + 1, holes):
        out.append((p + 1, RUN))
    if climb and level.tiles[p] == LADDER and p >= width and _open(level, p - width, holes):
        out.append((p - width, RUN))
    if below < len(level.tiles) and _open(level, below, holes):
        out.append((below, RUN if level.tiles[below] == LADDER else FALL))
    return out


def _digs(level: _Level, p: int, holes: tuple[int, ...],
          held: bool) -> list[tuple[int, int, int]]:
    """(p, brick, ticks) for each brick the runner on p can dig: diagonally below, under a clear
    square."""
    tiles, width = level.tiles, level.width
    if p + width >= len(tiles):
        return []
    x = p % width
    out = []
    for side in (-1, 1):
        if not 0 <= x + side < width:
            continue
        top, brick = p + side, p + side + width
        if tiles[brick] != DIGGABLE or brick in holes:
            continue
        if top in holes or tiles[top] in _CLEAR:
            out.append((p, brick, DIG))
        elif tiles[top] == GOLD and held:  # step onto the gold, take it, step back
            out.append((p, brick, DIG + 2 * RUN))
    return out


def _digs_stepping_off(level: _Level, p: int, holes: tuple[int, ...], held: bool,
                       dig_while_falling: bool) -> list[tuple[int, int, int]]:
    """(square, brick, ticks): a held runner on p steps aside into a square where he falls and,
    falling, digs the brick under p, which he has just cleared (taking any gold on it)."""
    tiles, width = level.tiles, level.width
    brick = p + width
    if not (held and dig_while_falling) or brick >= len(tiles) or tiles[brick] != DIGGABLE \
            or brick in holes or tiles[p] in (LADDER, BAR):
        return []
    return [(q, brick, RUN + DIG) for q, ticks in _moves(level, p, holes, held, False)
            if q != brick and q // width == p // width and not _held(level, q, holes)]


def reachable(grid: np.ndarray, dig: bool = False, dig_while_falling: bool = False) -> np.ndarray:
    """bool [H, W]: squares the runner can occupy, starting from the single spawn."""
    level = _flatten(np.asarray(grid))
    seen = bytearray(len(level.tiles))      # squares occupied at some time
    resting = bytearray(len(level.tiles))   # ... with no hole open
    seen[level.start] = resting[level.start] = 1
    todo = deque([level.start])
    best: dict = {}  # (square, holes) -> the shortest life left among the holes, shared by digs
    while todo:
        p = todo.popleft()
        held = _held(level, p, ())
        landings = [q for q, _ in _moves(level, p, (), held, climb=True)]
        if dig:
            digs = _digs(level, p, (), held) if held or dig_while_falling else []
            for q, brick, ticks in digs + _digs_stepping_off(level, p, (), held, dig_while_falling):
                landings += _dig_excursion(level, q, (brick,), (HOLE_LIFE - ticks,), best, seen,
                                           dig_while_falling)
        for q in landings:
            if not resting[q]:
                resting[q] = seen[q] = 1
                todo.append(q)
    return np.frombuffer(bytes(seen), dtype=np.uint8).astype(bool).reshape(np.shape(grid))


def _dig_excursion(level: _Level, start: int, holes: tuple[int, ...], lives: tuple[int, ...],
                   best: dict, seen: bytearray, dig_while_falling: bool) -> list[int]:
    """Squares where the runner, from `start` with fresh holes open (lives: ticks each is sure to
    stay open), can rest with no hole left to worry about; marks every square he passes in seen."""
    width = level.width
    landings: list[int] = []
    if not _worth_exploring(best, (start, holes), min(lives)):
        return landings
    todo = deque([(start, holes, lives)])
    while todo:
        p, holes, lives = todo.popleft()
        if best[(p, holes)] != min(lives):
            continue  # reached again with more time left
        held = _held(level, p, holes)
        nexts = [(q, holes, lives, ticks) for q, ticks in _moves(level, p, holes, held, False)]
        digs = _digs(level, p, holes, held) if held or dig_while_falling else []
        for q, brick, ticks in digs + _digs_stepping_off(level, p, holes, held, dig_while_falling):
            if _extends_run(holes, brick, width):
                at = sum(h < brick for h in holes)
                nexts.append((q, holes[:at] + (brick,) + holes[at:],
                              lives[:at] + (HOLE_LIFE,) + lives[at:], ticks))
        for q, holes2, lives2, ticks in nexts:
            floor = q - q % width
            if holes2[0] < floor:  # he never climbs while holes are open: those above are done
                kept = [i for i, h in enumerate(holes2) if h >= floor]
                holes2, lives2 = tuple(holes2[i] for i in kept), tuple(lives2[i] for i in kept)
            if holes2 and min(lives2) <= ticks:
                continue  # a hole might refill before this move ends: give the line up
            seen[q] = 1
            if not holes2 or (q not in holes2 and _held(level, q, holes2)):
                landings.append(q)  # safe: nothing open below, or he waits here for the refill
                if not holes2:
                    continue
            if not _within_window(holes2, q, width):
                continue
            lives2 = tuple(life - ticks for life in lives2)
            if _worth_exploring(best, (q, holes2), min(lives2)):
                todo.append((q, holes2, lives2))
    return landings


def _worth_exploring(best: dict, state: tuple, life: int) -> bool:
    """Whether a digging state is new, or reached with more time left; records it if so."""
    known = best.get(state)
    if (known is None and len(best) >= SEARCH_LIMIT) or (known is not None and known >= life):
        return False
    best[state] = life
    return True


def _extends_run(holes: tuple[int, ...], brick: int, width: int) -> bool:
    """Whether a new hole keeps the holes one run a row (the digs worth making: wider pits,
    tunnels and layers), which keeps the search small."""
    row = [h for h in holes if h // width == brick // width]
    return not row or brick - 1 in row or brick + 1 in row


def _within_window(holes: tuple[int, ...], p: int, width: int) -> bool:
    """Whether the holes and the runner on p lie within WINDOW columns."""
    cols = [h % width for h in holes] + [p % width]
    return max(cols) - min(cols) < WINDOW


def gold_reached(grid: np.ndarray, dig: bool = False,
                 dig_while_falling: bool = False) -> tuple[int, int]:
    """(gold the runner can reach, gold in the level)."""
    grid = np.asarray(grid)
    gold = grid == GOLD
    return int((reachable(grid, dig, dig_while_falling) & gold).sum()), int(gold.sum())


def check(grid: np.ndarray) -> str | None:
    """Why a level is not a well-formed Lode Runner level, or None: one spawn, some gold."""
    grid = np.asarray(grid)
    spawns = int((grid == PLAYER).sum())
    if spawns != 1:
        return f"{spawns} player spawns (need exactly one)"
    if not (grid == GOLD).any():
        return "no gold"
    return None


def playable(grid: np.ndarray, dig: bool = True, dig_while_falling: bool = False) -> bool:
    """Well formed and every piece of gold reachable."""
    if check(grid) is not None:
        return False
    got, total = gold_reached(grid, dig, dig_while_falling)
    return got == total


# Shipped levels are built of runs: floors of brick, ladders, bars. The share of non-empty
# tiles equal to their right or lower neighbour, measured on KGoldrunner's 489 levels: median
# 0.42, 5th percentile 0.22; on levels of independent tiles drawn with the same tile frequencies
# (noise): median 0.13, at most 0.19 in 500. Below 0.2 a level reads as noise (about 4% of the
# shipped levels fall there too: a hint for a designer, not a rule of the game).
NOISE_BELOW = 0.2


def structure_share(grid: np.ndarray) -> float:
    """Share of non-empty tiles equal to their right or lower neighbour (see NOISE_BELOW)."""
    grid = np.asarray(grid)
    empty = LODE_RUNNER.index(".")
    right, down = grid[:, :-1] != empty, grid[:-1] != empty
    same = ((grid[:, :-1] == grid[:, 1:]) & right).sum() + ((grid[:-1] == grid[1:]) & down).sum()
    return float(same / max(1, right.sum() + down.sum()))


def legend_ok(legend: Legend) -> bool:
    """Whether a legend is this module's (tile indices above are LODE_RUNNER's)."""
    return legend.chars == LODE_RUNNER.chars
