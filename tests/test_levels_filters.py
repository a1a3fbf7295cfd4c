"""--min-moves and --min-boxes: generated levels below a minimum are replaced by the next seeds'
as unplayable ones are, and the minimums are recorded."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from genforge.errors import ConfigError
from genforge.generation.levels import LevelFilter, check_items, level_filter
from genforge.levels.formats import SOKOBAN, parse_grid
from genforge.modalities.level import LEVEL

EASY = "#####\n#@$.#\n#####\n#####\n#####"            # one push, one box
HARD = "#####\n#.$ #\n#@$.#\n#   #\n#####"            # two boxes, several moves
STUCK = "#####\n#@ .#\n#$  #\n#####\n#####"           # a box in a corner: unplayable
GRIDS = {name: parse_grid(text, SOKOBAN) for name, text in
         (("easy", EASY), ("hard", HARD), ("stuck", STUCK))}


def run(order: list[str], **minimums):
    """check_items over levels drawn in `order` by seed (seed k: order[k])."""
    model = SimpleNamespace(modality=LEVEL.bind(SOKOBAN.to_dict()))
    draw = lambda count, seeds, labels: torch.from_numpy(  # noqa: E731
        np.stack([GRIDS[order[s]] for s in seeds]))
    items, seeds, checks, record = check_items(
        model, draw(2, [0, 1], None), [0, 1], None, draw, batch_size=2, repair=False,
        playable_only=False, keep=level_filter(**minimums))
    return seeds, checks, record


def test_the_fixture_levels_are_what_their_names_say():
    _, checks, _ = run(["easy", "hard"])
    assert [c["boxes"] for c in checks] == [1, 2]
    assert checks[0]["solution_moves"] == 1 and checks[1]["solution_moves"] >= 4
    assert checks[0]["solution_pushes"] == 1


def test_min_moves_replaces_short_levels_by_the_next_seeds():
    hard_moves = run(["easy", "hard"])[1][1]["solution_moves"]
    seeds, checks, record = run(["easy", "stuck", "hard", "easy", "hard", "hard"],
                                min_moves=hard_moves)
    assert seeds == [2, 4] and all(c["solution_moves"] >= hard_moves for c in checks)
    assert record["min_moves"] == hard_moves and record["tried"] == 6
    assert record["playable_only"] is True


def test_min_boxes_keeps_levels_with_enough_boxes():
    seeds, checks, record = run(["hard", "easy", "easy", "hard"], min_boxes=2)
    assert seeds == [0, 3] and [c["boxes"] for c in checks] == [2, 2]
    assert record["min_boxes"] == 2 and "min_moves" not in record


def test_no_minimum_keeps_every_level():
    seeds, _, record = run(["easy", "stuck"])
    assert seeds == [0, 1] and record["playable"] == 1 and not LevelFilter().active


def test_a_minimum_below_one_is_one_line():
    with pytest.raises(ConfigError, match="min_moves|min-moves"):
        level_filter(min_moves=0)
