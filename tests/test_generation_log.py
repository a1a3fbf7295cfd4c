"""Every generated file says how it was made, and --reject-copies keeps training copies out."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import genforge
from genforge.cli import main
from genforge.errors import ConfigError
from genforge.modalities import MODALITIES
from genforge.modalities.image import read_metadata

TINY = ["--model-channels", "8", "--channel-mult", "1,2", "--num-blocks", "1",
        "--attn-resolutions", "", "--batch-size", "8", "--resolution", "12",
        "--preview-count", "4", "--progress", "none", "--device", "cpu"]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    run = tmp_path_factory.mktemp("log") / "run"
    assert main(["train", "fashion-mnist-sample", "--run", str(run), "--steps", "2", *TINY]) == 0
    return genforge.load(run / "model", device="cpu")


def test_each_file_carries_its_record_and_the_log_grows(model, tmp_path):
    out = tmp_path / "out"
    model.generate(3, seed=5, steps=4, guidance=2.0, class_label="Bag", out=out)
    record = read_metadata(out / "000006.png")
    assert record["seed"] == 6 and record["class"] == "Bag" and record["steps"] == 4
    assert record["guidance"] == 2.0 and record["sampler"] == "dpmpp-2m"
    assert record["guidance_interval"] == [0.3, 5.0]  # the class-conditional image default
    assert record["model_sha256"] == model.manifest["weights_sha256"]
    # the record is enough to make the same image again
    again = model.generate(1, seed=record["seed"], steps=record["steps"],
                           guidance=record["guidance"], class_label=record["class"],
                           guidance_interval=record["guidance_interval"])
    with Image.open(out / "000006.png") as written:
        assert torch.equal(again[0, 0], torch.from_numpy(np.asarray(written)))
    model.generate(2, seed=0, steps=4, out=out)
    lines = [json.loads(line) for line in (out / "generations.jsonl").read_text().splitlines()]
    assert [line["seed"] for line in lines] == [5, 6, 7, 0, 1]


def test_reject_copies_drops_samples_that_copy_training_items(model, tmp_path):
    samples = model.generate(6, seed=0, steps=4)
    # a training set that holds exact copies of samples 1 and 4 among real images
    real = MODALITIES["image"].open(
        genforge.api.resolve_config("fashion-mnist-sample", None, resolution=12).data).items[:200]
    training = torch.cat([real, samples[[1, 4]]])
    folder = tmp_path / "train"
    MODALITIES["image"].write(training, folder, [f"{i:04d}" for i in range(len(training))])
    out = tmp_path / "out"
    assert main(["generate", str(model.folder), "-n", "6", "--steps", "4", "--device", "cpu",
                 "--reject-copies", "--train-data", str(folder), "--out", str(out)]) == 0
    log = json.loads((out / "generation.json").read_text())
    assert [r["seed"] for r in log["rejected_copies"]] == [1, 4]
    assert {r["nearest_training_item"] for r in log["rejected_copies"]} == {200, 201}
    assert [item["seed"] for item in log["items"]] == [0, 6, 2, 3, 7, 5]


def test_reject_copies_without_the_training_data_is_one_clear_error(model, monkeypatch):
    monkeypatch.setitem(model.manifest["dataset"], "fingerprint", "0" * 64)
    with pytest.raises(ConfigError, match="pass --train-data"):
        model.generate(2, steps=2, reject_copies=True)
