"""Level metrics: each pure function on fixtures with known answers, and the registered wrappers
through a real evaluation."""
import math

import numpy as np
import pytest
import torch

from genforge.levels.baseline import MarkovLevels, random_sokoban
from genforge.levels.formats import LODE_RUNNER, SOKOBAN, parse_grid
from genforge.metrics import levels as lm
from genforge.metrics.registry import METRICS, Protocol, evaluate
from genforge.modalities.base import Dataset

SOLVABLE = parse_grid("######\n#@$ .#\n######", SOKOBAN)
MALFORMED = parse_grid("######\n#  $.#\n######", SOKOBAN)


def test_playability_and_solution_length():
    rows = lm.playability(np.stack([SOLVABLE, MALFORMED]), SOKOBAN)
    assert [r["status"] for r in rows] == ["solvable", "malformed"]
    assert rows[0]["length"] == len("rR") and rows[1]["length"] is None
    lode = np.stack([parse_grid(text, LODE_RUNNER) for text in
                     ("M..G\nBBBB\n....\nBBBB", "M...\nBBBB\n.G..\nBBBB")])
    assert [r["playable"] for r in lm.playability(lode, LODE_RUNNER)] == [True, False]


def test_hamming_novelty_diversity():
    a = np.zeros((1, 2, 2), dtype=np.uint8)
    b = np.array([[[0, 1], [1, 1]]], dtype=np.uint8)
    assert lm.hamming(a, b).tolist() == [[0.75]]
    result = lm.novelty(np.concatenate([a, b]), a)
    assert result["copy_share"] == 0.5 and result["novel_share"] == 0.5
    assert result["nn_distance"] == pytest.approx(0.375)
    c = np.ones((1, 2, 2), dtype=np.uint8)
    # pairs: a-b 0.75, a-c 1.0, b-c 0.25
    assert lm.diversity(np.concatenate([a, b, c])) == pytest.approx(2.0 / 3)
    assert lm.diversity(a) == 0.0
    with pytest.raises(ValueError):
        lm.hamming(a, np.zeros((1, 3, 3)))


def test_pattern_kl_known_value():
    train = np.array([[[0, 1], [1, 0]]], dtype=np.uint8)
    gen = np.ones((1, 2, 2), dtype=np.uint8)
    e = 1e-4
    assert lm.pattern_kl(gen, train, 2, e) == pytest.approx(math.log((1 + e) / e) / (1 + 2 * e))
    assert lm.pattern_kl(train, train, 2) == pytest.approx(0.0)
    three = np.zeros((2, 4, 4), dtype=np.uint8)
    assert sum(lm.pattern_counts(three, 3).values()) == 2 * 4


def test_tile_distribution_error():
    gen = np.zeros((1, 2, 2), dtype=np.uint8)
    train = np.array([[[0, 1], [1, 0]]], dtype=np.uint8)
    assert lm.tile_distribution(train, 3).tolist() == [0.5, 0.5, 0.0]
    assert lm.tile_distribution_error(gen, train, 3) == pytest.approx(0.5)
    assert lm.tile_distribution_error(train, train, 3) == 0.0


def test_markov_baseline_is_seeded_and_learns_tiles():
    train = random_sokoban(30, shape=(7, 7), seed=1)
    model = MarkovLevels.fit(train, SOKOBAN.size)
    one, two = model.sample(5, seed=4), model.sample(5, seed=4)
    assert one.shape == (5, 7, 7) and one.dtype == np.uint8 and np.array_equal(one, two)
    assert (one[:, 0] == 0).all()  # the top row is always wall in training, so it is here
    assert lm.tile_distribution_error(model.sample(40, seed=5), train, 7) < 0.1


def test_registered_metrics_in_an_evaluation():
    train = torch.from_numpy(random_sokoban(12, shape=(6, 6), boxes=1, seed=2))
    reference = Dataset("level", train, None, [], "random", vocabulary=SOKOBAN.to_dict())
    extractor = lm.TileFeatures()
    names = ("level-playability", "level-novelty", "level-diversity", "level-patterns",
             "level-tiles")
    assert all(name in METRICS for name in names)
    result = evaluate(lambda n: train[:n].clone(), reference, extractor, metrics=names,
                      protocol=Protocol(generated=6))
    values = {r.metric: r.value for r in result.records}
    assert values["novel_share"] == 0.0 and values["nn_hamming"] == 0.0
    assert values["tile_distribution_error"] < 0.2 and values["pattern_kl_2x2"] >= 0
    assert 0 <= values["playable_share"] <= 1 and "solution_length" in values
    assert 0 < values["diversity"] <= 1
    assert extractor.features(train).shape == (12, 256)
