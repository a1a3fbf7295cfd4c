"""What the Sokoban solver (levels.sokoban) knows about pushing boxes, on its boards' flat
indices: how far a box is from a set of squares by pushes or pulls (dead squares are the ones at
infinity), the least-cost assignment of boxes to distinct goals (the solver's lower bound, and a
deadlock where none exists), and boxes frozen against walls and each other (Junghanns and
Schaeffer 2001). Kept apart so the solver's module stays small; the rules (levels.rules) use
them too, through levels.sokoban. `b` is always a levels.sokoban.Board.
"""
from __future__ import annotations


def push_distances(b, goals=None, backwards: bool = False) -> list[float]:
    """Per square, the fewest pushes that bring a box from it to one of `goals` (default: any
    goal; inf: never); backwards, the fewest pulls that bring it back to one of them (the pushes
    from one of them to the square). Found by moving a box the other way, breadth first: a pull
    needs two free squares behind the box, a push one free square before it."""
    w, inf = b.width, float("inf")
    dist = [inf] * len(b.walls)
    todo = list(b.goals if goals is None else goals)
    for g in todo:
        dist[g] = 0
    for p in todo:
        for d in (-1, 1, -w, w):
            q = p + d
            if not b.walls[q] and not b.walls[p - d if backwards else q + d] and dist[q] == inf:
                dist[q] = dist[p] + 1
                todo.append(q)
    return dist


NO_MATCH = 10 ** 6  # stands for an impossible box-goal pair in the assignment
MATCHING_MAX_BOXES = 20  # the nearest-goal sum above this: dense levels (9+ boxes) need the assignment


def goal_costs(b, goals=None, backwards: bool = False) -> list[list[int]]:
    """Per goal (sorted; default: the level's), the pushes (backwards: pulls) that bring a box
    from each square to that goal, NO_MATCH where none can: the cost table of the assignment."""
    return [[NO_MATCH if d == float("inf") else d for d in push_distances(b, [g], backwards)]
            for g in sorted(b.goals if goals is None else goals)]


def min_matching(cost: list[list[int]]) -> int:
    """Least total cost of giving each row its own column (Hungarian method with potentials,
    O(n^3); Kuhn 1955, Munkres 1957). NO_MATCH or more means no assignment avoids a forbidden pair."""
    n = len(cost)
    u, v, match, way = [0] * (n + 1), [0] * (n + 1), [0] * (n + 1), [0] * (n + 1)
    for i in range(1, n + 1):
        match[0], j0 = i, 0
        minv, used = [float("inf")] * (n + 1), [False] * (n + 1)
        while True:
            used[j0] = True
            i0, delta, j1 = match[j0], float("inf"), 0
            row = cost[i0 - 1]
            for j in range(1, n + 1):
                if not used[j]:
                    cur = row[j - 1] - u[i0] - v[j]
                    if cur < minv[j]:
                        minv[j], way[j] = cur, j0
                    if minv[j] < delta:
                        delta, j1 = minv[j], j
            for j in range(n + 1):
                if used[j]:
                    u[match[j]] += delta
                    v[j] -= delta
                else:
                    minv[j] -= delta
            j0 = j1
            if match[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            match[j0] = match[j1]
            j0 = j1
    return -v[0]


def frozen(p: int, boxes, b, dead, stopped: set) -> bool:
    """Whether the box on p can never move again, taking boxes in `stopped` as walls."""
    stopped.add(p)
    w = b.width

    def blocked(a: int, c: int) -> bool:  # along one axis, with neighbours a and c
        if b.walls[a] or b.walls[c] or a in stopped or c in stopped:
            return True
        if dead[a] and dead[c]:
            return True
        return ((a in boxes and frozen(a, boxes, b, dead, stopped))
                or (c in boxes and frozen(c, boxes, b, dead, stopped)))

    return blocked(p - 1, p + 1) and blocked(p - w, p + w)


def stuck(t: int, boxes: set, b, dead, goals) -> bool:
    """Whether a box just pushed to t leaves a box frozen off a goal: t itself, or, when t is
    frozen on a goal (so for good a wall), a box beside it that t now freezes."""
    if not frozen(t, boxes, b, dead, set()):
        return False
    if t not in goals:
        return True
    return any(n in boxes and n not in goals and frozen(n, boxes, b, dead, {t})
               for n in (t - 1, t + 1, t - b.width, t + b.width))
