"""PI-corral pruning for the Sokoban solver (levels.sokoban): the pushes a search state may
skip because some closed-off area must be opened first, with the argument why no solution is lost.

Works on a levels.sokoban.Board `b` (its flat indices, width, walls and goals); kept apart so
the solver's module stays small.
"""
from __future__ import annotations


def pi_corral_pushes(b, reach: set, boxes: set, dead) -> set | None:
    """The pushes into the PI-corral with the fewest of them, or None when there is no PI-corral
    that still needs work (the pruning of Brian Damgaard's YASS solver).

    A corral is a connected area of free squares the player cannot reach; its barrier is every
    box beside it. It needs work while it holds a goal or a barrier box stands off a goal: then
    every solution pushes a barrier box before anything else can change there, and here none can
    be pushed except into the corral (other pushes blocked by walls, dead squares or barrier
    boxes, which stay put until that first push) and the player can already reach every square
    those pushes start from. The solution's pushes before its first barrier push touch neither the
    corral nor its barrier, so that push can come first at the same push count: keeping only
    these pushes loses no solution and no optimal one. An empty set means no push can ever open
    the corral: a deadlock."""
    w, walls = b.width, b.walls
    seen: set = set()
    best = None
    for p in boxes:
        for q in (p - 1, p + 1, p - w, p + w):
            if walls[q] or q in boxes or q in reach or q in seen:
                continue
            area, todo = {q}, [q]
            for x in todo:  # nothing here touches the player's area, or it would be reached
                for y in (x - 1, x + 1, x - w, x + w):
                    if not walls[y] and y not in boxes and y not in area:
                        area.add(y)
                        todo.append(y)
            seen |= area
            pushes = _corral_pushes(b, area, reach, boxes, dead)
            if pushes is not None and (best is None or len(pushes) < len(best)):
                best = pushes
    return best


def _corral_pushes(b, area: set, reach: set, boxes: set, dead) -> set | None:
    """The (box, direction) pushes into a corral when it is a PI-corral that needs work."""
    w, walls = b.width, b.walls
    barrier = {x + e for x in area for e in (-1, 1, -w, w) if x + e in boxes}
    if not (any(x in b.goals for x in area) or any(p not in b.goals for p in barrier)):
        return None
    pushes = set()
    for p in barrier:
        for d in (-1, 1, -w, w):
            s, t = p - d, p + d
            if walls[s] or s in barrier or s in area:  # no push this way before the first one
                continue
            if t in area:
                if dead[t]:
                    continue
                if s not in reach:  # the player cannot make it yet: not a PI-corral
                    return None
                pushes.add((p, d))
            elif not (walls[t] or dead[t] or t in barrier):
                return None  # a barrier box may go elsewhere: not an I-corral
    return pushes
