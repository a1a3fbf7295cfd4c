"""Rule moves for generated Sokoban levels (the discrete sampler's --rules, sampling.moves):
what is broken and which one-tile edits would mend it; the model then picks the edit it finds
likeliest.

Unlike structural repair (levels.repair: fixed edits in row-major order, no model), every change
here is drawn from the model given the rest of the level, one per round, in this order: a player
in the border (it moves inside), an open border (the grid's edge must be wall), a box to push at
all, as many boxes as goals (removing or adding either), then no box on a dead square (one from
which no goal can be reached by pushing).
"""
from __future__ import annotations

import numpy as np

from ..sampling.moves import Edit, TokenMove
from . import sokoban as sk


def _move(grid: np.ndarray, where: np.ndarray,
          changes: dict[int, tuple[int, ...]]) -> TokenMove | None:
    """Edits at the `where` squares: a square holding tile t may become any of changes[t]."""
    edits = []
    for y, x in zip(*np.nonzero(where)):
        for new in changes.get(int(grid[y, x]), ()):
            after = grid.copy()
            after[y, x] = new
            edits.append(Edit(int(y), int(x), int(new), after[where]))
    return TokenMove(where, edits) if edits else None


def sokoban_move(tokens: np.ndarray, fixed: np.ndarray) -> TokenMove | None:
    """The next rule move for one Sokoban level (tokens [H, W] in the SOKOBAN legend's order;
    fixed squares, given by the user, never change), or None when none applies."""
    grid = np.asarray(tokens).astype(np.int64)
    free = ~np.asarray(fixed, dtype=bool)
    players = np.isin(grid, (sk.PLAYER, sk.PLAYER_GOAL))
    if players.sum() != 1:
        return None
    edge = np.zeros_like(free)
    edge[[0, -1], :] = edge[:, [0, -1]] = True
    if (players & edge & free).any():  # the player stands in the border: it moves inside
        inside = free & ~edge & np.isin(grid, (sk.FLOOR, sk.GOAL))
        walled = np.where(players, sk.WALL, grid)
        edits = []
        for y, x in zip(*np.nonzero(inside)):
            after = walled.copy()
            after[y, x] = sk.PLAYER if grid[y, x] == sk.FLOOR else sk.PLAYER_GOAL
            edits.append(Edit(int(y), int(x), int(after[y, x]), after[inside | players]))
        return TokenMove(inside | players, edits) if edits else None
    open_edge = edge & free & (grid != sk.WALL) & ~players
    if open_edge.any():
        return _move(grid, open_edge,
                     {t: (sk.WALL,) for t in (sk.FLOOR, sk.BOX, sk.BOX_GOAL, sk.GOAL)})
    boxes = int((grid == sk.BOX).sum())
    surplus = boxes - int(np.isin(grid, (sk.GOAL, sk.PLAYER_GOAL)).sum())
    floor = free & (grid == sk.FLOOR) & ~edge
    if surplus == 0 and boxes == 0:  # nothing to push: a puzzle needs a box off its goal
        return _move(grid, floor, {sk.FLOOR: (sk.BOX,)})
    # fewer boxes or more goals; never the last box to push (that would undo the rule above)
    removable = free & (grid == sk.BOX) & (boxes > 1)
    if surplus > 0:
        return _move(grid, removable | floor,
                     {sk.BOX: (sk.FLOOR, sk.BOX_GOAL), sk.FLOOR: (sk.GOAL,)})
    board = sk.board(grid.astype(np.uint8))
    live = np.isfinite(np.array(sk.push_distances(board)).reshape(-1, board.width)[1:-1, 1:-1])
    if surplus < 0:  # a box may be added only where it can reach a goal
        return _move(grid, (floor & live) | (free & np.isin(grid, (sk.GOAL, sk.PLAYER_GOAL))),
                     {sk.GOAL: (sk.FLOOR, sk.BOX_GOAL), sk.PLAYER_GOAL: (sk.PLAYER,),
                      sk.FLOOR: (sk.BOX,)})
    dead = free & (grid == sk.BOX) & ~live  # even the last box: if it reaches no goal, no puzzle
    if dead.any():
        return _move(grid, dead, {sk.BOX: (sk.FLOOR, sk.BOX_GOAL)})
    return None
