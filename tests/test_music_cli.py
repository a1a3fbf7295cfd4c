"""Music end to end through the CLI: train on chorales, generate longer pieces with audio,
harmonise a melody (kept exactly), everything signed and traceable."""
from __future__ import annotations

import json
import shutil

import pytest

import genforge
from genforge.cli import main
from genforge.music import corpus, writing
from genforge.music.harmonize import read_given
from genforge.provenance import signing

TINY = ["--model-channels", "8", "--channel-mult", "1,2", "--num-blocks", "1",
        "--attn-resolutions", "", "--batch-size", "8", "--preview-count", "2", "--progress", "none",
        "--device", "cpu"]
CHORALES = ("bwv253", "bwv267", "bwv281", "bwv347")  # four-part 4/4 chorales in music21's corpus


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A two-step model trained on a folder of four chorales (copied from music21's corpus)."""
    folder = tmp_path_factory.mktemp("chorales")
    paths = {p.name.split(".")[0]: p for p in corpus.bach_chorale_paths()}
    for name in CHORALES:
        shutil.copy(paths[name], folder)
    run = folder.parent / "run"
    assert main(["train", str(folder), "--run", str(run), "--steps", "2", "--bars", "2",
                 "--transpose", "1", "--split", "all", *TINY]) == 0
    return genforge.load(run / "model", device="cpu")


def test_a_folder_of_chorales_trains_a_music_model(model):
    info = model.info()
    assert info["kind"] == "music" and info["item_shape"] == [4, 32]
    assert model.spec.model_shape == (8, 32, 48)  # one-hot pitch and onset planes per voice


def test_generate_writes_notation_audio_and_a_signed_pack(model, tmp_path, capsys):
    out = tmp_path / "pieces"
    assert main(["generate", str(model.folder), "-n", "2", "--bars", "4", "--steps", "3",
                 "--wav", "--device", "cpu", "--out", str(out)]) == 0
    assert "pack-000000.zip" in capsys.readouterr().out
    for stem in ("000000", "000001"):
        for ext in ("mid", "musicxml", "png", "wav"):
            assert (out / f"{stem}.{ext}").stat().st_size > 0
        assert writing.read_metadata(out / f"{stem}.mid")["seed"] == int(stem)
    codes, _ = read_given(out / "000000.mid", voices=(0, 1, 2, 3), steps=4 * 16)
    assert codes.shape == (4, 64)  # four bars of 16ths
    # formats C2PA covers are signed in place, MIDI and MusicXML inside the signed pack
    assert signing.verify_file(out / "000000.wav").state == "trusted"
    pack = signing.verify_file(out / "pack-000000.zip")
    assert pack.state == "trusted" and pack.generation["model"]["hash"] == model.manifest["weights_sha256"]
    log = json.loads((out / "generation.json").read_text())
    assert log["signed_packs"] == ["pack-000000.zip"] and log["watermark"]["applied"] is False


def test_harmonize_keeps_the_melody_exactly(model, tmp_path):
    melody = "tests/fixtures/music/melody.mid"
    out = tmp_path / "settings"
    assert main(["harmonize", str(model.folder), melody, "-n", "2", "--steps", "3",
                 "--device", "cpu", "--out", str(out)]) == 0
    given, mask = read_given(melody)
    for stem in ("000000", "000001"):
        written, _ = read_given(out / f"{stem}.mid", voices=(0, 1, 2, 3), steps=given.shape[1])
        assert (written[0] == given[0]).all()  # the soprano, note for note, holds and attacks


def test_music_mistakes_are_one_line(model, tmp_path, capsys):
    assert main(["generate", str(model.folder), "--bars", "0", "--device", "cpu",
                 "--out", str(tmp_path / "x")]) == 2
    assert "--bars must be between 1 and" in capsys.readouterr().err
    assert main(["harmonize", str(model.folder), "tests/fixtures/music/melody.mid",
                 "--voices", "SATB", "--device", "cpu", "--out", str(tmp_path / "y")]) == 2
    assert "--voices takes one to three" in capsys.readouterr().err
    bad = tmp_path / "notes.mid"
    bad.write_text("not music")
    assert main(["harmonize", str(model.folder), str(bad), "--device", "cpu",
                 "--out", str(tmp_path / "z")]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and err.count("\n") == 1


def test_evaluate_judges_music_with_musical_metrics_against_held_out_chorales(model, tmp_path):
    folder = model.manifest["dataset"]["source"]
    result = genforge.api.evaluate(model.folder, folder, n=6, steps=3, device="cpu",
                               data_options={"split": "all"}, out=tmp_path / "eval")
    labels = {r["label"]: r for r in result["records"]}
    for name in ("pitch_class_entropy", "parallel_fifths", "voice_crossing", "overlap_mean",
                 "copied_bars"):
        assert name in labels and labels[name]["extractor"] == "symbolic"
    assert labels["pitch_class_entropy"]["generated"] == 6
    assert 0.0 <= labels["overlap_mean"]["value"] <= 1.0
