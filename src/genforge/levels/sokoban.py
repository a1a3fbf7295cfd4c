"""Sokoban rules: checking a level, replaying moves, and a push-level A* solver.

The solver searches over box configurations, not player steps: a state is the set of box squares
plus the top-left square the player can reach (all player positions in one reachable region are one
state). Pushes onto dead squares (from which no box can ever reach a goal) and pushes that freeze a
box off a goal are pruned (Junghanns and Schaeffer 2001, "Sokoban: enhancing general single-agent
search methods using domain knowledge"). The lower bound is the least-cost assignment of boxes to
distinct goals by push distance (admissible; for many boxes the sum of nearest-goal distances), so
A* finds push-optimal solutions. Hard levels get a second search from the solved position that
pulls boxes back (bidirectional search, as in YASS and Sokolution), which meets the first.
Everything is plain Python on flat indices of the level with a one-square wall border added, so
neighbours never leave the array.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np

from .corrals import pi_corral_pushes
from .formats import LevelError
from .pushing import MATCHING_MAX_BOXES, NO_MATCH, goal_costs, min_matching, push_distances, stuck
from .pushing import frozen  # noqa: F401  (the rules and tests reach it as sokoban.frozen)

WALL, FLOOR, PLAYER, PLAYER_GOAL, BOX, BOX_GOAL, GOAL = range(7)  # SOKOBAN legend order
MOVES = {"l": (0, -1), "u": (-1, 0), "r": (0, 1), "d": (1, 0)}
SOLVABLE, UNSOLVABLE, UNKNOWN = "solvable", "unsolvable", "unknown"


@dataclass
class Board:
    """A level as flat indices over the grid with a wall border (width = grid width + 2)."""

    width: int
    walls: bytes          # 1 where a wall (or the border) is
    goals: frozenset
    boxes: tuple          # sorted
    player: int

    def step(self, letter: str) -> int:
        dy, dx = MOVES[letter.lower()]
        return dy * self.width + dx


def _count(grid: np.ndarray, *tiles: int) -> int:
    return int(np.isin(grid, tiles).sum())


def board(grid: np.ndarray) -> Board:
    """Board of a SOKOBAN-legend grid; LevelError unless there is exactly one player."""
    if _count(grid, PLAYER, PLAYER_GOAL) != 1:
        raise LevelError(f"{_count(grid, PLAYER, PLAYER_GOAL)} players (need exactly one)")
    padded = np.pad(np.asarray(grid), 1, constant_values=WALL)
    flat = padded.reshape(-1)
    index = lambda *tiles: [int(i) for i in np.flatnonzero(np.isin(flat, tiles))]  # noqa: E731
    return Board(padded.shape[1], bytes((flat == WALL).astype(np.uint8)),
                 frozenset(index(GOAL, PLAYER_GOAL, BOX_GOAL)), tuple(index(BOX, BOX_GOAL)),
                 index(PLAYER, PLAYER_GOAL)[0])


def region(b: Board, start: int, blocked) -> list[int]:
    """Squares the player reaches from start without crossing walls or `blocked` squares."""
    seen = {start}
    todo = [start]
    w = b.width
    for p in todo:
        for q in (p - 1, p + 1, p - w, p + w):
            if q not in seen and not b.walls[q] and q not in blocked:
                seen.add(q)
                todo.append(q)
    return todo


def check(grid: np.ndarray) -> str | None:
    """Why a level is not a well-formed Sokoban level, or None: one player, as many boxes as goals
    (at least one, not all of them already on goals), and no path from the player off the edge
    of the grid."""
    try:
        b = board(grid)
    except LevelError as err:
        return str(err)
    if not b.boxes or len(b.boxes) != len(b.goals):
        return f"{len(b.boxes)} boxes but {len(b.goals)} goals"
    if set(b.boxes) <= set(b.goals):  # nothing to do is not a puzzle (repair can leave this)
        return "already solved: every box starts on a goal"
    h, w = np.asarray(grid).shape
    for p in region(b, b.player, ()):
        y, x = divmod(p, b.width)
        if y in (1, h) or x in (1, w):
            return "not closed: the player can walk off the edge"
    return None


def fill_outside(grid: np.ndarray) -> np.ndarray:
    """The level with every floor square the player can never reach made wall (XSB's outside
    spaces), so equal levels have equal grids and padding with wall changes nothing."""
    grid = np.array(grid, dtype=np.uint8)
    if _count(grid, PLAYER, PLAYER_GOAL) != 1:
        return grid
    b = board(grid)
    inside = np.zeros(len(b.walls), dtype=bool)
    inside[region(b, b.player, ())] = True
    inside = inside.reshape(-1, b.width)[1:-1, 1:-1]
    grid[(grid == FLOOR) & ~inside] = WALL
    return grid


def replay(grid: np.ndarray, moves: str, strict: bool = True) -> np.ndarray:
    """The grid after playing LURD moves; LevelError on an illegal move. Strict: lowercase letters
    must not push and uppercase ones must (lenient: case is ignored, as in cavepacker's .sol)."""
    b = board(grid)
    boxes, player = set(b.boxes), b.player
    for k, letter in enumerate(moves):
        if letter.lower() not in MOVES:
            raise LevelError(f"move {k + 1}: {letter!r} is not one of lurdLURD")
        step = b.step(letter)
        target = player + step
        if b.walls[target]:
            raise LevelError(f"move {k + 1} ({letter}) walks into a wall")
        pushing = target in boxes
        if strict and pushing != letter.isupper():
            raise LevelError(f"move {k + 1} ({letter}) {'pushes' if pushing else 'pushes nothing'}")
        if pushing:
            if b.walls[target + step] or target + step in boxes:
                raise LevelError(f"move {k + 1} ({letter}) pushes a box into a wall or box")
            boxes.remove(target)
            boxes.add(target + step)
        player = target
    return _render(b, boxes, player, np.asarray(grid).shape)


def _render(b: Board, boxes, player: int, shape) -> np.ndarray:
    """Board state back to a SOKOBAN grid of the given shape."""
    flat = np.where(np.frombuffer(b.walls, dtype=np.uint8) == 1, WALL, FLOOR).astype(np.uint8)
    goals = list(b.goals)
    flat[goals] = GOAL
    for p in boxes:
        flat[p] = BOX_GOAL if p in b.goals else BOX
    flat[player] = PLAYER_GOAL if player in b.goals else PLAYER
    return flat.reshape(-1, b.width)[1:-1, 1:-1].reshape(shape)


def is_solution(grid: np.ndarray, moves: str, strict: bool = False) -> bool:
    """Whether the moves are legal and end with every box on a goal."""
    try:
        final = replay(grid, moves, strict)
    except LevelError:
        return False
    return _count(final, BOX) == 0


@dataclass
class SolveResult:
    """What the solver found: status, LURD solution (lowercase moves, uppercase pushes), effort."""

    status: str                  # SOLVABLE, UNSOLVABLE or UNKNOWN (node budget spent)
    solution: str | None = None
    pushes: int = 0
    nodes: int = 0               # states expanded
    optimal: bool = False        # found at weight 1: no solution has fewer pushes

    @property
    def moves(self) -> int:
        return len(self.solution) if self.solution else 0


# (share of the budget, weight): A* first, then the search goes on weighted (states are not
# redone) and from both ends, so a level solved early gets its fewest pushes and a hard one a
# solution at all
SCHEDULE = ((0.25, 1.0), (1.0, 3.0))
BACKWARD_AFTER = 0.25  # share of the budget the forward search has alone


def solve(grid: np.ndarray, node_budget: int = 200_000, weight: float | None = None,
          pi_corrals: bool = True, schedule=SCHEDULE,
          backward: float | None = BACKWARD_AFTER) -> SolveResult:
    """A* over pushes; UNKNOWN when more than node_budget states would be expanded. The lower
    bound is the least-cost assignment of boxes to distinct goals by push distance, which also
    prunes states where no such assignment exists (bipartite deadlock); above MATCHING_MAX_BOXES
    boxes it is the cheaper sum of each box's distance to its nearest goal. Weight w > 1 is
    weighted A* (Pohl 1970): far fewer states, solutions at most w times the fewest pushes.
    schedule gives the weight by the share of the budget spent (the open lists are re-ranked when
    it changes); a given weight holds throughout.

    Once `backward` of the budget is spent (None: never), a second search starts from the solved
    position (one start per player area), pulling boxes back towards the squares they start on,
    with the same bound and weight towards those squares; each expansion goes to the search with
    fewer open states (Pohl 1971's cardinality rule), and they meet when one generates a state the
    other has seen: the solution is the pushes to it, then the pulls back from it played as
    pushes. Levels whose last pushes are the hard part (dense goal rooms, where the forward search
    drowns in orderings of the last boxes) fall to the backward search. `optimal` says whether
    the solution was found by the forward search alone at weight 1 (then its pushes are the
    fewest). Pruning (dead squares, frozen boxes, the assignment, PI-corrals; backwards, squares
    no box can be pushed to and the assignment to start squares) never removes every solution,
    so either search running out of states proves the level UNSOLVABLE whatever the weight."""
    reason = check(grid)
    if reason is not None:
        raise LevelError(reason)
    b = board(grid)
    forward = _Frontier(b, b.goals, [b.player], pi_corrals)
    if forward.bound(b.boxes) >= NO_MATCH:
        return SolveResult(UNSOLVABLE)
    phases = [(node_budget, weight)] if weight is not None else [
        (int(share * node_budget), w_) for share, w_ in schedule]
    (phase_end, first_weight), phases = phases[0], phases[1:]
    forward.reweigh(first_weight)
    back, nodes = None, 0
    while True:
        side = forward if back is None or len(forward.open) <= len(back.open) else back
        other = back if side is forward else forward
        state = side.pop()
        if state is None:
            return SolveResult(UNSOLVABLE, nodes=nodes)
        g, key, reach = state
        if side is forward and b.goals.issuperset(key[0]):
            return SolveResult(SOLVABLE, _moves(b, forward.path(key)), g, nodes,
                               forward.weight == 1.0 and back is None)
        if other is not None and other.seen(key):
            return _met(b, forward, back, key, nodes)
        nodes += 1
        if nodes > node_budget:
            return SolveResult(UNKNOWN, nodes=nodes - 1)
        if nodes > phase_end and phases:  # the next weight
            (phase_end, weight_now), phases = phases[0], phases[1:]
            for s in (forward, back):
                if s is not None:
                    s.reweigh(weight_now)
        if back is None and backward is not None and nodes > backward * node_budget:
            back = other = _Frontier(b, frozenset(b.boxes), None, False, forward.weight)
        for moved, player, move in side.successors(key[0], reach):
            h = side.bound(moved)
            if h >= NO_MATCH:
                continue
            if back is not None:  # look for the meeting as states are made, not when expanded
                seen = (moved, min(region(b, player, set(moved))))
                side.generated.setdefault(seen, (key, move))
                if other.seen(seen):
                    return _met(b, forward, back, seen, nodes)
            side.add(g + 1, h, moved, player, key, move)


class _Frontier:
    """One direction of the solver's search: forward pushes boxes towards the goals, backward
    pulls them from the goals towards their start squares (`targets`). Holds the open list
    (f, then deepest first), the states expanded with the move that reached each, the states
    generated while both directions run, and the bound towards its targets."""

    def __init__(self, b: Board, targets: frozenset, players, pi_corrals: bool,
                 weight: float = 1.0):
        self.b, self.pi_corrals, self.weight = b, pi_corrals, weight
        self.forward = players is not None
        backwards = not self.forward
        dist = push_distances(b, targets, backwards)
        self.dead = [d == float("inf") for d in dist]
        self.costs = (goal_costs(b, targets, backwards) if len(targets) <= MATCHING_MAX_BOXES
                      else None)
        self.dist, self.bounds = dist, {}
        self.open, self.expanded, self.generated, self.counter = [], {}, {}, 0
        boxes = b.boxes if self.forward else tuple(sorted(b.goals))
        if players is None:  # backward: the player may end anywhere, one start per area
            players, covered = [], set(boxes)
            for q in range(len(b.walls)):
                if not b.walls[q] and q not in covered:
                    players.append(q)
                    covered.update(region(b, q, covered))
        for player in players:
            self.add(0, self.bound(boxes), boxes, player, None, None)

    def bound(self, boxes: tuple) -> int:  # cached: many states share one box configuration
        if boxes not in self.bounds:
            self.bounds[boxes] = (min_matching([[row[p] for row in self.costs] for p in boxes])
                                  if self.costs else sum(self.dist[p] for p in boxes))
        return self.bounds[boxes]

    def add(self, g: int, h: int, boxes: tuple, player: int, parent, move) -> None:
        self.counter += 1
        heapq.heappush(self.open, (g + self.weight * h, -g, self.counter, h, boxes, player,
                                   parent, move))

    def reweigh(self, weight: float) -> None:
        self.weight = weight
        self.open = [(-d + weight * h, d, c, h, *rest) for _, d, c, h, *rest in self.open]
        heapq.heapify(self.open)

    def pop(self):
        """The next open state not yet expanded, now recorded as expanded: (pushes or pulls so
        far, key, the player's reach), or None when nothing is open. A state's key is its boxes
        and the top-left square of the player's area."""
        while self.open:
            _, depth, _, _, boxes, player, parent, move = heapq.heappop(self.open)
            reach = region(self.b, player, set(boxes))
            key = (boxes, min(reach))
            if key not in self.expanded:
                self.expanded[key] = (parent, move)
                return -depth, key, set(reach)
        return None

    def seen(self, key) -> bool:
        return key in self.expanded or key in self.generated

    def path(self, key) -> list:
        """The pushes or pulls (box square, direction) from a start to a seen state."""
        moves = []
        parent, move = self.expanded[key] if key in self.expanded else self.generated[key]
        while parent is not None:
            moves.append(move)
            parent, move = self.expanded[parent]
        return moves[::-1]

    def successors(self, boxes: tuple, reach: set):
        """(boxes after, player after, (box, direction)) for each push forward (each pull
        backward) the pruning keeps; the bound's own pruning is the caller's."""
        b, w, dead, box_set = self.b, self.b.width, self.dead, set(boxes)
        only = (pi_corral_pushes(b, reach, box_set, dead)
                if self.forward and self.pi_corrals else None)
        for p in boxes:
            for d in (-1, 1, -w, w):
                t = p + d
                if b.walls[t] or t in box_set or dead[t]:
                    continue
                if self.forward:
                    if p - d not in reach or (only is not None and (p, d) not in only):
                        continue
                    new = box_set - {p} | {t}
                    if not stuck(t, new, b, dead, b.goals):
                        yield tuple(sorted(new)), p, (p, d)
                elif t in reach and not b.walls[t + d] and t + d not in box_set:
                    yield tuple(sorted(box_set - {p} | {t})), t + d, (p, d)  # the player backs off


def _met(b: Board, forward: _Frontier, back: _Frontier, key, nodes: int) -> SolveResult:
    """The solution through a state both searches reached: the pushes to it, then each pull of
    the backward search, last first, played as a push (a pull of p to p + d undone pushes p + d
    back by -d)."""
    pushes = forward.path(key) + [(p + d, -d) for p, d in reversed(back.path(key))]
    return SolveResult(SOLVABLE, _moves(b, pushes), len(pushes), nodes, False)


def _moves(b: Board, pushes: list) -> str:
    """LURD string for a list of pushes (box square, direction): walk to each push, then push."""
    letters = {b.step(c): c for c in "lurd"}
    boxes, player, out = set(b.boxes), b.player, []
    for p, d in pushes:
        out.append(_walk(b, player, p - d, boxes, letters))
        out.append(letters[d].upper())
        boxes.remove(p)
        boxes.add(p + d)
        player = p
    return "".join(out)


def _walk(b: Board, start: int, end: int, boxes, letters) -> str:
    """Shortest player path (lowercase letters) from start to end around walls and boxes."""
    back = {start: None}
    todo = [start]
    for p in todo:
        if p == end:
            break
        for d in letters:
            q = p + d
            if q not in back and not b.walls[q] and q not in boxes:
                back[q] = p
                todo.append(q)
    path = []
    while end != start:
        prev = back[end]
        path.append(letters[end - prev])
        end = prev
    return "".join(reversed(path))
