"""Provenance on what a person shares (issue 26): marked display copies of small images that name
their native file, no private paths in any published file, the user's inputs as C2PA
ingredients (read back by c2pa's own reader), and detection after rescaling and turning. The
sharing pipelines themselves are measured in benchmarks/bench_watermark.py."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import genforge
from genforge.cli import main
from genforge.modalities.image import read_metadata
from genforge.music import corpus
from genforge.provenance import signing, watermark
from tiny import TINY

MUSIC = ["--model-channels", "8", "--channel-mult", "1,2", "--num-blocks", "1",
         "--attn-resolutions", "", "--batch-size", "8", "--preview-count", "2",
         "--progress", "none", "--device", "cpu"]
CHORALES = ("bwv253", "bwv267")
LEVELS = Path(__file__).parent / "fixtures" / "levels" / "sokoban" / "tiny.xsb"
MELODY = Path(__file__).parent / "fixtures" / "music" / "melody.mid"


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """A user's home: every model, input and output below it, given by absolute paths."""
    return tmp_path_factory.mktemp("home-of-someone").resolve()


@pytest.fixture(scope="module")
def image_model(home):
    run = home / "projects" / "sprites-run"
    assert main(["train", "fashion-mnist-sample", "--run", str(run), "--steps", "2",
                 *TINY]) == 0
    return genforge.load(run / "model", device="cpu")


@pytest.fixture(scope="module")
def music_model(home):
    data = home / "music" / "chorales"
    data.mkdir(parents=True)
    paths = {p.name.split(".")[0]: p for p in corpus.bach_chorale_paths()}
    for name in CHORALES:
        shutil.copy(paths[name], data)
    run = home / "projects" / "chorale-run"
    assert main(["train", str(data), "--run", str(run), "--steps", "2", "--bars", "2",
                 "--transpose", "0", "--split", "all", *MUSIC]) == 0
    return genforge.load(run / "model", device="cpu")


@pytest.fixture(scope="module")
def level_model(home):
    data = home / "levels"
    data.mkdir()
    shutil.copy(LEVELS, data)
    run = home / "projects" / "sokoban-run"
    assert main(["train", str(data), "--run", str(run), "--steps", "2", "--level-size", "8",
                 *MUSIC]) == 0
    return genforge.load(run / "model", device="cpu")


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image)


def test_display_copies_carry_the_mark_and_name_their_native_file(image_model, tmp_path, capsys):
    out, plain = tmp_path / "shown", tmp_path / "plain"
    assert main(["generate", str(image_model.folder), "-n", "2", "--steps", "2", "--device",
                 "cpu", "--display-size", "128", "--display-resample", "nearest",
                 "--out", str(out)]) == 0
    payload = image_model.manifest["weights_sha256"][:8]
    assert f"display copies: 2 at 132x132 (nearest)" in capsys.readouterr().out
    image_model.generate(2, steps=2, out=plain)
    for stem in ("000000", "000001"):
        native, shown = out / f"{stem}.png", out / f"{stem}-display.png"
        # the native file is exactly what generation without display copies writes
        assert np.array_equal(pixels(native), pixels(plain / f"{stem}.png"))
        assert pixels(native).shape[:2] == (12, 12) and pixels(shown).shape[:2] == (132, 132)
        assert read_metadata(native)["display_copy"] == shown.name
        record = read_metadata(shown)
        assert record["display_of"] == native.name and record["watermark"]["payload"] == payload
        # its manifest: opened from the native file (whose own manifest the store keeps),
        # resized and watermarked; still trainedAlgorithmicMedia
        report = signing.verify_file(shown)
        assert report.state == "trusted" and report.digital_source_type == \
            signing.TRAINED_ALGORITHMIC_MEDIA
        assert [a["action"] for a in report.actions] == ["c2pa.opened", "c2pa.resized",
                                                         "c2pa.watermarked"]
        (parent,) = report.ingredients
        assert parent["title"] == native.name and parent["relationship"] == "parentOf"
        assert parent["manifest"]["signer"] == "genforge local signer"
        assert hashlib.sha256(native.read_bytes()).hexdigest() in parent["description"]
    assert main(["detect", str(out / "000000-display.png"), "--model", str(image_model.folder),
                 "--json"]) == 0
    (found,) = json.loads(capsys.readouterr().out)
    assert found["found"] and found["payload"] == payload and found["matches_model"]
    assert main(["verify", str(out / "000001-display.png")]) == 0
    assert "ingredient (parentOf): 000001.png, png; its own manifest kept" in \
        capsys.readouterr().out
    log = json.loads((out / "generation.json").read_text())
    assert log["display"]["resample"] == "nearest" and log["display"]["watermark"]["applied"]
    assert [i["display_copy"] for i in log["items"]] == ["000000-display.png",
                                                         "000001-display.png"]


def test_display_options_are_checked_before_sampling(image_model, music_model, tmp_path):
    with pytest.raises(genforge.errors.ConfigError, match="display_size must be in"):
        image_model.generate(1, display_size=64, out=tmp_path / "a")
    with pytest.raises(genforge.errors.ConfigError, match="display_resample"):
        image_model.generate(1, display_size=256, display_resample="bilinear", out=tmp_path / "b")
    with pytest.raises(genforge.errors.ConfigError, match="this model makes music items"):
        music_model.generate(1, display_size=256, out=tmp_path / "c")
    assert not (tmp_path / "c").exists()


def test_detect_reads_a_display_copy_rescaled_and_turned():
    """Shown 2.5 times larger, or turned by 1.5 degrees: the tile lattice says how to undo it."""
    rng = np.random.default_rng(3)
    small = Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    shown = np.asarray(small.resize((256, 256), Image.Resampling.LANCZOS))
    marked = Image.fromarray(watermark.embed(shown, 0x5EED1234))
    for changed in (marked.resize((640, 640), Image.Resampling.BICUBIC),
                    marked.rotate(1.5, Image.Resampling.BICUBIC)):
        found = watermark.detect(np.asarray(changed))
        assert found.found and found.payload == 0x5EED1234
    assert not watermark.detect(np.asarray(Image.fromarray(shown).resize((640, 640)))).found


def test_inputs_are_ingredients_read_back_by_c2pas_reader(music_model, level_model, home):
    melody = home / "inputs" / "melody.mid"
    melody.parent.mkdir()
    shutil.copy(MELODY, melody)
    out = home / "out" / "settings"
    assert main(["harmonize", str(music_model.folder), str(melody), "-n", "1", "--steps", "2",
                 "--device", "cpu", "--wav", "--out", str(out)]) == 0
    digest = hashlib.sha256(melody.read_bytes()).hexdigest()
    log = json.loads((out / "generation.json").read_text())
    assert log["harmonize"] == "melody.mid"
    assert log["ingredients"] == [{"file": "melody.mid", "sha256": digest, "role": "melody",
                                   "relationship": "inputTo"}]
    for signed in (out / "pack-000000.zip", out / "000000.wav"):
        report = signing.verify_file(signed)
        assert report.state == "trusted"
        (given,) = report.ingredients
        assert given["title"] == "melody.mid" and given["relationship"] == "inputTo"
        assert given["format"] == "audio/midi" and digest in given["description"]
        assert given["manifest"] is None  # a plain MIDI file has none
        assert report.generation["ingredients"][0]["sha256"] == digest
        assert report.actions[0]["action"] == "c2pa.created"
    partial = home / "inputs" / "partial.xsb"
    partial.write_text("#####\n#@??#\n#?.?#\n#####\n")
    done = home / "out" / "completed"
    level_model.complete(partial, n=1, steps=2, out=done)
    (given,) = signing.verify_file(done / "pack-000000.zip").ingredients
    assert given["title"] == "partial.xsb" and given["relationship"] == "inputTo"


def test_a_file_made_from_a_signed_input_keeps_the_chain(music_model, tmp_path):
    pieces = tmp_path / "pieces"
    music_model.generate(1, steps=2, bars=2, out=pieces)  # 000000.mid, signed in its pack
    settings = tmp_path / "settings"
    music_model.harmonize(pieces / "000000.mid", n=1, steps=2, out=settings)
    (given,) = signing.verify_file(settings / "pack-000000.zip").ingredients
    assert given["title"] == "000000.mid (in pack-000000.zip)"
    assert given["manifest"]["signer"] == "genforge local signer"


def test_no_private_paths_in_any_published_file(image_model, music_model, level_model, home,
                                                capsys):
    """Every file that can leave the machine, in every format genforge writes (PNG chunks, XSB
    comments, MIDI text events, MusicXML fields, WAV and zip manifests, model cards), is free
    of the user's home and of the model folders' paths; only the local log keeps them."""
    out = home / "shared"
    image_model.generate(2, steps=2, display_size=128, out=out / "images")
    image_model.interpolate([0, 1], frames=2, steps=2, display_size=128, out=out / "walk")
    music_model.generate(1, steps=2, bars=2, audio=True, out=out / "music")
    level_model.generate(2, steps=2, out=out / "levels")
    melody = home / "inputs-2" / "tune.mid"
    melody.parent.mkdir()
    shutil.copy(MELODY, melody)
    music_model.harmonize(melody, n=1, steps=2, audio=True, out=out / "harmonized")
    partial = home / "inputs-2" / "room.xsb"
    partial.write_text("#####\n#@??#\n#?.?#\n#####\n")
    level_model.complete(partial, n=1, steps=2, out=out / "completed")
    published = [p for p in out.rglob("*") if p.is_file() and p.name != "generations.jsonl"]
    published += [m.folder / "README.md" for m in (image_model, music_model, level_model)]
    suffixes = {p.suffix for p in published}
    assert {".png", ".xsb", ".mid", ".musicxml", ".wav", ".zip", ".gif", ".json",
            ".md"} <= suffixes
    private = [str(home).encode(), *(str(m.folder).encode()
                                     for m in (image_model, music_model, level_model))]
    leaks = [f"{p.relative_to(home)}: {s.decode()}" for p in published for s in private
             if s in p.read_bytes()]
    assert leaks == []
    # the local log may keep the model's path; the published records name it
    local = [json.loads(line) for line in
             (out / "images" / "generations.jsonl").read_text().splitlines()]
    assert {r["model"] for r in local} == {"sprites-run"}
    assert {r["model_path"] for r in local} == {str(image_model.folder)}
