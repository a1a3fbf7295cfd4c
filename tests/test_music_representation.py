"""Music encodings: SATB codes and piano rolls round-trip notes, model planes and real chorales."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from genforge.modalities.music import MUSIC
from genforge.music import corpus, dataset
from genforge.music import representation as rep
from genforge.music.representation import Note

CHORALES = ("bwv347.mxl", "bwv153.1.mxl")  # 4/4, four parts, with pickups and a split bar


@pytest.fixture(scope="module")
def chorales() -> list[corpus.Piece]:
    paths = {p.name: p for p in corpus.bach_chorale_paths()}
    return [corpus.read_piece(paths[name], name) for name in CHORALES]


def test_codes_keep_held_and_repeated_notes_apart():
    notes = [Note(60, 0, 4, 0), Note(60, 4, 8, 0), Note(48, 2, 6, 3)]
    codes = rep.notes_to_satb(notes, 8)
    assert codes[0].tolist() == [rep.ONSET + 25] + [25] * 3 + [rep.ONSET + 25] + [25] * 3
    assert codes[3].tolist() == [0, 0, rep.ONSET + 13, 13, 13, 13, 0, 0]
    assert rep.satb_to_notes(codes) == sorted(notes, key=lambda n: (n.start, n.voice, n.pitch))


def test_invalid_hold_decodes_as_attack():
    codes = np.array([[25, 25, 26, 0], [0, 30, 30, 0], [0] * 4, [0] * 4], dtype=np.uint8)
    assert rep.satb_to_notes(codes) == [Note(60, 0, 2, 0), Note(65, 1, 3, 1), Note(61, 2, 3, 0)]
    assert rep.canonical_satb(codes)[0].tolist() == [rep.ONSET + 25, 25, rep.ONSET + 26, 0]


def test_piano_roll_round_trip():
    notes = [Note(21, 0, 3), Note(60, 0, 5), Note(64, 0, 5), Note(64, 5, 6), Note(108, 7, 8)]
    roll = rep.notes_to_roll(notes, 8)
    assert rep.roll_to_notes(roll) == sorted(notes, key=lambda n: (n.start, n.pitch))
    back = rep.roll_from_model(rep.roll_to_model(torch.from_numpy(roll[None])))[0].numpy()
    assert (back == roll).all()
    assert rep.model_shape((88, 64)) == (2, 64, 88)


def test_model_planes_round_trip_and_shape():
    rng = np.random.default_rng(0)
    notes = [Note(int(rng.integers(36, 83)), s, s + int(rng.integers(1, 5)), v)
             for v in range(4) for s in range(0, 60, 5)]
    codes = rep.notes_to_satb(notes, 64)[None]
    x = MUSIC.to_model(torch.from_numpy(codes))
    assert x.shape == (1, *MUSIC.model_shape((4, 64))) == (1, 8, 64, 48)
    assert set(x.unique().tolist()) == {-1.0, 1.0}
    assert (MUSIC.from_model(x).numpy() == codes).all()
    noisy = x + 0.2 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    assert (MUSIC.from_model(noisy).numpy() == codes).all()  # argmax and sign survive small noise


def test_transpose_stays_in_range():
    codes = rep.notes_to_satb([Note(80, 0, 4, 0)], 4)
    assert rep.satb_pitches(rep.transpose_satb(codes, 2))[0, 0] == 82
    with pytest.raises(ValueError):
        rep.transpose_satb(codes, 3)


def test_real_chorales_survive_encode_decode(chorales):
    for piece in chorales:
        notes = rep.satb_to_notes(piece.grid)
        assert len(notes) > 150
        assert (rep.notes_to_satb(notes, piece.grid.shape[1]) == piece.grid).all()
        back = MUSIC.from_model(MUSIC.to_model(torch.from_numpy(piece.grid[None])))[0].numpy()
        assert (back == piece.grid).all()


def test_chorale_note_for_note_against_music21(chorales):
    from music21 import converter
    path = {p.name: p for p in corpus.bach_chorale_paths()}[CHORALES[0]]
    score = converter.parse(str(path))
    for v, part in enumerate(score.parts):
        expected = [(n.pitch.midi, round(n.offset * 4), round((n.offset + n.quarterLength) * 4))
                    for n in part.stripTies().flatten().notes]
        got = [(n.pitch, n.start, n.end) for n in rep.satb_to_notes(chorales[0].grid) if n.voice == v]
        assert got == expected


def test_crops_sit_on_bar_lines(chorales):
    piece = chorales[0]  # a pickup of one beat, and bar 4 split 3 + 1 by a repeat
    starts = dataset.crop_starts(piece, bars=4)
    assert starts[0] == 4 and all((s - 4) % 16 == 0 for s in starts)
    crops = dataset.crop_pieces(chorales, bars=4)
    assert crops.items.shape[1:] == (4, 64) and crops.items.dtype == np.uint8
    assert (rep.satb_onsets(crops.items)[:, :, 0] == (rep.satb_pitches(crops.items)[:, :, 0] >= 0)).all()
    more = dataset.transpose_crops(crops, 3)
    ranges = dataset.voice_ranges(crops.items)
    assert len(more.items) > len(crops.items)
    assert (dataset.voice_ranges(more.items) == ranges).all()  # every voice stays in its range
    assert set(more.shift.tolist()) <= set(range(-3, 4))


def test_split_is_by_work_and_fixed():
    assert corpus.work_split("bwv347") == corpus.work_split("bwv347")
    names = [f"bwv{i}" for i in range(400)]
    shares = {s: sum(corpus.work_split(n) == s for n in names) / 400
              for s in ("train", "validation", "test")}
    assert 0.7 < shares["train"] < 0.9 and 0.05 < shares["test"] < 0.15


def test_split_follows_the_tune():
    tune = [Note(p, 4 * k, 4 * k + 4, 0) for k, p in enumerate([67, 67, 69, 71, 72, 71, 69, 67])]
    a = corpus.Piece("bwv1", rep.notes_to_satb(tune + [Note(48, 0, 32, 3)], 32), np.zeros(0))
    b = corpus.Piece("bwv2", rep.notes_to_satb([n._replace(pitch=n.pitch - 2) for n in tune], 32),
                     np.zeros(0))
    assert corpus.tune_key(a) == corpus.tune_key(b) == "tune:0,2,2,1,-1,-2,-2"
    assert corpus.piece_split(a) == corpus.piece_split(b)
    assert dataset.select_split([a, b], "all") == [a, b]
    with pytest.raises(ValueError):
        dataset.select_split([a], "dev")
