"""Music files: MIDI and MusicXML written by genforge parse back with music21 and pretty_midi,
bad files are reported not raised, the corpus cache works, WAV renders have sound."""
from __future__ import annotations

import shutil
import wave
from pathlib import Path

import numpy as np
import pytest
import torch

from genforge.config import DataConfig
from genforge.errors import DataError
from genforge.modalities.music import MUSIC, open_music
from genforge.music import corpus, render, writing
from genforge.music import representation as rep
from genforge.music.representation import Note

FIXTURES = Path(__file__).parent / "fixtures" / "music"


@pytest.fixture(scope="module")
def chorale() -> np.ndarray:
    path = {p.name: p for p in corpus.bach_chorale_paths()}["bwv347.mxl"]
    return corpus.read_piece(path, "bwv347").grid[:, 4:4 + 128]  # 8 bars after the pickup


def _pretty_notes(path: Path, tempo: float = writing.DEFAULT_TEMPO) -> list[tuple[int, int, int, int]]:
    import pretty_midi
    step = 60 / tempo / rep.STEPS_PER_QUARTER
    midi = pretty_midi.PrettyMIDI(str(path))
    return sorted((round(n.start / step), v, n.pitch, round(n.end / step))
                  for v, inst in enumerate(midi.instruments) for n in inst.notes)


def test_midi_parses_back_with_pretty_midi_and_music21(chorale, tmp_path):
    from music21 import converter
    path = writing.write_midi(chorale, tmp_path / "c.mid", {"seed": 7, "model": "abc"})
    expected = sorted((n.start, n.voice, n.pitch, n.end) for n in rep.satb_to_notes(chorale))
    assert _pretty_notes(path) == expected
    grid, _ = corpus.encode_score(converter.parse(str(path)))
    assert (grid == chorale).all()
    assert writing.read_metadata(path) == {"seed": 7, "model": "abc"}


def test_musicxml_parses_back_with_music21(chorale, tmp_path):
    from music21 import converter
    path = writing.write_musicxml(chorale, tmp_path / "c.musicxml", {"seed": 7})
    grid, starts = corpus.encode_score(converter.parse(str(path)))
    assert (grid == chorale).all()
    assert starts.tolist() == list(range(0, 128, 16))
    assert writing.read_metadata(path) == {"seed": 7}


def test_trailing_rests_survive(tmp_path):
    from music21 import converter
    item = rep.notes_to_satb([Note(72, 0, 4, 0), Note(48, 0, 8, 3)], 32)
    grid, _ = corpus.encode_score(converter.parse(str(writing.write_musicxml(item, tmp_path / "r.musicxml"))))
    assert rep.satb_to_notes(grid) == rep.satb_to_notes(item)
    assert (grid == item).all()
    # MIDI readers drop silent tracks and end at the last note: voices are placed by track name
    grid, _ = corpus.encode_score(converter.parse(str(writing.write_midi(item, tmp_path / "r.mid"))))
    assert 8 <= grid.shape[1] <= 32 and (grid == item[:, :grid.shape[1]]).all()


def test_piano_roll_midi(tmp_path):
    notes = [Note(60, 0, 8), Note(64, 0, 4), Note(67, 4, 8), Note(67, 8, 12)]
    roll = rep.notes_to_roll(notes, 16)
    path = writing.write_midi(roll, tmp_path / "p.mid")
    assert _pretty_notes(path) == sorted((n.start, 0, n.pitch, n.end) for n in notes)
    writing.write_musicxml(roll, tmp_path / "p.musicxml")  # writes without error


def test_modality_write_and_preview(chorale, tmp_path):
    items = torch.from_numpy(np.stack([chorale[:, :64], chorale[:, 64:]]))
    paths = MUSIC.write(items, tmp_path, ["a", "b"], [{"seed": 1}, {"seed": 2}])
    assert [p.name for p in paths] == ["a.mid", "b.mid"]
    assert writing.read_metadata(tmp_path / "b.musicxml") == {"seed": 2}
    assert (tmp_path / "a.png").stat().st_size > 0
    grid = MUSIC.preview(items)
    assert grid.size[0] > 64 * 3 and not list(tmp_path.glob(".*tmp"))
    with pytest.raises(ValueError):
        MUSIC.write(items, tmp_path, ["../x", "y"])


def test_bad_files_are_reported(tmp_path, monkeypatch):
    monkeypatch.setenv("GENFORGE_CACHE", str(tmp_path / "cache"))
    found = corpus.read_corpus(FIXTURES / "bad")
    reasons = {Path(p).name: r for p, r in found.skipped}
    assert found.found == 3 and not found.pieces and found.unreadable == 1
    assert reasons["not_music.mid"].startswith("not readable music")
    assert reasons["empty.musicxml"] == "no notes"
    assert "5/4" in reasons["five_four.musicxml"]
    with pytest.raises(DataError, match="none of the 3"):
        open_music(DataConfig(kind="music", source=str(FIXTURES / "bad")))


def test_folder_opens_with_cache(chorale, tmp_path, monkeypatch):
    monkeypatch.setenv("GENFORGE_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "music"
    shutil.copytree(FIXTURES / "good", folder)            # a Humdrum cadence, 2 bars
    shutil.copy(FIXTURES / "bad" / "five_four.musicxml", folder)
    writing.write_musicxml(chorale, folder / "chorale.musicxml")
    writing.write_midi(chorale[:, :64], folder / "sub" / "chorale.mid")
    cold = corpus.read_corpus(folder)
    warm = corpus.read_corpus(folder)
    assert not cold.cached and warm.cached and len(warm.pieces) == len(cold.pieces) == 3
    assert [p.name for p in warm.pieces] == [p.name for p in cold.pieces] == [
        "cadence", "chorale", "sub/chorale"]
    assert all((a.grid == b.grid).all() for a, b in zip(cold.pieces, warm.pieces))
    config = DataConfig(kind="music", source=str(folder), bars=2, split="all", transpose=0)
    data = open_music(config)
    assert data.kind == "music" and data.item_shape == (4, 32)
    assert len(data) == 1 + 7 + 3  # crops of 2 bars on every bar line
    assert data.report.found == 4 and data.report.loaded == 3 and len(data.report.skipped) == 1
    roll = open_music(DataConfig(kind="music", source=str(folder), bars=2, split="all",
                                      representation="pianoroll", transpose=2))
    assert roll.item_shape == (88, 32) and len(roll) == len(data)


def test_wav_builtin(tmp_path):
    item = rep.notes_to_satb([Note(72, 0, 16, 0), Note(48, 0, 32, 3)], 64)
    assert render.render_wav(item, tmp_path / "b.wav", engine="builtin") == "builtin"
    with wave.open(str(tmp_path / "b.wav")) as f:
        frames = np.frombuffer(f.readframes(f.getnframes()), dtype="<i2")
        assert f.getsampwidth() == 2 and f.getframerate() == render.SAMPLE_RATE
        seconds = f.getnframes() / f.getframerate()
    assert seconds == pytest.approx(render.duration_seconds(item) + render.RELEASE, abs=1e-3)
    hz = render.SAMPLE_RATE
    assert np.abs(frames[:hz]).max() > 10000       # loud while notes play
    assert np.abs(frames[int(7 * hz):]).max() == 0  # silent after the last note and its release


@pytest.mark.skipif(render.choose_engine() != "fluidsynth", reason="fluidsynth not installed")
def test_wav_fluidsynth(tmp_path):
    item = rep.notes_to_satb([Note(72, 0, 16, 0), Note(48, 0, 32, 3)], 64)
    assert render.render_wav(item, tmp_path / "f.wav") == "fluidsynth"
    with wave.open(str(tmp_path / "f.wav")) as f:
        seconds = f.getnframes() / f.getframerate()
        frames = np.frombuffer(f.readframes(f.getnframes()), dtype="<i2")
    assert render.duration_seconds(item) <= seconds <= render.duration_seconds(item) + 4
    assert np.abs(frames).max() > 1000


@pytest.mark.parametrize("field,value", [("representation", "abc"), ("bars", 0), ("split", "dev"),
                                         ("transpose", 12), ("hop", 1.5)])
def test_bad_options_are_config_errors(field, value):
    from genforge.errors import ConfigError
    with pytest.raises(ConfigError, match=f"data.{field}"):
        open_music(DataConfig(kind="music", source=str(FIXTURES / "good"), **{field: value}))


def test_missing_source_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="not found"):
        open_music(DataConfig(kind="music", source=str(tmp_path / "nowhere")))
