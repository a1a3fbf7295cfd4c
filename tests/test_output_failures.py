"""Output failures are one clear line: an output folder that cannot be written is refused before
any sampling, a disk that fills mid-way leaves the files written so far recorded and says what is
missing, and a full disk during training keeps the last good checkpoint."""
from __future__ import annotations

import errno
import json
from collections import namedtuple

import pytest

import genforge
from genforge import io
from genforge.cli import main
from tiny import TINY, train_tiny
from genforge.generation import outputs
from genforge.training.state import CHECKPOINT_NAME



@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return train_tiny(tmp_path_factory.mktemp("outputs") / "run") / "model"


def full_disk_after(monkeypatch, writes: int, suffix: str = "") -> None:
    """io.write_with fails with ENOSPC once `writes` files (ending in suffix) have been written."""
    real, done = io.write_with, []

    def write_with(path, write):
        if str(path).endswith(suffix):
            if len(done) >= writes:
                raise OSError(errno.ENOSPC, "No space left on device", str(path))
            done.append(path)
        return real(path, write)
    monkeypatch.setattr(io, "write_with", write_with)


def test_an_output_under_a_file_is_refused_before_sampling(model, tmp_path, capsys, monkeypatch):
    (tmp_path / "file").write_text("x")
    monkeypatch.setattr(genforge.generation.model, "generate_items",
                        lambda *a, **k: pytest.fail("sampled before checking the output"))
    assert main(["generate", str(model), "-n", "2", "--no-sign", "--progress", "none",
                 "--out", str(tmp_path / "file" / "out")]) == 2
    err = capsys.readouterr().err
    assert "cannot write to the output folder" in err and "--out" in err and "\n" == err[-1:]
    assert err.count("\n") == 1


def test_too_little_free_space_is_refused_before_sampling(model, tmp_path, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(outputs.shutil, "disk_usage", lambda path: usage(10, 10, 1 << 20))
    with pytest.raises(outputs.OutputError, match="1 MiB free and 64 items need about"):
        genforge.load(model, device="cpu").generate(64, sign=False, out=tmp_path / "out")


def test_a_disk_that_fills_mid_way_records_what_was_written(model, tmp_path, monkeypatch, capsys):
    full_disk_after(monkeypatch, 3)
    out = tmp_path / "out"
    assert main(["generate", str(model), "-n", "6", "--no-sign", "--progress", "none",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "failed (No space left on device) after 3 of 6 items" in err
    assert "missing: grid.png, generation.json, 3 items" in err
    records = [json.loads(line) for line in (out / "generations.jsonl").read_text().splitlines()]
    assert sorted(r["file"] for r in records) == sorted(p.name for p in out.glob("0*.png"))
    assert len(records) == 3


def test_a_full_disk_while_training_keeps_the_last_checkpoint(tmp_path, monkeypatch, capsys):
    run = train_tiny(tmp_path / "run")
    before = (run / CHECKPOINT_NAME).read_bytes()
    full_disk_after(monkeypatch, 0, suffix=".safetensors")  # the checkpoint is the first to fail
    assert main(["train", "fashion-mnist-sample", "--run", str(run), "--steps", "4",
                 "--checkpoint-every", "1", *TINY]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after "genforge: resuming ..."
    assert err.startswith("genforge: error:") and "Traceback" not in err
    assert f"{run / CHECKPOINT_NAME}: could not be written" in err and "previous version is kept" in err
    assert (run / CHECKPOINT_NAME).read_bytes() == before
