"""Harmonisation against Bach: per-voice agreement on a fixture with a known answer, the errors
beside it, and the Markov baseline that harmonises the same melody."""
from __future__ import annotations

import math

import numpy as np
import pytest

from genforge.metrics.harmonisation import harmonisation_scores, voice_agreement
from genforge.music import baseline
from genforge.music import representation as rep


def satb(*voices: list[int]) -> np.ndarray:
    """SATB codes [4, T] from per-voice MIDI pitches per step (-1: rest), each step attacked."""
    codes = [[0 if p < 0 else p - rep.PITCH_LOW + 1 + rep.ONSET for p in v] for v in voices]
    return rep.canonical_satb(np.array(codes, dtype=np.uint8))


BACH = satb([72, 74, 76, 77], [67, 67, 67, 69], [64, 65, 60, 60], [48, 47, 48, 41])


def test_agreement_on_a_fixture_with_a_known_answer():
    ours = satb([72, 74, 76, 77],
                [67, 67, 67, 69],          # alto: Bach's throughout
                [64, 53, 60, -1],          # tenor: same, an octave off, same, a rest
                [48, 50, 36, 43])          # bass: same, other, octave off, other
    got = voice_agreement(ours, BACH)
    assert got["alto"] == {"pitch": 1.0, "pitch_class": 1.0}
    assert got["tenor"] == {"pitch": 0.5, "pitch_class": 0.75}
    assert got["bass"] == {"pitch": 0.25, "pitch_class": 0.5}
    scores = harmonisation_scores([ours, BACH], [BACH, BACH])
    assert scores["tenor_pitch"] == 0.75 and scores["bass_pitch_class"] == 0.75


def test_errors_are_reported_beside_agreement():
    # soprano and bass a fifth apart both move up a tone: a parallel fifth; the alto above the soprano
    crossed = satb([72, 74], [76, 77], [60, 62], [65, 67])
    scores = harmonisation_scores([crossed], [crossed])
    assert scores["parallel_fifths"] >= 1 and scores["voice_crossing"] == 1.0
    assert 0 <= scores["out_of_range"] <= 1 and scores["alto_pitch"] == 1.0
    with pytest.raises(ValueError, match="one harmonisation per reference"):
        harmonisation_scores([crossed], [])


def test_markov_harmonises_its_own_piece_back_and_keeps_the_melody():
    chain = baseline.fit_markov(BACH[None], order=2)
    mask = np.zeros(BACH.shape, dtype=bool)
    mask[0] = True
    melody = np.where(mask, BACH, 0)
    setting = baseline.harmonize_markov(chain, melody, mask, seed=0)
    assert np.array_equal(setting[0], BACH[0])  # the melody comes back exactly
    # every context was seen once, with one chord after it: Bach's own setting, agreement 1
    assert all(v == {"pitch": 1.0, "pitch_class": 1.0} for v in voice_agreement(setting, BACH).values())
    # a melody the chain never saw is still harmonised, melody kept, codes well formed
    other = np.where(mask, satb([79, 77, 76, 74], [-1] * 4, [-1] * 4, [-1] * 4), 0)
    setting = baseline.harmonize_markov(chain, other, mask, seed=1)
    assert np.array_equal(setting[0], other[0])
    assert np.array_equal(setting, rep.canonical_satb(setting))
    assert not math.isnan(harmonisation_scores([setting], [BACH])["bass_pitch"])
