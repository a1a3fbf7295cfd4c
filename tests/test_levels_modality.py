"""The level modality: opening sources with a LoadReport, padding and windows, one-hot encoding,
writing files in each game's format, previews, and binding to a saved vocabulary."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genforge.config import DataConfig
from genforge.errors import ConfigError, DataError
from genforge.levels import sources, splits
from genforge.levels.formats import LODE_RUNNER, SOKOBAN, parse_grid, read_kgoldrunner, read_xsb
from genforge.modalities.level import LEVEL, LevelModality

FIXTURES = Path(__file__).parent / "fixtures" / "levels"


def config(source, **extra):
    """The data section for levels at source (every malformed level tolerated and every split
    read, unless extra says)."""
    return DataConfig(**{"source": str(source), "kind": "level", "max_bad_fraction": 1.0,
                         "split": "all", **extra})


def test_open_sokoban_file_reports_malformed_levels(tmp_path):
    (tmp_path / "a.xsb").write_text((FIXTURES / "sokoban" / "tiny.xsb").read_text()
                                    + "\n" + (FIXTURES / "sokoban" / "malformed.xsb").read_text())
    data = LEVEL.open(config(tmp_path))
    assert data.kind == "level" and data.items.dtype == torch.uint8
    assert data.items.shape == (3, 6, 7)  # padded to the largest level
    assert data.report.found == 7 and data.report.loaded == 3 and len(data.report.skipped) == 4
    assert data.vocabulary == SOKOBAN.to_dict() and LEVEL.bind(data.vocabulary).legend == SOKOBAN
    assert data.names[0].endswith("#One Push")
    one_push = data.items[0].numpy()  # centred; the padding is wall
    assert (one_push[:1] == 0).all() and (one_push == 2).sum() == 1


def test_too_many_bad_levels_refused(tmp_path):
    (tmp_path / "bad.xsb").write_text((FIXTURES / "sokoban" / "malformed.xsb").read_text())
    (tmp_path / "good.xsb").write_text("#####\n#@$.#\n#####\n")
    with pytest.raises(DataError, match="malformed"):
        LEVEL.open(config(tmp_path, max_bad_fraction=0.5))


def test_max_size_filter_and_alignment():
    src = FIXTURES / "sokoban" / "tiny.xsb"
    data = LEVEL.open(config(src, max_size="3x6", level_align="top-left"))
    assert data.items.shape == (1, 3, 6) and data.report.loaded == 1
    assert "larger than 3x6" in data.report.skipped[-1][1]
    assert data.items[0, :, :5].tolist() == parse_grid("#####\n#@$.#\n#####", SOKOBAN).tolist()


def test_folder_with_legend_json():
    data = LEVEL.open(config(FIXTURES / "grids"))
    assert LEVEL.bind(data.vocabulary).legend.chars == ("X", "-", "c", "p") and data.items.shape == (2, 4, 5)
    reasons = dict((Path(p).name, r) for p, r in data.report.skipped)
    assert "ragged" in reasons["ragged.txt"] and "unknown character '?'" in reasons["unknown.txt"]


def test_grids_need_a_legend(tmp_path):
    (tmp_path / "a.txt").write_text("BBB\nBMG\nBBB\n")
    with pytest.raises(DataError, match="legend"):
        LEVEL.open(config(tmp_path))
    data = LEVEL.open(config(tmp_path, legend="lode-runner"))
    assert LEVEL.bind(data.vocabulary).legend == LODE_RUNNER and data.items.shape == (1, 3, 3)


def test_crop_windows_cover_the_level():
    level = sources.Level("x", np.arange(20, dtype=np.uint8).reshape(4, 5) % 7)
    items, names, skipped = sources.fit([level], SOKOBAN, "crop", size=(2, 2), stride=2)
    assert items.shape == (6, 2, 2) and not skipped and names[0] == "x@0"
    assert items[-1].tolist() == level.grid[2:, 3:].tolist()


def test_one_hot_round_trip_and_model_shape():
    bound = LEVEL.bind(SOKOBAN.to_dict())
    items = torch.randint(0, 7, (3, 5, 6), dtype=torch.uint8)
    x = bound.to_model(items)
    assert x.shape == (3, 7, 5, 6) and x.dtype == torch.float32 and set(x.unique().tolist()) == {-1, 1}
    assert torch.equal(bound.from_model(x), items)
    assert torch.equal(bound.from_model(x + 0.3 * torch.randn_like(x).clamp(-1, 1)), items)
    assert bound.model_shape((5, 6)) == (7, 5, 6)
    assert LEVEL.bind({}) is LEVEL
    with pytest.raises(ConfigError, match="vocabulary"):
        LEVEL.to_model(items)


def test_write_sokoban_and_preview(tmp_path):
    bound = LevelModality(SOKOBAN)
    items = torch.from_numpy(np.stack([parse_grid("#####\n#@$.#\n#####", SOKOBAN)] * 2))
    paths = bound.write(items, tmp_path, ["a", "b"], metadata=[{"seed": 1}, {"seed": 2}])
    assert [p.name for p in paths] == ["a.xsb", "b.xsb"]
    (level,) = read_xsb(paths[0].read_text())
    assert level.title == "a" and json.loads(level.metadata["Genforge"]) == {"seed": 1}
    assert np.array_equal(parse_grid(level.board, SOKOBAN), items[0].numpy())
    with Image.open(tmp_path / "a.png") as png:
        assert png.size == (5 * 12, 3 * 12) and json.loads(png.text["genforge"]) == {"seed": 1}
    sheet = bound.preview(items, columns=2)
    assert sheet.size == (2 * (60 + 2) + 2, 36 + 4)


def test_write_lode_runner_vglc_and_kgoldrunner(tmp_path):
    rows = ["." * 28] * 18 + ["M" + "." * 26 + "G", "B" * 28]
    item = torch.from_numpy(parse_grid("\n".join(rows), LODE_RUNNER))[None]
    (path,) = LevelModality(LODE_RUNNER).write(item, tmp_path, ["lvl"])
    assert path.name == "lvl.txt" and path.read_text().splitlines() == rows
    (kgr,) = read_kgoldrunner((tmp_path / "game_lvl.txt").read_text())
    assert kgr.rows == rows and (tmp_path / "lvl.png").exists()


def test_named_sokoban_free_sets_up_to_10x10():
    try:
        data = LEVEL.open(config("sokoban", max_size=10))
    except DataError as err:
        pytest.skip(str(err))
    assert data.items.shape[1:] == (10, 10) and len(data) >= 50
    assert all(name.split("/")[-1].startswith(("gri", "xsokoban", "mgerhardy")) for name in data.names)


def test_level_splits_are_fixed_disjoint_and_follow_the_tiles():
    try:
        levels, _ = sources.load_sokoban(None, "all")
    except DataError as err:
        pytest.skip(str(err))
    parts = {s: splits.select(levels, SOKOBAN, s) for s in ("train", "validation", "test")}
    keys = {s: {splits.level_key(lv.grid, SOKOBAN) for lv in part} for s, part in parts.items()}
    assert not (keys["train"] & keys["validation"] or keys["train"] & keys["test"]
                or keys["validation"] & keys["test"])  # no level in two splits
    assert sum(map(len, parts.values())) == len(levels)
    assert 0.05 < len(parts["test"]) / len(levels) < 0.15
    again = {s: [lv.name for lv in splits.select(levels, SOKOBAN, s)] for s in parts}
    assert again == {s: [lv.name for lv in part] for s, part in parts.items()}  # deterministic
    grid = levels[0].grid  # a mirror image of a level is the same level: the same split
    assert splits.level_split(grid[:, ::-1], SOKOBAN) == splits.level_split(grid, SOKOBAN)
    padded = np.pad(grid, 2, constant_values=SOKOBAN.index("#"))  # as written at a model's size
    assert splits.level_key(padded, SOKOBAN) == splits.level_key(grid, SOKOBAN)


def test_split_option_reads_one_part_and_names_an_empty_one():
    train = LEVEL.open(config(FIXTURES / "sokoban" / "tiny.xsb", split="train"))
    assert len(train) == 3  # the fixture's three levels all hash into train
    with pytest.raises(DataError, match="no levels of .* in the test split .*--split all"):
        LEVEL.open(config(FIXTURES / "sokoban" / "tiny.xsb", split="test"))


def test_evaluation_judges_against_the_held_out_test_split():
    from types import SimpleNamespace
    for trained, judged in (("train", "test"), ("all", "all")):
        model = SimpleNamespace(config=SimpleNamespace(data=config("sokoban", split=trained,
                                                                   max_size="10")),
                                spec=SimpleNamespace(item_shape=(10, 10)))
        assert LEVEL.reference_options(model)["split"] == judged


def test_named_lode_runner():
    try:
        data = LEVEL.open(config("lode-runner"))
    except DataError as err:
        pytest.skip(str(err))
    assert data.items.shape[1:] == (20, 28) and len(data) > 400
    assert LEVEL.bind(data.vocabulary).model_shape(data.item_shape) == (8, 20, 28)


def test_nothing_fits_is_an_error_naming_the_reason():
    with pytest.raises(DataError, match="larger than 2x2"):
        LEVEL.open(config(FIXTURES / "sokoban" / "tiny.xsb", max_size=2))


def test_a_set_too_small_for_a_test_split_is_judged_against_all_of_it_and_says_so():
    from genforge.evaluation import _reference
    tiny = str(FIXTURES / "sokoban" / "tiny.xsb")
    reference, note = _reference(LEVEL, tiny, {"split": "test"}, {})
    assert len(reference) == 3 and "no test split" in note and "training items included" in note
    with pytest.raises(DataError, match="test split"):  # asked for by name: refused, not replaced
        _reference(LEVEL, tiny, {"split": "test"}, {"split": "test"})
