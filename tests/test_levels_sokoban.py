"""Sokoban rules: shipped solutions replay, the solver agrees with a brute-force search, repair."""
import time
from pathlib import Path

import numpy as np
import pytest

from genforge.levels import sokoban as sk
from genforge.levels import sources
from genforge.levels.baseline import random_sokoban
from genforge.levels.formats import SOKOBAN, LevelError, parse_grid, read_xsb
from genforge.levels.repair import repair_sokoban

FIXTURES = Path(__file__).parent / "fixtures" / "levels"


def level(text: str) -> np.ndarray:
    return sk.fill_outside(parse_grid(text, SOKOBAN))


def brute_force(grid: np.ndarray) -> bool:
    """Breadth-first search over every (player, boxes) state: slow, simple, obviously right."""
    b = sk.board(grid)
    start = (b.player, frozenset(b.boxes))
    seen, todo = {start}, [start]
    for player, boxes in todo:
        if boxes <= b.goals:
            return True
        for d in (-1, 1, -b.width, b.width):
            q = player + d
            if b.walls[q]:
                continue
            if q in boxes:
                if b.walls[q + d] or q + d in boxes:
                    continue
                state = (q, boxes - {q} | {q + d})
            else:
                state = (q, boxes)
            if state not in seen:
                seen.add(state)
                todo.append(state)
    return False


def test_fixture_levels_solve_with_valid_lurd():
    for xsb in read_xsb((FIXTURES / "sokoban" / "tiny.xsb").read_text()):
        grid = level(xsb.board)
        result = sk.solve(grid)
        assert result.status == sk.SOLVABLE, xsb.title
        assert sk.is_solution(grid, result.solution, strict=True)
        assert result.pushes == sum(c.isupper() for c in result.solution)
    assert sk.solve(level("#####\n#@$.#\n#####")).solution == "R"


def test_replay_checks_case_and_walls():
    grid = level("######\n#@ $.#\n######")
    assert sk.is_solution(grid, "rR", strict=True)
    assert not sk.is_solution(grid, "rr", strict=True) and sk.is_solution(grid, "rr")
    with pytest.raises(LevelError, match="wall"):
        sk.replay(grid, "u")
    final = sk.replay(grid, "rR")
    assert (final == sk.BOX_GOAL).sum() == 1 and (final == sk.PLAYER).sum() == 1


@pytest.mark.parametrize("backward", [sk.BACKWARD_AFTER, 0.0])
def test_solver_agrees_with_brute_force_on_random_levels(backward):
    """backward=0: the backward search joins after the first state, so its pulls, the meeting
    and its own proofs of unsolvability (running out of states) are what is checked."""
    levels = random_sokoban(60, shape=(6, 6), boxes=2, wall_share=0.15, seed=3)
    verdicts, checked = set(), 0
    for grid in levels:
        if sk.check(grid) is not None:
            continue
        checked += 1
        result = sk.solve(grid, node_budget=50_000, backward=backward)
        assert result.status != sk.UNKNOWN
        assert (result.status == sk.SOLVABLE) == brute_force(grid)
        if result.solution:
            assert sk.is_solution(grid, result.solution, strict=True)
            assert result.pushes == sum(c.isupper() for c in result.solution)
        verdicts.add(result.status)
    assert verdicts == {sk.SOLVABLE, sk.UNSOLVABLE} and checked >= 30


@pytest.mark.parametrize("seed", [5, 11])
def test_pruning_keeps_every_solution_with_three_boxes(seed):
    """PI-corrals, freezes and the weighted phase never turn a solvable level away (three boxes
    make corrals and frozen groups common), and an A*-phase solution has the fewest pushes."""
    levels = random_sokoban(40, shape=(6, 7), boxes=3, wall_share=0.12, seed=seed)
    verdicts = set()
    for grid in levels:
        if sk.check(grid) is not None:
            continue
        result = sk.solve(grid, node_budget=50_000)
        assert result.status != sk.UNKNOWN
        assert (result.status == sk.SOLVABLE) == brute_force(grid)
        plain = sk.solve(grid, node_budget=50_000, weight=1.0, pi_corrals=False, backward=None)
        assert plain.status == result.status and plain.optimal == (plain.status == sk.SOLVABLE)
        if result.optimal:
            assert result.pushes == plain.pushes
        both_ways = sk.solve(grid, node_budget=50_000, backward=0.0)
        assert both_ways.status == result.status and not both_ways.optimal
        if both_ways.solution:
            assert sk.is_solution(grid, both_ways.solution, strict=True)
        verdicts.add(result.status)
    assert verdicts == {sk.SOLVABLE, sk.UNSOLVABLE}


def test_backward_search_solves_a_level_the_forward_search_gives_up_on():
    """GRIGoRusha's #43 (public domain; read from the installed cavepacker-data): searching only
    forward, the solver spends its 20,000 states; with the backward search joining after a
    quarter of them, the two meet and the joined moves solve the level."""
    try:
        levels, _ = sources.load_sokoban(sets="gri")
    except Exception as err:
        pytest.skip(str(err))
    grid = next(lv.grid for lv in levels if Path(lv.name).stem == "gri0043")
    assert sk.solve(grid, 20_000, backward=None).status == sk.UNKNOWN
    result = sk.solve(grid, 20_000)
    assert result.status == sk.SOLVABLE and not result.optimal and result.nodes <= 20_000
    assert sk.is_solution(grid, result.solution, strict=True)


def test_proves_small_levels_unsolvable():
    boxes_in_line = level("#######\n#@    #\n# $$  #\n#..   #\n#######")  # solvable: control
    assert sk.solve(boxes_in_line).status == sk.SOLVABLE
    frozen_pair = level("######\n#  ..#\n#@$$ #\n#    #\n######")
    result = sk.solve(level("######\n#.  .#\n#@$$ #\n######"))
    assert result.status == sk.UNSOLVABLE and not brute_force(level("######\n#.  .#\n#@$$ #\n######"))
    assert sk.solve(frozen_pair).status == (sk.SOLVABLE if brute_force(frozen_pair) else sk.UNSOLVABLE)
    assert sk.solve(level("#####\n#@$ #\n#  .#\n#####")).status == sk.UNSOLVABLE  # box on a wall edge


def test_unknown_when_the_budget_is_spent():
    grid = level("#######\n#     #\n# .$. #\n# $@  #\n#     #\n#######")
    result = sk.solve(grid, node_budget=1)
    assert result.status == sk.UNKNOWN and result.solution is None


def test_check_reports_malformed_levels():
    reasons = [sk.check(level(x.board)) for x in
               read_xsb((FIXTURES / "sokoban" / "malformed.xsb").read_text())]
    assert ["players" in reasons[0], "players" in reasons[1], "boxes" in reasons[2],
            "not closed" in reasons[3]] == [True] * 4


def test_fill_outside_walls_unreachable_floor():
    grid = level("  ###\n### #\n#@$.#\n#####")
    assert grid[0, 0] == grid[0, 1] == sk.WALL and grid[1, 3] == sk.FLOOR  # outside vs inside


def test_repair():
    broken = parse_grid("#@@$$.#\n# $   #\n  ..   \n#######", SOKOBAN)
    fixed, changed = repair_sokoban(broken)
    assert changed and sk.check(fixed) is None
    assert (fixed[0] == sk.WALL).all() and (fixed[:, -1] == sk.WALL).all()
    assert not repair_sokoban(fixed)[1]
    no_player, changed = repair_sokoban(level("#####\n# $.#\n#####"))
    assert changed and (no_player == sk.PLAYER).sum() == 1


def test_repair_takes_the_rules_solver_driven_steps_keeping_boxes():
    boxes = lambda g: int(np.isin(g, (sk.BOX, sk.BOX_GOAL)).sum())  # noqa: E731
    # a box frozen in a corner beside another: it moves, the level keeps both boxes, and solves
    frozen = level("#######\n#$$  .#\n#    .#\n#  @  #\n#######")
    fixed, changed = repair_sokoban(frozen)
    assert changed and boxes(fixed) == 2 and sk.solve(fixed, 20_000).status == sk.SOLVABLE
    # one box the solver proves stuck: moved (or a wall opened), never deleted, and solvable
    stuck = level("######\n#.   #\n##$###\n# @  #\n######")
    fixed, changed = repair_sokoban(stuck)
    assert changed and boxes(fixed) == 1 and sk.solve(fixed, 20_000).status == sk.SOLVABLE
    assert not repair_sokoban(fixed)[1]  # a repaired level needs no more repair
    # without the rules, only the structure is mended
    assert not repair_sokoban(stuck, rules=False)[1]


def test_shipped_solutions_replay_and_small_levels_solve():
    try:
        levels, _ = sources.load_sokoban(sets="all")
    except Exception as err:
        pytest.skip(str(err))
    shipped = [lv for lv in levels if lv.solution]
    assert len(shipped) > 900
    assert all(sk.is_solution(lv.grid, lv.solution) for lv in shipped[::10])
    small = [lv for lv in levels if max(lv.grid.shape) <= 10
             and (lv.grid == sk.BOX).sum() + (lv.grid == sk.BOX_GOAL).sum() <= 3][:25]
    start = time.perf_counter()
    for lv in small:
        result = sk.solve(lv.grid, node_budget=20_000)
        assert result.status == sk.SOLVABLE, lv.name
        assert sk.is_solution(lv.grid, result.solution, strict=True)
        assert len(result.solution) <= 3 * len(lv.solution)  # same order as the shipped one
    assert time.perf_counter() - start < 20


def test_min_matching():
    assert sk.min_matching([[4, 1, 3], [2, 0, 5], [3, 2, 2]]) == 5
    assert sk.min_matching([[7]]) == 7
    blocked = [[1, sk.NO_MATCH], [2, sk.NO_MATCH]]  # both boxes can only reach the first goal
    assert sk.min_matching(blocked) >= sk.NO_MATCH


def test_a_level_with_every_box_on_a_goal_is_not_playable():
    from genforge.levels.formats import SOKOBAN, parse_grid
    from genforge.metrics.levels import playability
    done = parse_grid("#####\n#@*.#\n#  $#\n#####", SOKOBAN)
    assert sk.check(done) is None  # one box still off its goal
    solved = parse_grid("####\n#@*#\n####", SOKOBAN)
    assert sk.check(solved) == "already solved: every box starts on a goal"
    assert playability([solved], SOKOBAN)[0] == {"playable": False, "status": "malformed",
                                                 "length": None}
