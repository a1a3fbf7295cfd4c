"""Rule moves for generated levels (the discrete sampler's --rules, sampling.moves): what is
broken and which edits would mend it; the model then picks the edit it finds likeliest.

Unlike structural repair (levels.repair: fixed edits in row-major order, no model), every change
here is drawn from the model given the rest of the level, one per round.

Sokoban, in this order: a player in the border (it moves inside), an open border (the grid's edge
must be wall), a box to push at all, as many boxes as goals (too many boxes: a goal added or a box
put on one; too few: a box added, or a goal taken away only where no box can go), no box on a dead
square (one from which no goal can be reached by pushing: it moves to a square that can); then,
keeping the level well formed, no box frozen off a goal (against walls and other boxes, so it can
never move), boxes that can each reach a goal of their own, a first push the player can make (else
a wall beside him opens), and last a level the solver does not prove unsolvable. These are mended
by moving a box first (the level keeps its boxes; an unsolvable level takes, of the box moves and
wall openings, the one with the longest solution), and by taking a box away together with a goal
only when no move will do (the last box off a goal stays).

Lode Runner: some gold the runner can reach (else the model places one there), then no gold he
cannot reach: it moves to an empty square he reaches, where the model finds gold likeliest. A
runner shut in with no empty square in reach gets a brick beside him opened first. A level keeps
its spawn.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..sampling.moves import Edit, TokenMove
from . import lode_runner as lr
from . import sokoban as sk

SOLVER_BUDGET = 5_000  # states the last Sokoban rule may spend; a level it cannot decide stays


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
    # too many boxes: a goal is added, or a box put on one (never the last box to push, which
    # would undo the rule above); no box is taken away
    spare = free & (grid == sk.BOX) & (boxes > 1)
    if surplus > 0:
        return _move(grid, spare | floor, {sk.BOX: (sk.BOX_GOAL,), sk.FLOOR: (sk.GOAL,)})
    board = sk.board(grid.astype(np.uint8))
    dist = sk.push_distances(board)
    live = _on_grid(board, np.isfinite(dist))
    if surplus < 0:  # too few boxes: one is added where it can reach a goal (a box to push
        #              keeps the puzzle's size; the model, asked, mostly drops a goal instead);
        #              only with no such square does a goal go or take a box
        if (floor & live).any():
            return _move(grid, floor & live, {sk.FLOOR: (sk.BOX,)})
        return _move(grid, free & np.isin(grid, (sk.GOAL, sk.PLAYER_GOAL)),
                     {sk.GOAL: (sk.FLOOR, sk.BOX_GOAL), sk.PLAYER_GOAL: (sk.PLAYER,)})
    dead = (grid == sk.BOX) & ~live  # even the last box: if it reaches no goal, no puzzle
    if dead.any():  # it moves where it can; else it goes or a goal goes under it (a given
        #             dead box is the user's: nothing here can mend the level)
        return (_box_relocation(grid, free, board, dist, among=np.pad(dead & free, 1).reshape(-1))
                or _move(grid, dead & free, {sk.BOX: (sk.FLOOR, sk.BOX_GOAL)}))
    return _sokoban_deadlock_move(grid, free, board, dist)


def _on_grid(board: sk.Board, flags) -> np.ndarray:
    """Per-square flags over a board's padded flat indices, as a bool [H, W] grid."""
    return np.asarray(flags, dtype=bool).reshape(-1, board.width)[1:-1, 1:-1]


def _square(board: sk.Board, p: int) -> tuple[int, int]:
    """Grid (row, column) of a board's flat index."""
    y, x = divmod(p, board.width)
    return y - 1, x - 1


def _sokoban_deadlock_move(grid: np.ndarray, free: np.ndarray, board: sk.Board,
                           dist: list[float]) -> TokenMove | None:
    """The rules past a well-formed level: a frozen box, boxes that cannot share out the goals,
    no first push, then a level the solver proves unsolvable. Each is mended by moving a box
    first (the level keeps its boxes) and by taking a box away with a goal only when no move will
    do; an unsolvable level takes, of the box moves and wall openings that make it solvable, the
    ones with the longest solution."""
    dead = [d == float("inf") for d in dist]
    boxes = set(board.boxes)
    stuck = np.zeros(len(board.walls), dtype=bool)
    for p in boxes - board.goals:
        stuck[p] = sk.frozen(p, boxes, board, dead, set())
    goals = sorted(board.goals)
    if len(goals) > sk.MATCHING_MAX_BOXES:
        return None
    per_goal = sk.goal_costs(board)
    cost = [[row[p] for row in per_goal] for p in board.boxes]
    if stuck.any() and (move := _box_relocation(grid, free, board, dist, among=stuck)
                        or _pair_removal(grid, free, board, cost, goals, stuck, False)):
        return move
    if sk.min_matching(cost) >= sk.NO_MATCH and (
            move := _box_relocation(grid, free, board, dist, per_goal=per_goal)
            or _pair_removal(grid, free, board, cost, goals, None, True)):
        return move
    w = board.width
    reach = set(sk.region(board, board.player, boxes))
    if not any(p - d in reach and not board.walls[p + d] and p + d not in boxes and not dead[p + d]
               for p in boxes for d in (-1, 1, -w, w)):
        walls = np.zeros(len(board.walls), dtype=bool)
        for p in reach:  # a wall beside the player's room, or behind a box he could push
            for d in (-1, 1, -w, w):
                walls[p + d] = True
                if p + d in boxes:
                    walls[p + 2 * d] = True
        where = _on_grid(board, walls) & free & _inner(free) & (grid == sk.WALL)
        return _move(grid, where, {sk.WALL: (sk.FLOOR,)})
    if _proved_unsolvable(grid.astype(np.uint8).tobytes(), grid.shape):
        mends = (_as_afters(grid, _box_relocation(grid, free, board, dist))
                 + _wall_openings(grid, free, board, reach))
        return (_longest_solution(grid, mends)
                or _pair_removal(grid, free, board, cost, goals, None, keep_matching=False)
                or _box_relocation(grid, free, board, dist))
    return None


def _inner(free: np.ndarray) -> np.ndarray:
    """Every square but the grid's edge."""
    inner = np.zeros_like(free)
    inner[1:-1, 1:-1] = True
    return inner


# candidate mends of an unsolvable level the solver tries (evenly spread) and its states for
# each: every mend it cannot solve makes a box's removal likelier (48 and 5,000 against 12 and
# 2,000, on 500 levels of the 30-minute model: median solution 48 moves against 42.5, 4.7
# boxes against 4.5, as many playable; benchmarks/README.md)
MAX_MENDS_SOLVED = 48
MEND_BUDGET = 5_000

Mend = tuple[int, int, int, np.ndarray]  # (row, col, new tile, the grid after)


def _longest_solution(grid: np.ndarray, mends: list[Mend]) -> TokenMove | None:
    """Of candidate mends, the ones the solver solves with the longest solution (ties left to
    the model); None when it solves none of those it tries."""
    if not mends:
        return None
    tried = mends[::max(1, -(-len(mends) // MAX_MENDS_SOLVED))]
    moves = [_solution_moves(m[3].astype(np.uint8).tobytes(), grid.shape) for m in tried]
    best = max(moves)
    return _from_afters(grid, [m for m, k in zip(tried, moves) if k == best]) if best else None


def _wall_openings(grid: np.ndarray, free: np.ndarray, board: sk.Board, reach) -> list[Mend]:
    """Inner walls beside the player's room, each opened to floor."""
    walls = np.zeros(len(board.walls), dtype=bool)
    for p in reach:
        for d in (-1, 1, -board.width, board.width):
            walls[p + d] = True
    out = []
    for y, x in zip(*np.nonzero(_on_grid(board, walls) & free & _inner(free) & (grid == sk.WALL))):
        after = grid.copy()
        after[y, x] = sk.FLOOR
        out.append((int(y), int(x), sk.FLOOR, after))
    return out


def _as_afters(grid: np.ndarray, move: TokenMove | None) -> list[Mend]:
    """A move's edits as mends."""
    out = []
    for edit in move.edits if move is not None else ():
        after = grid.copy()
        after[move.span] = edit.span_tokens
        out.append((edit.row, edit.col, edit.token, after))
    return out


def _from_afters(grid: np.ndarray, mends: list[Mend]) -> TokenMove:
    """One move from whole-grid mends: its span is every square any of them changes."""
    span = np.zeros(grid.shape, dtype=bool)
    for *_, after in mends:
        span |= after != grid
    return TokenMove(span, [Edit(y, x, int(t), after[span]) for y, x, t, after in mends])


def _pair_removal(grid: np.ndarray, free: np.ndarray, board: sk.Board, cost: list[list[int]],
                  goals: list[int], among: np.ndarray | None,
                  keep_matching: bool) -> TokenMove | None:
    """A box goes together with a goal, so the level stays well formed: a box on a goal with
    its goal, or a box off its goal (one of `among`, a padded flat mask, or any) with the nearest
    free goal whose loss leaves every other box a goal of its own (keep_matching) or simply the
    nearest. The model judges the box's square. The last box off a goal stays (without it there
    is no puzzle), and `among` limits the choice to boxes off their goals."""
    plain = int((grid == sk.BOX).sum())
    pairs = []
    for i, p in enumerate(board.boxes):
        y, x = _square(board, p)
        if not free[y, x] or (among is not None and not among[p]):
            continue
        if grid[y, x] == sk.BOX_GOAL and among is None:
            options = [goals.index(p)]
        elif grid[y, x] == sk.BOX and plain > 1:
            options = sorted(range(len(goals)), key=lambda j: cost[i][j])
        else:
            continue
        for j in options:
            gy, gx = _square(board, goals[j])
            if not free[gy, gx] or grid[gy, gx] not in (sk.GOAL, sk.BOX_GOAL) \
                    or (grid[gy, gx] == sk.BOX_GOAL and (gy, gx) != (y, x)):
                continue
            rest = [[c for k, c in enumerate(row) if k != j] for m, row in enumerate(cost) if m != i]
            if not keep_matching or sk.min_matching(rest) < sk.NO_MATCH:
                pairs.append(((y, x), (gy, gx)))
                break
    if not pairs:
        return None
    span = np.zeros_like(free)
    for box, goal in pairs:
        span[box] = span[goal] = True
    edits = []
    for box, goal in pairs:
        after = grid.copy()
        after[box] = after[goal] = sk.FLOOR
        edits.append(Edit(box[0], box[1], sk.FLOOR, after[span]))
    return TokenMove(span, edits)


def _box_relocation(grid: np.ndarray, free: np.ndarray, board: sk.Board, dist: list[float],
                    among: np.ndarray | None = None,
                    per_goal: list[list[int]] | None = None) -> TokenMove | None:
    """A box off its goal (one of `among`, a padded flat mask, or any) moves to another floor
    square from which a goal can be reached by pushing and where it is not frozen; with per_goal
    (sk.goal_costs), only where every box then has a goal of its own. The model judges the new
    square."""
    live = _on_grid(board, np.isfinite(dist))
    dead = [d == float("inf") for d in dist]
    targets = free & (grid == sk.FLOOR) & live
    moving = free & (grid == sk.BOX)
    if among is not None:
        moving &= _on_grid(board, among)
    boxes = set(board.boxes)
    mends = []
    for by, bx in zip(*np.nonzero(moving)):
        p = (by + 1) * board.width + bx + 1
        for ty, tx in zip(*np.nonzero(targets)):
            t = (ty + 1) * board.width + tx + 1
            after_boxes = boxes - {p} | {t}
            if t not in board.goals and sk.frozen(t, after_boxes, board, dead, set()):
                continue
            if per_goal is not None and sk.min_matching(
                    [[row[q] for row in per_goal] for q in sorted(after_boxes)]) >= sk.NO_MATCH:
                continue
            after = grid.copy()
            after[by, bx], after[ty, tx] = sk.FLOOR, sk.BOX
            mends.append((int(ty), int(tx), sk.BOX, after))
    return _from_afters(grid, mends) if mends else None


@lru_cache(maxsize=4096)  # every round asks again about the levels that are already done
def _proved_unsolvable(key: bytes, shape: tuple[int, int]) -> bool:
    grid = np.frombuffer(key, dtype=np.uint8).reshape(shape)
    return sk.solve(grid, SOLVER_BUDGET).status == sk.UNSOLVABLE


@lru_cache(maxsize=4096)
def _solution_moves(key: bytes, shape: tuple[int, int]) -> int:
    """Moves of the solver's solution within MEND_BUDGET states; 0 when it finds none."""
    grid = np.frombuffer(key, dtype=np.uint8).reshape(shape)
    if sk.check(grid) is not None:
        return 0
    return sk.solve(grid, MEND_BUDGET).moves


LODE_RUNNER_NOT_GOLD = (lr.EMPTY, lr.DIGGABLE, lr.SOLID, lr.BAR, lr.LADDER, lr.ENEMY)
# What the old square of gold moved into reach becomes, judged by the model with the new one.
# The runner cannot reach it, so whatever it becomes adds no way and takes none away. Left empty
# (as before), it holed walls: on 300 validation levels 2x2-pattern KL 0.256 after the rules
# against 0.231 as drawn; with the model's choice 0.249 (benchmarks/README.md, "Lode Runner
# again").
VACATED = (lr.EMPTY, lr.DIGGABLE, lr.SOLID, lr.BAR, lr.LADDER)


def lode_runner_move(tokens: np.ndarray, fixed: np.ndarray) -> TokenMove | None:
    """The next rule move for one Lode Runner level (tokens [H, W] in the LODE_RUNNER legend's
    order), or None. Reachable means as the playability check has it (digging allowed). A runner
    shut in with no empty square in reach, and gold to place, gets a brick beside his reach
    opened (to empty, ladder or bar). With no gold he can reach, an empty square he reaches gets
    gold. Otherwise the first gold he cannot reach moves to an empty square he reaches (the
    model judges where, and what its old square becomes: empty, brick, solid, bar or ladder), so
    the level keeps its gold; with no such square and no brick to open it becomes another tile."""
    grid = np.asarray(tokens).astype(np.int64)
    free = ~np.asarray(fixed, dtype=bool)
    if (grid == lr.PLAYER).sum() != 1:
        return None
    seen = lr.reachable(grid, dig=True)
    gold = grid == lr.GOLD
    spots = free & seen & (grid == lr.EMPTY)
    lost = np.argwhere(gold & ~seen & free)
    if not spots.any() and (len(lost) or not (gold & seen).any()):
        # the runner is shut in with no room for gold: a brick beside his reach opens
        beside = np.zeros_like(seen)
        beside[1:] |= seen[:-1]
        beside[:-1] |= seen[1:]
        beside[:, 1:] |= seen[:, :-1]
        beside[:, :-1] |= seen[:, 1:]
        opened = _move(grid, beside & free & np.isin(grid, (lr.SOLID, lr.DIGGABLE)),
                       {brick: (lr.EMPTY, lr.LADDER, lr.BAR) for brick in (lr.SOLID, lr.DIGGABLE)})
        if opened is not None or not len(lost):
            return opened
    if not (gold & seen).any():
        return _move(grid, spots, {lr.EMPTY: (lr.GOLD,)})
    if not len(lost):
        return None
    y, x = lost[0]
    if not spots.any():
        here = np.zeros_like(free)
        here[y, x] = True
        return _move(grid, here, {lr.GOLD: LODE_RUNNER_NOT_GOLD})
    span = spots.copy()
    span[y, x] = True
    edits = []
    for ty, tx in zip(*np.nonzero(spots)):
        for vacated in VACATED:
            after = grid.copy()
            after[y, x], after[ty, tx] = vacated, lr.GOLD
            edits.append(Edit(int(ty), int(tx), lr.GOLD, after[span], ((int(y), int(x), vacated),)))
    return TokenMove(span, edits)
