"""Untrusted level files, legends, JSON, exported model configs and IDX files: each crash class the
fuzzing pass of issue 19 found, with its minimal input, now ends as one genforge error line naming
the file and field, or as a skipped item with its reason, never a traceback or a blow-up."""
from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from genforge import export, io
from genforge.errors import CheckpointError, DataError
from genforge.families import ModelSpec
from genforge.levels import formats, sources
from genforge.levels.formats import LevelError, decode_lurd, read_kgoldrunner, read_legend
from genforge.modalities import fashion_mnist

FIXTURES = Path(__file__).parent / "fixtures"
BOARD = "#####\n#@$.#\n#####\n"


def one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert message and "\n" not in message
    return message


# ---- Sokoban XSB: run-length solutions ----------------------------------------------------------

BAD_SOLUTIONS = {  # the fuzzing pass's crash classes: RecursionError, MemoryError, OverflowError, ValueError
    "nested 1,000 deep": ("2(" * 1000 + "r" + ")" * 1000, "nest more than 100 deep"),
    "eleven-digit count": ("99999999999r", "more than 500,000 moves"),
    "twenty-digit count": ("9" * 20 + "r", "more than 500,000 moves"),
    "counts that multiply": ("1000(1000(r))", "more than 500,000 moves"),
    "superscript digits": ("\u00b2r", "'\u00b2'"),
    "unbalanced": ("r)", "')'"),
}


@pytest.mark.parametrize("solution, reason", BAD_SOLUTIONS.values(), ids=BAD_SOLUTIONS.keys())
def test_a_bad_solution_skips_its_level_naming_the_file_not_the_folder(tmp_path, solution, reason):
    shutil.copy(FIXTURES / "levels" / "sokoban" / "tiny.xsb", tmp_path / "good.xsb")
    (tmp_path / "bad.xsb").write_text(f"; Fine\n{BOARD}Solution: R\n\n; Broken\n{BOARD}"
                                      f"Solution: {solution}\n", encoding="utf-8")
    levels, skipped, _ = sources.load_path(str(tmp_path))
    assert sorted(Path(lv.name).name for lv in levels) == [
        "bad.xsb#Fine", "good.xsb#Corner", "good.xsb#One Push", "good.xsb#Two Boxes"]
    ((name, why),) = skipped
    assert name == f"{tmp_path / 'bad.xsb'}#Broken" and "Solution" in why and reason in why


@pytest.mark.parametrize("solution, reason", BAD_SOLUTIONS.values(), ids=BAD_SOLUTIONS.keys())
def test_decode_lurd_refuses_before_expanding(solution, reason):
    with pytest.raises(LevelError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        decode_lurd(solution)


def test_decode_lurd_still_expands_long_real_solutions():
    assert decode_lurd("500(lurd)") == "lurd" * 500
    assert len(decode_lurd(f"{formats.MAX_MOVES}r")) == formats.MAX_MOVES


def test_a_huge_board_is_skipped_before_any_per_tile_work(tmp_path):
    rows = ["#" * 3000] + ["#" + " " * 2998 + "#"] * 2998 + ["#" * 3000]
    rows[1] = "#@$." + " " * 2995 + "#"
    (tmp_path / "big.xsb").write_text("\n".join(rows) + "\n")
    levels, skipped, _ = sources.load_path(str(tmp_path))
    assert not levels and skipped == [(str(tmp_path / "big.xsb"), "3000x3000 tiles: larger than 256x256")]


def test_a_level_file_over_the_size_limit_is_skipped_unread(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "MAX_FILE_BYTES", 100)
    (tmp_path / "long.xsb").write_text(BOARD * 20)
    assert sources.load_path(str(tmp_path))[1] == [(str(tmp_path / "long.xsb"),
                                                    "larger than 0 MiB: not a level file")]


# ---- KGoldrunner ---------------------------------------------------------------------------------

def test_kgoldrunner_headers_take_ascii_digits_only():
    layout = "//  " + " " * 559 + "R"
    text = f"// L\u00b2\u00b3\u00b9\n{layout}\n// L002\n{layout}\n"
    assert [level.number for level in read_kgoldrunner(text)] == [2]


# ---- legends -------------------------------------------------------------------------------------

BAD_LEGENDS = {
    "not an object": ("[]", "a legend is a JSON object, not a list"),
    "tile types a number": ('{"tiles": {"a": 5}}', "legend tile 'a'"),
    "order a number": ('{"tiles": {"a": ["solid"]}, "order": 5}', 'legend "order" 5'),
    "aliases a number": ('{"tiles": {"a": ["solid"]}, "aliases": 3}', 'legend "aliases"'),
    "alias to no tile": ('{"tiles": {"a": ["solid"]}, "aliases": {"b": "z"}}', "alias 'b' -> 'z'"),
    "filler a list": ('{"tiles": {"a": ["solid"]}, "filler": ["a"]}', 'legend "filler"'),
    "game a number": ('{"tiles": {"a": ["solid"]}, "game": 7}', 'legend "game"'),
    "300 tiles": (json.dumps({"tiles": {chr(0x100 + i): ["x"] for i in range(300)}}), "at most 256"),
    "nested 100,000 deep": ("[" * 100_000 + "]" * 100_000, "nests lists or objects more than 64 deep"),
    "nested 100 deep": ("[" * 100 + "]" * 100, "more than 64 deep"),
    "not JSON": ('{"tiles": ', "legend is not valid JSON"),
}


@pytest.mark.parametrize("text, message", BAD_LEGENDS.values(), ids=BAD_LEGENDS.keys())
def test_a_bad_legend_is_one_line_naming_the_file_and_field(tmp_path, text, message):
    (tmp_path / "legend.json").write_text(text, encoding="utf-8")
    with pytest.raises(DataError) as err:
        read_legend(tmp_path / "legend.json")
    assert one_line(err).startswith(f"{tmp_path / 'legend.json'}: ") and message in str(err.value)
    shutil.copy(FIXTURES / "levels" / "grids" / "a.txt", tmp_path)
    with pytest.raises(DataError, match="legend"):  # a folder with that legend: the same line
        sources.load_path(str(tmp_path))


# ---- JSON in general -----------------------------------------------------------------------------

def test_read_json_is_bounded_in_size_and_depth(tmp_path):
    (tmp_path / "a.json").write_text('{"a": [' + "1, " * 500 + "1]}")
    assert len(io.read_json(tmp_path / "a.json")["a"]) == 501
    with pytest.raises(CheckpointError, match="larger than 0 MiB"):
        io.read_json(tmp_path / "a.json", "model config", max_bytes=1000)
    (tmp_path / "deep.json").write_text("[" * 5000 + "]" * 5000)
    with pytest.raises(CheckpointError, match=r"deep.json: model config nests .* more than 64 deep"):
        io.read_json(tmp_path / "deep.json", "model config")
    with pytest.raises(CheckpointError, match="cannot be read"):
        io.read_json(tmp_path, "model config")
    (tmp_path / "long.json").write_text('{"a": ' + "9" * 5000 + "}")  # past int()'s digit limit
    with pytest.raises(CheckpointError, match=r"long.json: model config is not valid JSON "
                                              r"\(Exceeds the limit \(4300 digits\)"):
        io.read_json(tmp_path / "long.json", "model config")


# ---- exported model configs ----------------------------------------------------------------------

def model_config() -> dict:
    return json.loads((FIXTURES / "fuzz" / "model-config.json").read_text())


def edit(config: dict, path: str, value) -> dict:
    """The config with the value at a dotted path replaced (or deleted when value is ...)."""
    *parents, last = path.split(".")
    node = config
    for key in parents:
        node = node[key]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return config


BAD_CONFIGS = {
    "not an object": (lambda c: [c], "not a genforge model config"),
    "run_config a list": (lambda c: edit(c, "run_config", []), "run_config must be an object"),
    "a section a number": (lambda c: edit(c, "run_config.network", 5), "run_config must be an object"),
    "no family": (lambda c: edit(c, "family", ...), "family must name a model family"),
    "families disagree": (lambda c: edit(c, "run_config.family", "gan"), "disagrees with family"),
    "no modality": (lambda c: edit(c, "modality", ...), "modality must name a content kind"),
    "modality a list": (lambda c: edit(c, "modality", ["image"]), "modality must name"),
    "no item_shape": (lambda c: edit(c, "item_shape", ...), "item_shape must list"),
    "item_shape a string": (lambda c: edit(c, "item_shape", "abc"), "item_shape must list"),
    "item_shape with 0": (lambda c: edit(c, "item_shape", [1, 0, 12]), "item_shape must list"),
    "item_shape with -1": (lambda c: edit(c, "item_shape", [1, -1, 12]), "item_shape must list"),
    "item_shape absurd": (lambda c: edit(c, "item_shape", [1, 10 ** 9, 10 ** 9]), "item_shape must list"),
    "item_shape of booleans": (lambda c: edit(c, "item_shape", [True, 12, 12]), "item_shape must list"),
    "2-D image shape": (lambda c: edit(c, "item_shape", [12, 12]), "does not fit image items"),
    "2 channels": (lambda c: edit(c, "item_shape", [2, 12, 12]), "does not fit image items"),
    "2-D model_shape": (lambda c: edit(c, "model_shape", [12, 12]), "model_shape [12, 12] is not"),
    "class_names a number": (lambda c: edit(c, "class_names", 3), "class_names must list"),
    "class_names numbers": (lambda c: edit(c, "class_names", [1, 2]), "class_names must list"),
    "vocabulary a list": (lambda c: edit(c, "vocabulary", [1]), "vocabulary must be an object"),
    "a newer format": (lambda c: edit(c, "format_version", 2), "format_version 2"),
    "sigma_data infinite": (lambda c: edit(c, "run_config.diffusion.sigma_data", float("inf")),
                            "run_config.diffusion.sigma_data is inf"),
    "num_blocks past 64 bits": (lambda c: edit(c, "run_config.network.num_blocks", 10 ** 30),
                                "run_config.network.num_blocks is 100000000000000000000000... (huge)"),
    "a key with a newline": (lambda c: edit(c, "run_config.augment.augme\nt_p", 0.5),
                             r"unknown option augment.augme\nt_p"),
    "a number under an odd key": (lambda c: edit(c, "run_config.train.a\nb", float("nan")),
                                  "run_config.train['a\\nb'] is nan"),
    "a level legend without tiles": (lambda c: {**c, "modality": "level", "item_shape": [10, 10],
                                                "vocabulary": {"tiles": 5}}, "vocabulary: a legend"),
}


@pytest.mark.parametrize("change, message", BAD_CONFIGS.values(), ids=BAD_CONFIGS.keys())
def test_a_bad_model_config_is_one_checkpoint_error_naming_the_file(tmp_path, change, message):
    (tmp_path / "manifest.json").write_text("{}")
    (tmp_path / "config.json").write_text(json.dumps(model_config()))
    assert export.read_model_folder(tmp_path)[0] == model_config()  # the fixture itself is fine
    (tmp_path / "config.json").write_text(json.dumps(change(model_config())))
    with pytest.raises(CheckpointError) as err:
        export.read_model_folder(tmp_path)
    assert one_line(err).startswith(f"{tmp_path / 'config.json'}: ") and message in str(err.value)


def test_model_spec_from_dict_names_the_field():
    with pytest.raises(CheckpointError, match="item_shape must list"):
        ModelSpec.from_dict({"modality": "image"})
    with pytest.raises(CheckpointError, match="a model spec is a JSON object"):
        ModelSpec.from_dict([])
    spec = ModelSpec("level", (10, 12), (), (7, 10, 12), {"game": "sokoban"})
    assert ModelSpec.from_dict(spec.to_dict()) == spec


# ---- IDX files -----------------------------------------------------------------------------------

def test_an_idx_header_is_checked_before_anything_is_allocated(tmp_path):
    huge = bytes([0, 0, 8, 3]) + np.array([4_000_000_000, 28, 28], ">u4").tobytes()
    (tmp_path / "a-idx3-ubyte.gz").write_bytes(gzip.compress(huge))
    with pytest.raises(DataError, match=r"a-idx3-ubyte.gz: its header promises shape \(4000000000, "
                                        r"28, 28\) .* more than the 256 MiB"):
        fashion_mnist.read_idx(tmp_path / "a-idx3-ubyte.gz")


def test_an_idx_gzip_bomb_is_read_only_as_far_as_its_header_says(tmp_path):
    images = fashion_mnist.encode_idx(np.zeros((2, 28, 28), np.uint8))
    (tmp_path / "b-idx3-ubyte.gz").write_bytes(gzip.compress(images + bytes(200 << 20), 1))
    with pytest.raises(DataError, match=r"header says shape \(2, 28, 28\) \(1584 bytes\) but the "
                                        "file has more bytes"):
        fashion_mnist.read_idx(tmp_path / "b-idx3-ubyte.gz")
    (tmp_path / "c-idx3-ubyte.gz").write_bytes(gzip.compress(images))
    assert fashion_mnist.read_idx(tmp_path / "c-idx3-ubyte.gz").shape == (2, 28, 28)
