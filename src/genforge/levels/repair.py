"""Repair of generated levels without a model: the smallest edits that make a level well
formed, then the solver-driven steps of the rules (levels.rules) with no model to choose.

Repair is an option for reporting ("how many samples needed fixing"), never hidden inside a
metric: a repaired level is a different level. Edits are deterministic (row-major order decides
which of several extra players, boxes or goals goes, and which of a rule's edits is taken), so
the same sample always repairs the same way.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import lode_runner as lr
from . import sokoban as sk
from .formats import LODE_RUNNER, SOKOBAN, Legend
from .rules import lode_runner_move, sokoban_move

RULE_ROUNDS = 64  # rule moves per level at most, as the sampler's --rules


def follow_rules(grid: np.ndarray, move_of: Callable, rounds: int = RULE_ROUNDS) -> np.ndarray:
    """The level after the rules' moves, each round taking the first edit offered (row-major;
    for an unsolvable Sokoban level, one of the mends with the longest solution): a frozen box
    moves rather than goes, a walled-in player gets a wall opened, gold out of reach moves."""
    g = np.asarray(grid).astype(np.int64)
    fixed = np.zeros(g.shape, dtype=bool)
    for _ in range(rounds):
        move = move_of(g, fixed)
        if move is None or not move.edits:
            break
        g[move.span] = move.edits[0].span_tokens
    return g.astype(np.uint8)


def repair_sokoban(grid: np.ndarray, rules: bool = True) -> tuple[np.ndarray, bool]:
    """(repaired grid, whether it changed): a wall all round, exactly one player, as many boxes
    as goals. Extra players, boxes and goals are removed (keeping what lies under them); a missing
    player goes on the first free floor square. With rules, then follow_rules: no box on a dead
    square or frozen, every box a goal of its own, a first push, and no level the solver proves
    unsolvable (boxes moved before any is taken away)."""
    old = np.asarray(grid, dtype=np.uint8)
    g = old.copy()
    g[0, :] = g[-1, :] = g[:, 0] = g[:, -1] = sk.WALL
    players = list(zip(*np.nonzero(np.isin(g, (sk.PLAYER, sk.PLAYER_GOAL)))))
    for y, x in players[1:]:
        g[y, x] = sk.GOAL if g[y, x] == sk.PLAYER_GOAL else sk.FLOOR
    if not players:
        free = np.argwhere(g == sk.FLOOR)
        free = free if len(free) else np.argwhere(g == sk.GOAL)
        if len(free):
            y, x = free[0]
            g[y, x] = sk.PLAYER if g[y, x] == sk.FLOOR else sk.PLAYER_GOAL
    boxes = np.argwhere(g == sk.BOX)
    goals = np.argwhere(np.isin(g, (sk.GOAL, sk.PLAYER_GOAL)))
    extra = len(boxes) - len(goals)
    for y, x in boxes[len(boxes) - extra:] if extra > 0 else []:  # drop the last plain boxes
        g[y, x] = sk.FLOOR
    for y, x in goals[len(goals) + extra:] if extra < 0 else []:  # or the last free goals
        g[y, x] = sk.PLAYER if g[y, x] == sk.PLAYER_GOAL else sk.FLOOR
    if rules and np.isin(g, (sk.PLAYER, sk.PLAYER_GOAL)).sum() == 1:
        g = follow_rules(g, sokoban_move)
    return g, not np.array_equal(g, old)


def repair_lode_runner(grid: np.ndarray, rules: bool = True) -> tuple[np.ndarray, bool]:
    """(repaired grid, changed): exactly one player spawn; a missing one goes on the first empty
    square from the top-left, extra ones become empty. With rules, then follow_rules: gold the
    runner cannot reach moves to where he can."""
    old = np.asarray(grid, dtype=np.uint8)
    g = old.copy()
    spawns = np.argwhere(g == lr.PLAYER)
    for y, x in spawns[1:]:
        g[y, x] = lr.EMPTY
    if not len(spawns):
        free = np.argwhere(g == lr.EMPTY)
        if len(free):
            g[tuple(free[0])] = lr.PLAYER
    if rules:
        g = follow_rules(g, lode_runner_move)
    return g, not np.array_equal(g, old)


def repair(grid: np.ndarray, legend: Legend) -> tuple[np.ndarray, bool]:
    """Repair for the legend's game; levels of other games are returned unchanged."""
    if legend.chars == SOKOBAN.chars:
        return repair_sokoban(grid)
    if legend.chars == LODE_RUNNER.chars:
        return repair_lode_runner(grid)
    return np.asarray(grid, dtype=np.uint8), False
