"""Untrusted images and music: the crash, hang and memory classes of issue 19 with their minimal
inputs. Each runs in a forked child with a time and memory limit (benchmarks/fuzz.py's), so a
regression fails the test instead of taking the machine's memory."""
from __future__ import annotations

import io as _io
import os
import re
import shutil
import signal
import struct
import sys
import zlib
from pathlib import Path

import mido
import numpy as np
import pytest
from PIL import Image

from genforge.config import DataConfig
from genforge.errors import DataError
from genforge.modalities.image import read_folder
from genforge.modalities.image_pixels import fit_square
from genforge.music import corpus, harmonize

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import fuzz  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"


def limited(fn, seconds: float = 30, memory_mib: int = 512) -> dict:
    """fn()'s result, computed in a child with these limits; fails the test on anything else."""
    outcome = fuzz.run_limited(lambda: {"kind": "loaded", **fn()}, seconds, memory_mib)
    assert outcome.kind == "loaded", f"{outcome.kind}: {outcome.detail}"
    return outcome.result


def folder_with(tmp_path: Path, name: str, data: bytes) -> Path:
    """A folder holding a good 28x28 grey image and the file under test."""
    Image.fromarray(np.full((28, 28), 90, np.uint8)).save(tmp_path / "good.png")
    (tmp_path / name).write_bytes(data)
    return tmp_path


def read(folder: Path, resolution: int | None) -> dict:
    data = read_folder(DataConfig(source=str(folder), resolution=resolution, fit="crop",
                                  labels="none", max_bad_fraction=1.0))
    return {"skipped": [[Path(p).name, r] for p, r in data.report.skipped],
            "shape": list(data.items.shape)}


def png(size: tuple[int, int], claim: tuple[int, int] | None = None) -> bytes:
    """A grey PNG of this size; with claim, its header says another size (CRC fixed)."""
    buffer = _io.BytesIO()
    Image.new("L", size, 128).save(buffer, format="PNG")
    data = buffer.getvalue()
    if claim:
        body = struct.pack(">II", *claim) + data[24:29]
        data = data[:16] + body + struct.pack(">I", zlib.crc32(b"IHDR" + body)) + data[33:]
    return data


# ---- images --------------------------------------------------------------------------------------

@pytest.mark.parametrize("resolution", [48, None])
def test_a_thin_strip_is_skipped_from_its_header_not_upscaled(tmp_path, resolution):
    strip = png((1_000_000, 1))  # 1,049 bytes; fit_square once made it 48,000,000x48 (2.8 GB)
    assert len(strip) < 2000
    result = limited(lambda: read(folder_with(tmp_path, "strip.png", strip), resolution))
    assert result["skipped"] == [["strip.png", "1000000x1 pixels: thinner than 16:1, too thin to "
                                               "fit a square"]]
    assert result["shape"] == [1, 1, resolution or 28, resolution or 28]  # it cast no vote


def test_too_many_pixels_are_skipped_before_decoding(tmp_path):
    claims = png((8, 8), claim=(6000, 5000))  # under Pillow's bomb limit, over genforge's budget
    result = limited(lambda: read(folder_with(tmp_path, "big.png", claims), 16), memory_mib=256)
    assert result["skipped"] == [["big.png", "6000x5000 pixels: more than 25 megapixels; shrink "
                                             "it first"]]


@pytest.mark.parametrize("fit", ["crop", "pad"])
def test_fit_square_never_makes_a_large_image(fit):
    def fitted():
        out = np.asarray(fit_square(Image.new("L", (1_000_000, 1), 200), 48, fit))
        return {"shape": list(out.shape), "values": sorted(set(out.ravel().tolist()))}
    result = limited(fitted, memory_mib=256)
    assert result["shape"] == [48, 48]
    assert result["values"] == ([200] if fit == "crop" else [0, 200])


def test_fit_square_keeps_its_pixels_for_ordinary_images():
    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (30, 70, 3), np.uint8))
    scale = 24 / 30  # the crop the function documents: resize to cover, then take the centre
    cover = img.resize((round(70 * scale), 24), Image.Resampling.LANCZOS)
    left = (cover.width - 24) // 2
    expected = np.asarray(cover.crop((left, 0, left + 24, 24)))
    assert np.array_equal(np.asarray(fit_square(img, 24, "crop")), expected)


# ---- music ---------------------------------------------------------------------------------------

def long_note_midi(path: Path) -> Path:
    """One note 0x0FFFFFFF ticks long: 37 bytes that kept music21 busy for over a minute (1.2 GB)."""
    midi = mido.MidiFile(type=0, ticks_per_beat=480)
    midi.tracks.append(mido.MidiTrack([mido.Message("note_on", note=60, velocity=80, time=0),
                                       mido.Message("note_off", note=60, time=0x0FFFFFFF)]))
    midi.save(path)
    return path


def test_an_absurdly_long_midi_is_skipped_before_music21_expands_it(tmp_path):
    found = corpus.read_corpus(long_note_midi(tmp_path / "long.mid"), "pianoroll", use_cache=False)
    assert found.skipped == [(str(tmp_path / "long.mid"),
                              "lasts 559,241 quarter notes; at most 16,384")]
    with pytest.raises(DataError, match=r"long.mid: lasts 559,241 quarter notes"):
        harmonize.read_given(tmp_path / "long.mid")


def slow_inputs(tmp_path: Path) -> list[Path]:
    """A MIDI at one tick per quarter (43 s in music21) and a MusicXML with <beats>-999999."""
    seeds = dict(fuzz.midi_seeds() + fuzz.musicxml_seeds())
    midi = seeds["satb.mid"]
    (tmp_path / "tick.mid").write_bytes(midi[:12] + (1).to_bytes(2, "big") + midi[14:])
    xml = seeds["satb.musicxml"].decode()
    (tmp_path / "beats.musicxml").write_text(re.sub("<beats>4</beats>", "<beats>-999999</beats>", xml))
    return [tmp_path / "tick.mid", tmp_path / "beats.musicxml"]


def test_a_parse_over_its_time_budget_is_skipped(tmp_path, monkeypatch):
    monkeypatch.setattr(corpus, "PARSE_SECONDS", 1.0)
    monkeypatch.setattr(corpus, "OTHER_SECONDS_PER_KB", 0.0)
    for path in slow_inputs(tmp_path):
        found = corpus.read_corpus(path, use_cache=False)
        assert found.skipped == [(str(path), "not readable music (took longer than 1 s to parse "
                                             "(the limit for its size))")] and found.unreadable == 1


def test_a_parse_over_its_memory_budget_is_skipped(monkeypatch):
    monkeypatch.setattr(corpus, "PARSE_MEMORY", 64 << 20)
    monkeypatch.setattr(corpus, "parse", lambda path: bytearray(1 << 30))  # a parse that balloons
    cadence = FIXTURES / "music" / "good" / "cadence.krn"
    found = corpus.read_corpus(cadence, use_cache=False)
    assert found.skipped == [(str(cadence), "not readable music (MemoryError: needs more than "
                                            "64 MiB)")] and found.unreadable == 1


def test_a_parser_that_dies_is_a_skipped_file(monkeypatch):
    monkeypatch.setattr(corpus, "parse", lambda path: os.kill(os.getpid(), signal.SIGKILL))
    cadence = FIXTURES / "music" / "good" / "cadence.krn"
    found = corpus.read_corpus(cadence, use_cache=False)
    assert found.skipped == [(str(cadence), "not readable music (the parser was killed by signal "
                                            f"{int(signal.SIGKILL)})")]


def test_music21_pickle_cache_is_neither_read_nor_written(tmp_path):
    from music21.converter import PickleFilter
    path = tmp_path / "cadence.krn"
    shutil.copy(FIXTURES / "music" / "good" / "cadence.krn", path)
    pickles = [PickleFilter(path).getPickleFp(zipType=z) for z in (None, "zlib")]
    assert len(corpus.read_corpus(path, use_cache=False).pieces) == 1
    assert len(harmonize.read_given(path)[0][0]) == 32  # two bars of soprano
    assert not any(p.exists() for p in pickles)
