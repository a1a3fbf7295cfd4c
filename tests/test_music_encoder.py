"""The domain encoder on music: musical views, a self-describing file, FD-<name> in evaluation.

Four chorales copied from music21's corpus, two-bar crops, an encoder trained for a few dozen
steps and a two-step model: the file runs in seconds.
"""
import shutil

import pytest
import torch

import genforge
from genforge import api
from genforge.cli import main
from genforge.errors import ConfigError
from genforge.metrics.encoder import default_encoder_dir, load_encoder
from genforge.metrics.encoder_training import train_encoder
from genforge.modalities.base import Dataset
from genforge.music import augment, corpus
from genforge.music import representation as rep

CHORALES = ("bwv253", "bwv267", "bwv281", "bwv347")  # four-part 4/4 chorales in music21's corpus
DATA = {"split": "all", "bars": 2, "transpose": 1}
TINY = ["--model-channels", "8", "--channel-mult", "1,2", "--num-blocks", "1",
        "--attn-resolutions", "", "--batch-size", "8", "--preview-count", "2", "--progress", "none",
        "--device", "cpu"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory, one_thread):
    """(folder, model, data, encoder path): the encoder sits in the cache under the model's data."""
    folder = tmp_path_factory.mktemp("chorales")
    paths = {p.name.split(".")[0]: p for p in corpus.bach_chorale_paths()}
    for name in CHORALES:
        shutil.copy(paths[name], folder)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GENFORGE_CACHE", str(tmp_path_factory.mktemp("cache")))
        run = tmp_path_factory.mktemp("encoder-run") / "run"
        assert main(["train", str(folder), "--run", str(run), "--steps", "2", "--bars", "2",
                     "--transpose", "1", "--split", "all", *TINY]) == 0
        model = genforge.load(run / "model", device="cpu")
        data = api.open_training_data(api.resolve_config(str(folder), None, **DATA).data)[0]
        assert data.fingerprint == model.manifest["dataset"]["fingerprint"]
        # dim 8: evaluation below draws a dozen samples, and FD needs more samples than features
        path = train_encoder(data, default_encoder_dir() / f"{data.fingerprint[:16]}.safetensors",
                             name="chorales", steps=30, batch_size=32, dim=8, seed=0)
        yield folder, model, data, path


def test_transposition_moves_pitches_and_keeps_rests(setup):
    items = setup[2].items[:40]
    x = rep.satb_to_model(items)
    g = torch.Generator().manual_seed(0)
    shifts = augment.random_shifts(x, 5, g)
    assert shifts.abs().max() <= 5 and shifts.abs().max() > 0
    moved = rep.satb_from_model(augment.transpose(x, shifts))
    for item, shift, out in zip(items, shifts, moved):
        assert (torch.from_numpy(rep.transpose_satb(item.numpy(), int(shift))) == out).all()
    other = augment.random_shifts(x, 5, g, avoid=shifts)
    assert (other != shifts).all()  # two views are always two keys


def test_views_are_valid_music_a_bar_shorter(setup):
    x = rep.satb_to_model(setup[2].items[:64])
    g = torch.Generator().manual_seed(1)
    view = augment.augment(x, augment.STRONG, g)
    assert view.shape == (len(x), 8, 32 - 8, 48)  # 2 bars: at most a quarter, 2 beats, is cut
    assert ((view[:, :4] > 0).sum(-1) == 1).all()  # one bin (pitch or rest) per voice and step
    codes = rep.satb_from_model(view)
    assert (codes[:, :, 0][codes[:, :, 0] > 0] >= rep.ONSET).all()  # the window starts attacked
    dropped = augment.drop_voice(x, 1.0, g)
    assert ((dropped[:, :4, :, 0] > 0).all(dim=2).sum(dim=1) >= 1).all()


def test_music_encoder_file_describes_itself_and_reads_integer_items(setup):
    folder, _, data, path = setup
    encoder = load_encoder(path)
    meta = encoder.metadata
    assert encoder.kind == meta["kind"] == "music" and meta["item_shape"] == [4, 32]
    assert meta["mode"] == "self-supervised" and meta["arch"]["channels"] == 8
    assert meta["augment"] == {"transpose": 5, "beats": 4, "drop": 0.3}
    validation = meta["validation"]
    assert set(validation) == {"items", "alignment", "retrieval_items", "retrieval_accuracy"}
    assert 1 <= validation["retrieval_items"] <= validation["items"]
    assert 0 <= validation["retrieval_accuracy"] <= 1 and 0 < validation["alignment"] <= 1
    features = encoder.features(data.items[:20])
    assert features.shape == (20, 8) and features.dtype == torch.float32
    assert torch.equal(features, encoder.features(data.items[:20].long()))
    with pytest.raises(ConfigError, match="integer music items of shape"):
        encoder.features(rep.satb_to_model(data.items[:2]))
    with pytest.raises(ConfigError, match="integer music items of shape"):
        encoder.features(data.items[:2, :, :16])


def test_train_features_trains_music_and_refuses_piano_rolls(setup, tmp_path):
    folder = setup[0]
    info = api.train_features(str(folder), tmp_path / "m.safetensors", steps=3, device="cpu",
                              **DATA)
    assert info["kind"] == "music" and info["dim"] == 64 and info["name"] == folder.name
    rolls = Dataset("music", torch.zeros(4, 88, 32, dtype=torch.uint8), None, [], "rolls")
    with pytest.raises(ConfigError, match="SATB music"):
        train_encoder(rolls, tmp_path / "r.safetensors", steps=1)


def test_evaluate_reports_fd_on_the_cached_music_encoder(setup, tmp_path, monkeypatch):
    folder, model, _, path = setup
    monkeypatch.setenv("GENFORGE_CACHE", str(path.parent.parent))
    result = api.evaluate(model.folder, str(folder), n=12, steps=3, device="cpu",
                          data_options={"split": "all"}, out=tmp_path / "eval")
    labels = {r["label"]: r for r in result["records"]}
    assert labels["FD-chorales"]["value"] >= 0 and labels["FD-chorales"]["generated"] == 12
    assert "KID-chorales" in labels and "precision" in labels
    assert labels["pitch_class_entropy"]["extractor"] == "symbolic"  # the musical metrics stay
    # too few samples for the features: the musical metrics alone, with a warning, no failure
    with pytest.warns(UserWarning, match="too few for FD-chorales"):
        result = api.evaluate(model.folder, str(folder), n=6, steps=3, device="cpu",
                              data_options={"split": "all"}, out=tmp_path / "few")
    assert not any(r["metric"] == "fd" for r in result["records"])
    # no encoder in the cache: the musical metrics, as before
    monkeypatch.setenv("GENFORGE_CACHE", str(tmp_path / "empty"))
    result = api.evaluate(model.folder, str(folder), n=12, steps=3, device="cpu",
                          data_options={"split": "all"}, out=tmp_path / "none")
    assert {r["extractor"] for r in result["records"]} == {"symbolic"}
    result = api.evaluate(model.folder, str(folder), n=12, steps=3, device="cpu", extractor=str(path),
                          data_options={"split": "all"}, out=tmp_path / "given")
    assert any(r["label"] == "FD-chorales" for r in result["records"])
