"""Musical metrics on hand-made pieces with known answers, boundaries included."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from genforge.metrics import music as m
from genforge.metrics.registry import METRICS, EvalInputs, Protocol
from genforge.modalities.base import Dataset
from genforge.music import representation as rep
from genforge.music.representation import Note

S, A, T, B = range(4)


def piece(*notes: Note, steps: int = 16) -> np.ndarray:
    return rep.notes_to_satb(list(notes), steps)


EMPTY = piece()
ONE = piece(Note(60, 0, 4, S))
CHORD = piece(Note(72, 0, 16, S), Note(64, 0, 16, A), Note(55, 0, 16, T), Note(48, 0, 16, B))


def test_empty_piece():
    assert math.isnan(m.pitch_range(EMPTY)) and math.isnan(m.pitch_class_entropy(EMPTY))
    assert math.isnan(m.scale_consistency(EMPTY)) and math.isnan(m.polyphony(EMPTY))
    assert m.empty_beat_rate(EMPTY) == 1.0 and m.note_density(EMPTY) == 0.0
    assert m.parallel_fifths(EMPTY) == 0 and math.isnan(m.voice_crossing(EMPTY))
    assert math.isnan(m.out_of_range(EMPTY)) and math.isnan(m.spacing_violations(EMPTY))
    assert math.isnan(m.empty_beat_rate(np.zeros((4, 0), np.uint8)))


def test_single_note():
    assert m.pitch_range(ONE) == 0 and m.pitch_class_entropy(ONE) == 0
    assert m.scale_consistency(ONE) == 1 and m.polyphony(ONE) == 1
    assert m.empty_beat_rate(ONE) == 0.75 and m.note_density(ONE) == 1.0


def test_chord_features():
    assert m.pitch_range(CHORD) == 24
    assert m.pitch_class_entropy(CHORD) == pytest.approx(1.5)   # C C E G
    assert m.polyphony(CHORD) == 4 and m.scale_consistency(CHORD) == 1
    chromatic = piece(*[Note(60 + k, k, k + 1, S) for k in range(12)])
    assert m.pitch_class_entropy(chromatic) == pytest.approx(math.log2(12))
    assert m.scale_consistency(chromatic) == pytest.approx(7 / 12)
    assert m.empty_beat_rate(chromatic) == 0.25  # steps 12..15 are silent


def test_parallel_fifths_and_octaves():
    fifths = piece(Note(67, 0, 4, S), Note(69, 4, 8, S), Note(60, 0, 4, B), Note(62, 4, 8, B))
    assert m.parallel_fifths(fifths) == 1 and m.parallel_octaves(fifths) == 0
    twelfth = piece(Note(79, 0, 4, S), Note(81, 4, 8, S), Note(60, 0, 4, B), Note(62, 4, 8, B))
    assert m.parallel_fifths(twelfth) == 1
    octaves = piece(Note(72, 0, 4, S), Note(74, 4, 8, S), Note(60, 0, 4, T), Note(62, 4, 8, T),
                    Note(60, 0, 4, A), Note(62, 4, 8, A))  # S-T, S-A octaves and an A-T unison
    assert m.parallel_octaves(octaves) == 3 and m.parallel_fifths(octaves) == 0


def test_no_parallel_across_rest_repeat_or_contrary_motion():
    across_rest = piece(Note(67, 0, 4, S), Note(69, 6, 10, S), Note(60, 0, 4, B), Note(62, 6, 10, B))
    assert m.parallel_fifths(across_rest) == 0
    repeated = piece(Note(67, 0, 4, S), Note(67, 4, 8, S), Note(60, 0, 4, B), Note(60, 4, 8, B))
    assert m.parallel_fifths(repeated) == 0
    contrary = piece(Note(67, 0, 4, S), Note(74, 4, 8, S), Note(60, 0, 4, B), Note(55, 4, 8, B))
    assert m.parallel_fifths(contrary) == 0
    # an onset in one voice only still counts: the held voice must move for a parallel, so none
    held = piece(Note(67, 0, 8, S), Note(60, 0, 4, B), Note(62, 4, 8, B))
    assert m.parallel_fifths(held) == 0


def test_crossing_spacing_range():
    unison = piece(Note(60, 0, 4, S), Note(60, 0, 4, A))
    assert m.voice_crossing(unison) == 0.0
    crossed = piece(Note(60, 0, 4, S), Note(62, 0, 2, A), Note(55, 2, 4, A))
    assert m.voice_crossing(crossed) == 0.5
    assert m.spacing_violations(piece(Note(72, 0, 4, S), Note(60, 0, 4, A))) == 0.0  # an octave
    assert m.spacing_violations(piece(Note(73, 0, 4, S), Note(60, 0, 4, A))) == 1.0
    assert m.spacing_violations(piece(Note(60, 0, 4, A), Note(47, 0, 4, T))) == 1.0
    assert math.isnan(m.spacing_violations(piece(Note(60, 0, 4, T), Note(36, 0, 4, B))))
    assert m.out_of_range(piece(Note(59, 0, 4, S), Note(60, 4, 8, S))) == 0.5
    assert m.out_of_range(piece(Note(40, 0, 4, B), Note(62, 4, 8, B))) == 0.0  # bounds inclusive


def test_overlap_area():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=200)
    same = m.overlap_area(rng.normal(size=200), ref)
    far = m.overlap_area(rng.normal(size=200) + 20, ref)
    assert 0.85 < same <= 1.0 and far < 0.01
    assert m.overlap_area(np.ones(5), np.ones(5)) == 1.0
    assert math.isnan(m.overlap_area(np.ones(5), np.array([1.0, math.nan])))
    assert m.overlap_area(np.array([math.nan, 0.0]), ref) >= 0


def test_memorisation_runs():
    rng = np.random.default_rng(1)
    notes = [Note(int(rng.integers(50, 70)), s, s + 4, v) for v in range(4) for s in range(0, 64, 4)]
    train = np.stack([piece(*notes, steps=64), np.roll(piece(*notes, steps=64), 16, axis=1)])
    copy = np.concatenate([train[0][:, 16:], piece(Note(60, 0, 16, S))], axis=1)
    assert m.longest_copied_run(copy, train[:1]) == 3
    moved = rep.transpose_satb(train[0], 2)
    assert m.longest_copied_run(moved, train) == 0
    assert m.longest_copied_run(moved, train, transpose=True) == 4
    assert m.longest_copied_run(np.zeros((4, 64), np.uint8), np.zeros((1, 4, 64), np.uint8)) == 0
    index = m.BarIndex(train)
    assert index.longest_run(train[1]) == (4, 1)


def test_registered_metrics():
    rng = np.random.default_rng(2)
    items = torch.from_numpy(np.stack([piece(*[Note(int(rng.integers(55, 75)), s, s + 4, v)
                                               for v in range(4) for s in range(0, 48, 4)], steps=48)
                                       for _ in range(6)]))
    data = Dataset("music", items, None, [], "test")
    inputs = EvalInputs(items[:3], data, m.SymbolicFeatures(), Protocol(generated=3), data)
    names = {}
    for metric in ("music_features", "voice_leading", "music_overlap", "music_memorisation"):
        for value in METRICS[metric].fn(inputs):
            assert value.extractor == "symbolic"
            names[value.name] = value.value
    assert set(m.FEATURES) <= set(names) and set(m.RULES) <= set(names)
    # they are training items: 3 bars copied, more than the 2 a copy must exceed
    assert names["copied_bars"] == 3 and names["copied_share"] == 1.0
    assert m.SymbolicFeatures().features(items).shape == (6, len(m.FEATURES))
