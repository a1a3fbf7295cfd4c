"""Lode Runner reachability on hand-made levels (VGLC characters), and its repair."""
import numpy as np
import pytest

from genforge.levels import lode_runner as lr
from genforge.levels import sources
from genforge.levels.formats import LODE_RUNNER, LevelError, parse_grid, read_kgoldrunner
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


def test_repair_moves_gold_out_of_reach_and_keeps_it():
    sealed = grid("M.G..\nBBBBB\nBGB..\nBBBBB")  # the lower gold is sealed in solid rock
    assert not lr.playable(sealed)
    fixed, changed = repair_lode_runner(sealed)
    assert changed and lr.playable(fixed) and (fixed == lr.GOLD).sum() == 2
    assert fixed[2, 1] == lr.EMPTY
    assert not repair_lode_runner(sealed, rules=False)[1]  # the structure alone was fine


# Rules, one fixture each: (level, playable without digging, with digging, digging while falling).
FALL_PAST_GOLD = grid("M.\nB.\nBG\nB.\nBB")          # gold holds nothing up: taken while falling
LADDER_TOP = grid("..G\n..#\nM.#\nBBB")               # climb out of the top of a ladder
BOTTOM_EDGE = grid("M..\n...\n.G.")                    # the bottom edge is a floor
SEALED = grid("M...\nBBBB\nBGBB\nBBBB")               # gold in concrete
NOT_UNDER_LADDER = grid("M.#.\nBBbB\n..G.\nBBBB")     # a brick under a ladder cannot be dug
UNDER_EMPTY = grid("M...\nBBbB\n..G.\nBBBB")          # ... under empty space it can
THREE_LAYERS = grid("M.......\nbbbbbbbb\nbbbbbbbb\nbbbbbbbb\n..G.....\nBBBBBBBB")
LADDER_SHAFT = grid("M#....\nB#bbbb\nB#bbbb\nB#bbbb\nB#bbbb\nBBbbbb\nBB..G.\nBBBBBB")
NO_LADDER = grid("M.....\nBBbbbb\nBBbbbb\nBBbbbb\nBBbbbb\nBBbbbb\nBB..G.\nBBBBBB")
DEEP_NARROW = grid("B.MB\nBbbB\nBbbB\nB.GB\nBBBB")     # two layers, two wide, walled in
TWO_WIDE_SHAFT = grid("M.B\nbbB\nbbB\nbbB\nbbB\n.GB\nBBB")
GOLD_IN_SHAFT = grid("M.B\nbbB\nGGB\nbbB\nbbB\n.GB\nBBB")  # dig under gold once it is taken
ENEMY_BRIDGE = grid("M..G\nBB.B\nBBEB\nBBBB")         # crossing needs the enemy's head


@pytest.mark.parametrize("level, plain, digging, falling", [
    (FALL_PAST_GOLD, True, True, True), (LADDER_TOP, True, True, True),
    (BOTTOM_EDGE, True, True, True), (SEALED, False, False, False),
    (NOT_UNDER_LADDER, False, False, False), (UNDER_EMPTY, False, True, True),
    # the classic multi-layer dig: three bricks, drop in, two, drop in, one
    (THREE_LAYERS, False, True, True),
    # beside a ladder, a shaft of any depth (each brick dug from the ladder, under the last hole);
    # without the ladder, four columns of bricks allow four layers at most, not five
    (LADDER_SHAFT, False, True, True), (NO_LADDER, False, False, True),
    # standing, a runner cannot dig two layers two wide (the old check said he could); falling,
    # he digs the second brick of each layer as he drops, to any depth, even through gold
    (DEEP_NARROW, False, False, True), (TWO_WIDE_SHAFT, False, False, True),
    (GOLD_IN_SHAFT, False, False, True),
    (ENEMY_BRIDGE, False, False, False)])
def test_movement_rules(level, plain, digging, falling):
    assert lr.playable(level, dig=False) == plain
    assert lr.playable(level, dig=True) == digging
    assert lr.playable(level, dig=True, dig_while_falling=True) == falling


def test_holes_refill(monkeypatch):
    """Three layers take about 60 ticks of digging and dropping: too long if holes refill at 40."""
    monkeypatch.setattr(lr, "HOLE_LIFE", 40)
    assert not lr.playable(THREE_LAYERS) and lr.playable(TWO_WIDE)
    monkeypatch.setattr(lr, "SEARCH_LIMIT", 0)  # out of search budget: fewer paths, never more
    assert not lr.playable(DIG) and lr.playable(FALL)


def kgoldrunner_level(codes: dict[tuple[int, int], str]) -> np.ndarray:
    """A 28x20 KGoldrunner level (concrete floor) read the way the shipped games are."""
    rows = [[" "] * 28 for _ in range(19)] + [["X"] * 28]
    for (y, x), code in codes.items():
        rows[y][x] = code
    text = "// L001\n//  " + "".join("".join(r) for r in rows) + "\n"
    return grid("\n".join(read_kgoldrunner(text)[0].rows))


def test_hidden_ladders_do_not_lead_to_gold():
    """A hidden ladder (Z) appears only once all gold is taken: it is empty space until then."""
    ledge = {(18, 0): "R", (10, 5): "N", (11, 5): "X"}
    climb = {(y, 6): "H" for y in range(10, 19)}
    hidden = {(y, 6): "Z" for y in range(10, 19)}
    assert lr.playable(kgoldrunner_level(ledge | climb))
    assert not lr.playable(kgoldrunner_level(ledge | hidden), dig_while_falling=True)


def test_kgoldrunner_codes_for_hidden_enemies_and_flashing_gold():
    """KGrLevelGrid starts a hidden enemy (a) as a brick and a flashing nugget (b) as a nugget."""
    level = kgoldrunner_level({(18, 0): "R", (18, 3): "a", (18, 5): "b"})
    assert level[18, 3] == lr.DIGGABLE and level[18, 5] == lr.GOLD
    assert not lr.playable(level, dig_while_falling=True)  # the brick walls the gold off
    assert lr.playable(kgoldrunner_level({(18, 0): "R", (18, 5): "b"}))


# KGoldrunner games whose file says '// .dwf false': no digging while falling (the others allow it).
NO_DIG_WHILE_FALLING = {"blb", "kgr", "plws", "plwv", "tute", "tutea", "wad"}


def test_shipped_levels_mostly_playable_with_digging():
    """Measured on every fourth level: 81.3% pass under each game's rules (78.5% of all 489 levels;
    most of the rest need enemies: a head to stand on, or gold carried down), 65.9% when no game
    allows digging while falling, 28.5% without digging. Sound checks may only undercount."""
    try:
        levels, _ = sources.load_lode_runner()
    except Exception as err:
        pytest.skip(str(err))
    sample = levels[::4]
    plain = [lr.playable(lv.grid, dig=False) for lv in sample]
    digging = [lr.playable(lv.grid, dig=True) for lv in sample]
    game_rules = [lr.playable(lv.grid, dig=True,
                              dig_while_falling=lv.group not in NO_DIG_WHILE_FALLING)
                  for lv in sample]
    assert sum(plain) <= sum(digging) <= sum(game_rules)
    assert sum(digging) / len(sample) >= 0.65 and sum(game_rules) / len(sample) >= 0.81
