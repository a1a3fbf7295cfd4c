"""Levels end to end through the CLI: train on XSB levels, generate them in the game's format
with checks, --playable-only keeps drawing, completion keeps the given tiles, evaluation."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import genforge
from genforge import api, generation
from genforge.modalities import MODALITIES
from genforge.cli import main
from genforge.levels import formats, sokoban

TINY = ["--model-channels", "8", "--channel-mult", "1,2", "--num-blocks", "1",
        "--attn-resolutions", "", "--batch-size", "4", "--preview-count", "2", "--progress", "none",
        "--device", "cpu"]
LEVELS = "tests/fixtures/levels/sokoban/tiny.xsb"  # three hand-made CC0 levels


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    run = tmp_path_factory.mktemp("levels") / "run"
    assert main(["train", LEVELS, "--run", str(run), "--steps", "2", "--level-size", "8",
                 "--split", "all", *TINY]) == 0
    return genforge.load(run / "model", device="cpu")


def test_a_folder_of_xsb_levels_trains_a_level_model(model):
    assert model.spec.modality == "level" and model.spec.item_shape == (8, 8)
    assert model.spec.model_shape == (7, 8, 8)  # one channel per Sokoban tile
    assert model.modality.legend.chars == formats.SOKOBAN.chars


def test_generate_writes_xsb_with_each_levels_check(model, tmp_path, capsys):
    out = tmp_path / "levels"
    assert main(["generate", str(model.folder), "-n", "3", "--steps", "3", "--repair",
                 "--device", "cpu", "--out", str(out)]) == 0
    assert "generated levels" in capsys.readouterr().out
    log = json.loads((out / "generation.json").read_text())
    assert log["playability"]["tried"] == 3 and log["playability"]["repair"] is True
    for item in log["items"]:
        level = formats.read_xsb((out / item["file"]).read_text())[0]
        grid = formats.parse_grid(level.board, formats.SOKOBAN)
        assert sokoban.check(grid) is None  # repaired: one player, boxes == goals, closed
        assert item["status"] in ("solvable", "unsolvable", "unknown")
        assert json.loads(level.metadata["Genforge"])["seed"] == item["seed"]
    assert (out / "pack-000000.zip").exists()


def test_playable_only_draws_until_enough_levels_pass(model, tmp_path, monkeypatch):
    """Seeds that are multiples of 3 make a solvable level, the others an unplayable one."""
    solvable = formats.parse_grid("#####\n#@$.#\n#####", formats.SOKOBAN)
    good = np.full((8, 8), formats.SOKOBAN.index("#"), np.uint8)
    good[:3, :5] = solvable
    bad = good.copy()
    bad[1, 1] = formats.SOKOBAN.index(" ")  # no player

    def fake(family, module, spec, config, n, *, seed=0, seeds=None, **_):
        seeds = seeds if seeds is not None else list(range(seed, seed + n))
        return torch.from_numpy(np.stack([good if s % 3 == 0 else bad for s in seeds]))

    monkeypatch.setattr(generation.model, "generate_items", fake)
    out = tmp_path / "playable"
    items = model.generate(4, seed=0, playable_only=True, batch_size=4, sign=False, out=out)
    log = json.loads((out / "generation.json").read_text())
    assert len(items) == 4 and all(item["playable"] for item in log["items"])
    assert [item["seed"] for item in log["items"]] == [0, 3, 6, 9]
    assert log["playability"]["acceptance_rate"] == round(4 / log["playability"]["tried"], 4)
    assert log["items"][0]["solution_moves"] == 1


def test_complete_keeps_the_given_tiles(model, tmp_path):
    partial = tmp_path / "partial.xsb"
    partial.write_text("#####\n#@??#\n#?.?#\n#####\n")
    items = model.complete(partial, n=2, steps=3, sign=False, out=tmp_path / "done")
    given = formats.parse_grid("#####\n#@  #\n# . #\n#####", formats.SOKOBAN)
    mask = np.array([[c != "?" for c in row] for row in "#####\n#@??#\n#?.?#\n#####".split("\n")])
    for item in items.numpy():
        assert (item[:4, :5][mask] == given[mask]).all()


def test_evaluate_reports_the_level_metrics(model, tmp_path):
    result = api.evaluate(model.folder, LEVELS, n=4, steps=3, device="cpu", out=tmp_path / "eval")
    labels = {r["label"] for r in result["records"]}
    assert {"playable_share", "novel_share", "diversity", "pattern_kl_2x2",
            "tile_distribution_error"} <= labels


def test_level_mistakes_are_one_line(model, tmp_path, capsys):
    partial = tmp_path / "wide.xsb"
    partial.write_text("#" * 12 + "\n")
    assert main(["complete", str(model.folder), str(partial), "--device", "cpu",
                 "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "does not fit this model's 8x8" in err and err.count("\n") == 1
    assert main(["generate", str(model.folder), "--bars", "4", "--device", "cpu",
                 "--out", str(tmp_path / "y")]) == 2
    assert "--bars sets the length of music" in capsys.readouterr().err



def test_level_options_on_an_image_model_are_refused_before_sampling(model, monkeypatch):
    """The same model object seen as an image model: the refusal comes before any sampling."""
    from genforge.errors import ConfigError
    from genforge.families import ModelSpec
    image = api.GenerativeModel.__new__(api.GenerativeModel)
    image.__dict__.update(model.__dict__, spec=ModelSpec("image", (1, 8, 8)),
                          modality=MODALITIES["image"])
    monkeypatch.setattr(generation.model, "generate_items",
                        lambda *a, **k: pytest.fail("sampled first"))
    with pytest.raises(ConfigError, match="--min-boxes are for level models"):
        image.generate(2, repair=True)
    with pytest.raises(ConfigError, match="--min-moves and --min-boxes are for level models"):
        image.generate(2, min_moves=5)
