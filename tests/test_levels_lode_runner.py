"""Lode Runner reachability on hand-made levels (VGLC characters), and its repair."""
import numpy as np
import pytest

from genforge.levels import lode_runner as lr
from genforge.levels import sources
from genforge.levels.formats import LODE_RUNNER, LevelError, parse_grid
from genforge.levels.repair import repair_lode_runner


def grid(text: str) -> np.ndarray:
    return parse_grid(text, LODE_RUNNER)


ISLAND = grid("........\n..G.....\n..BB....\n........\nM.......\nBBBBBBBB")
BAR = grid("M...-----G\nBBBB.....B\nBBBBBBBBBB")
NO_BAR = grid("M........G\nBBBB.....B\nBBBBBBBBBB")
FALL = grid("M.....\nBBB...\n......\n.....G\nBBBBBB")
FALL_UP = grid(".....G\nBBB...\n......\nM.....\nBBBBBB")
LADDER = grid("....G.\n....#.\nM...#.\nBBBBBB")
DIG = grid("M.....\nbbbbbb\n..G...\nBBBBBB")
NO_DIG = grid("M.....\nBBBBBB\n..G...\nBBBBBB")
TWO_WIDE = grid("M.......\nbbbbbbbb\nbbbbbbbb\n..G.....\nBBBBBBBB")


@pytest.mark.parametrize("level, plain, digging", [
    (ISLAND, False, False), (BAR, True, True), (NO_BAR, False, False), (FALL, True, True),
    (FALL_UP, False, False), (LADDER, True, True), (DIG, False, True), (NO_DIG, False, False),
    (TWO_WIDE, False, True)])
def test_gold_reachability(level, plain, digging):
    assert lr.playable(level, dig=False) == plain
    assert lr.playable(level, dig=True) == digging


def test_gold_counts_and_reachable_squares():
    level = grid("G.M..G\nBBBBBB\n.G....\nBBBBBB")
    assert lr.gold_reached(level) == (2, 3)
    reach = lr.reachable(level)
    assert reach[0].all() and not reach[2].any()


def test_falling_catches_a_bar():
    level = grid("M.....\nBB....\n..----\n......\n......\nBBBBBB")
    reach = lr.reachable(level)
    assert reach[2, 2] and reach[2, 5] and reach[4, 0]  # held by the bar, along it, let go


def test_malformed_levels():
    assert "spawns" in lr.check(grid("..G\nBBB"))
    assert lr.check(grid("M..\nBBB")) == "no gold"
    with pytest.raises(LevelError):
        lr.reachable(grid("M.M\nBBB"))


def test_repair_one_spawn():
    fixed, changed = repair_lode_runner(grid("M.M\n.G.\nBBB"))
    assert changed and (fixed == lr.PLAYER).sum() == 1 and fixed[0, 0] == lr.PLAYER
    fixed, changed = repair_lode_runner(grid("..G\nBBB"))
    assert changed and fixed[0, 0] == lr.PLAYER
    assert not repair_lode_runner(fixed)[1]


def test_shipped_levels_mostly_playable_with_digging():
    try:
        levels, _ = sources.load_lode_runner()
    except Exception as err:
        pytest.skip(str(err))
    playable = [lr.playable(lv.grid, dig=True) for lv in levels[::4]]
    plain = [lr.playable(lv.grid, dig=False) for lv in levels[::4]]
    assert sum(playable) > sum(plain) and sum(playable) / len(playable) > 0.4
