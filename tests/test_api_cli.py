"""The library surface and the CLI over it: train, export, load, generate, info, errors."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from PIL import Image

import genforge
from genforge.cli import main
from genforge.errors import CheckpointError, ConfigError

TINY = ["--model-channels", "8", "--channel-mult", "1,2", "--num-blocks", "1",
        "--attn-resolutions", "", "--batch-size", "8", "--resolution", "12",
        "--preview-count", "4", "--progress", "none"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny model trained through the CLI on the bundled sample, shared by the tests below."""
    run = tmp_path_factory.mktemp("cli") / "run"
    assert main(["train", "fashion-mnist-sample", "--run", str(run), "--steps", "4", *TINY]) == 0
    return run


def test_train_writes_the_run_folder(trained):
    for name in ("checkpoint.safetensors", "config.json", "stats.jsonl", "summary.json",
                 "summary.md", "data_report.json", "samples/step-0000000.png"):
        assert (trained / name).exists(), name
    summary = json.loads((trained / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["steps"] == 4
    assert summary["dataset"]["items"] == 4000 and len(summary["dataset"]["class_names"]) == 10


def test_exported_model_is_self_describing(trained):
    folder = trained / "model"
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json",
                                                         "manifest.json", "model.safetensors"]
    manifest = json.loads((folder / "manifest.json").read_text())
    for key in ("genforge_version", "torch_version", "config_hash", "dataset", "seed",
                "weights_sha256"):
        assert key in manifest
    assert len(manifest["dataset"]["fingerprint"]) == 64
    model = genforge.load(folder)
    assert model.class_names[0] == "T-shirt/top"
    assert model.info()["item_shape"] == [1, 12, 12]


def test_load_rebuilds_the_ema_weights_exactly(trained):
    from genforge import io
    model = genforge.load(trained / "model", device="cpu")
    ckpt, _ = io.load_tensors(trained / "checkpoint.safetensors")
    for key, value in model.module.state_dict().items():
        assert torch.equal(value, ckpt[f"ema.{key}"]), key


def test_generate_is_per_sample_seeded_whatever_the_batch(trained):
    model = genforge.load(trained / "model", device="cpu")
    together = model.generate(6, seed=10, batch_size=6)
    apart = model.generate(6, seed=10, batch_size=2)
    later = model.generate(2, seed=14, batch_size=2)  # items 4 and 5 of the runs above
    assert together.dtype == torch.uint8 and together.shape == (6, 1, 12, 12)
    assert (together.int() - apart.int()).abs().max() <= 1
    assert (together[4:].int() - later.int()).abs().max() <= 1


def test_generate_cli_writes_images_grid_and_log(trained, tmp_path):
    out = tmp_path / "out"
    assert main(["generate", str(trained / "model"), "-n", "5", "--steps", "3", "--seed", "7",
                 "--class", "Trouser", "--guidance", "2", "--out", str(out)]) == 0
    pngs = sorted(p.name for p in out.glob("0*.png"))
    assert pngs == [f"{i:06d}.png" for i in range(7, 12)]
    assert Image.open(out / pngs[0]).size == (12, 12)
    assert (out / "grid.png").exists()
    log = json.loads((out / "generation.json").read_text())
    assert log["sampler"] == "dpmpp-2m" and log["guidance"] == 2.0
    assert [item["seed"] for item in log["items"]] == list(range(7, 12))
    assert {item["class"] for item in log["items"]} == {"Trouser"}


def test_guidance_changes_the_output(trained):
    model = genforge.load(trained / "model", device="cpu")
    torch.manual_seed(0)
    with torch.no_grad():  # 4 training steps barely move the zero-initialised output layer
        for p in model.module.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    plain = model.generate(2, steps=3, class_label=1, guidance=1.0)
    guided = model.generate(2, steps=3, class_label=1, guidance=4.0)
    assert not torch.equal(plain, guided)


@pytest.mark.parametrize("argv, message", [
    (["train", "/no/such/folder", "--steps", "1"], "not found"),
    (["train", "fashion-mnist-sample", "--steps", "1", "--channels", "2"], "channels"),
    (["train", "fashion-mnist-sample", "--steps", "-3"], "train.steps"),
    (["train", "fashion-mnist-sample", "--steps", "1", "--lr", "fast"], "train.lr"),
    (["train", "fashion-mnist-sample"], "--steps N or --minutes M"),
    (["train", "fashion-mnist-sample", "--steps", "1", "--device", "cuda:7"], "device"),
    (["generate", "/no/such/model"], "not a model folder"),
    (["info", "/no/such/model"], "not a model folder"),
])
def test_bad_input_is_one_clear_line_and_a_nonzero_exit(argv, message, capsys, tmp_path):
    if argv[0] == "train":
        argv = [*argv, "--run", str(tmp_path / "r"), "--progress", "none"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("genforge: error:") and message in err
    assert "\n" not in err and "Traceback" not in err


def test_generate_rejects_bad_options(trained, capsys):
    folder = str(trained / "model")
    assert main(["generate", folder, "--class", "Hat"]) == 2
    assert "unknown class 'Hat'" in capsys.readouterr().err
    assert main(["generate", folder, "--class", "12"]) == 2
    assert main(["generate", folder, "--steps", "0"]) == 2


def test_dry_run_prints_the_resolved_config_and_trains_nothing(tmp_path, capsys):
    assert main(["train", "fashion-mnist-sample", "--run", str(tmp_path / "r"), "--dry-run",
                 "--steps", "9", "--preset", "gpu", "--batch-size", "2", "--resolution", "8",
                 "--device", "cpu", "--precision", "fp32"]) == 0  # the preflight measures steps
    config = json.loads(capsys.readouterr().out)
    assert config["train"]["steps"] == 9 and config["network"]["model_channels"] == 128
    assert not (tmp_path / "r").exists()


def test_info_describes_the_model(trained, capsys):
    assert main(["info", str(trained / "model")]) == 0
    out = capsys.readouterr().out
    assert "diffusion model for image items of shape [1, 12, 12]" in out and "Trouser" in out


def test_damaged_model_folder_is_a_clear_error(trained, tmp_path):
    import shutil
    broken = tmp_path / "broken"
    shutil.copytree(trained / "model", broken)
    (broken / "model.safetensors").write_bytes(b"not tensors")
    with pytest.raises(CheckpointError, match="model.safetensors"):
        genforge.load(broken)


def test_python_api_matches_the_readme_example(tmp_path):
    summary = genforge.train("fashion-mnist-sample", tmp_path / "demo", steps=2, model_channels=8,
                             channel_mult=(1, 2), num_blocks=1, attn_resolutions=(),
                             batch_size=4, resolution=12, preview_count=2)
    assert summary["status"] == "finished"
    model = genforge.load(tmp_path / "demo" / "model")
    images = model.generate(3, seed=0, steps=2, out=tmp_path / "samples")
    assert images.shape == (3, 1, 12, 12)
    with pytest.raises(ConfigError):
        genforge.train("fashion-mnist-sample", tmp_path / "x", steps=1, batch_sise=3)


def test_module_entry_point_help():
    out = subprocess.run([sys.executable, "-m", "genforge", "--help"], capture_output=True,
                         text=True, check=True).stdout
    for command in ("train", "generate", "info", "demo"):
        assert command in out


def test_demo_command_end_to_end(tmp_path, capsys):
    """The quick start's path, with a seconds-long budget: a 10x10 grid, a model and a summary."""
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--minutes", "0.01"]) == 0
    grid = Image.open(out / "samples" / "grid.png")
    assert grid.size == (10 * 30 + 2, 10 * 30 + 2)  # 28 px items with 2 px gaps, one class a column
    assert len(list((out / "samples").glob("0*.png"))) == 100
    assert genforge.load(out / "run" / "model").class_names[-1] == "Ankle boot"
    assert "genforge demo:" in (out / "summary.txt").read_text()
    assert "grid.png" in capsys.readouterr().out


def test_train_on_a_folder_of_rgba_sprites_and_generate_rgba(tmp_path):
    """A user's own folder: class sub-folders, RGBA kept end to end."""
    import numpy as np
    rng = np.random.default_rng(0)
    for cls in ("hero", "slime"):
        for i in range(6):
            path = tmp_path / "sprites" / cls / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (10, 10, 4), np.uint8), "RGBA").save(path)
    run = tmp_path / "run"
    tiny = [a for a in TINY if a not in ("--resolution", "12")]
    assert main(["train", str(tmp_path / "sprites"), "--run", str(run), "--steps", "2", *tiny]) == 0
    model = genforge.load(run / "model")
    assert model.class_names == ["hero", "slime"] and model.info()["item_shape"] == [4, 10, 10]
    assert main(["generate", str(run / "model"), "-n", "2", "--steps", "2", "--class", "slime",
                 "--out", str(tmp_path / "out")]) == 0
    assert Image.open(tmp_path / "out" / "000000.png").mode == "RGBA"
