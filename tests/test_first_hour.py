"""A new user's first hour: the right family per content kind, a real preflight, checkpoints on a
time cadence, a hopeless --playable-only stopping early, and the small things a user notices."""
from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import genforge
from genforge import api, generation, io
from genforge.cli import main
from tiny import TINY, train_tiny
from genforge.levels import formats, lode_runner
from genforge.levels.playable import check_levels
from genforge.modalities import LEVEL
from genforge.training import loop

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """A tiny class-conditional image model, trained through the CLI."""
    return train_tiny(tmp_path_factory.mktemp("first-hour") / "run")


@pytest.mark.parametrize("source, kind, family", [
    ("fashion-mnist-sample", "image", "diffusion"),
    (str(FIXTURES / "music" / "good"), "music", "discrete"),
    (str(FIXTURES / "levels" / "sokoban"), "level", "discrete"),
])
def test_family_auto_is_the_one_measured_best_for_the_kind(source, kind, family):
    config = api.resolve_config(source)
    assert (config.data.kind, config.family) == (kind, family)
    assert "auto" in api.family_choice(config, "auto")
    assert api.resolve_config(source, family="gan").family == "gan"  # a choice is kept


def test_an_option_of_another_family_says_how_to_retrain(images):
    model = genforge.load(images / "model", device="cpu")
    with pytest.raises(genforge.ConfigError, match="retrain with --family discrete"):
        model.generate(1, rules=True)


def test_a_misspelled_dataset_lists_the_names_and_suggests_one(tmp_path, capsys):
    assert main(["train", "sokobon", "--dry-run", "--run", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'sokoban'?" in err and "bach-chorales" in err and "lode-runner" in err
    assert not (tmp_path / "r").exists()


def test_dry_run_is_a_preflight_that_writes_nothing(tmp_path, capsys):
    run = tmp_path / "r"
    assert main(["train", "fashion-mnist-sample", "--run", str(run), "--dry-run", "--minutes",
                 "0.5", *TINY]) == 0
    captured = capsys.readouterr()
    config = json.loads(captured.out)
    assert config["family"] == "diffusion" and config["train"]["minutes"] == 0.5
    assert "4000 image items of shape [1, 12, 12], 10 classes" in captured.err
    assert "(new run)" in captured.err and "s a step on cpu" in captured.err
    assert not run.exists()
    # what training would refuse, the preflight refuses, before reading the data
    assert main(["train", "fashion-mnist-sample", "--run", str(run), "--dry-run", *TINY]) == 2
    assert "--steps N or --minutes M" in capsys.readouterr().err
    assert main(["train", "fashion-mnist-sample", "--run", str(run), "--dry-run", "--steps", "1",
                 "--family", "discrete", *TINY]) == 2
    assert "made of symbols" in capsys.readouterr().err and not run.exists()


def test_preflight_checks_a_run_folder_it_would_resume(images, capsys):
    assert main(["train", "fashion-mnist-sample", "--run", str(images), "--dry-run", "--steps",
                 "4", *TINY]) == 0
    assert "resumes from step 2" in capsys.readouterr().err
    assert main(["train", "fashion-mnist-sample", "--run", str(images), "--dry-run", "--steps",
                 "4", *TINY, "--lr", "0.05"]) == 2
    assert "other settings" in capsys.readouterr().err


def test_checkpoints_follow_the_clock_too(tmp_path, monkeypatch):
    saved = []
    real = loop.save_checkpoint
    monkeypatch.setattr(loop, "save_checkpoint", lambda *a, **k: (saved.append(1), real(*a, **k)))
    genforge.train("fashion-mnist-sample", tmp_path / "r", preset=None, steps=4, model_channels=8,
                   channel_mult=(1, 2), num_blocks=1, attn_resolutions=(), batch_size=8,
                   resolution=12, preview_count=4, device="cpu", checkpoint_every=1000,
                   checkpoint_minutes=1e-6)
    # the first (before step 1), one after each of the 4 steps by the clock, and the last
    assert len(saved) == 6


def test_a_hopeless_playable_only_stops_early_with_one_line():
    bad = np.full((8, 8), formats.SOKOBAN.index("#"), np.uint8)  # no player: never playable
    model = generation.GenerativeModel.__new__(generation.GenerativeModel)
    model.modality = LEVEL.bind(formats.SOKOBAN.to_dict())
    drawn = []

    def draw(count, seeds, labels):
        drawn.append(count)
        return torch.from_numpy(np.stack([bad] * count))

    with pytest.raises(genforge.GenforgeError, match="at this rate 10 would take about"):
        generation.levels.check_items(model, draw(10, list(range(10)), None), list(range(10)),
                                      None, draw, batch_size=10, repair=False,
                                      playable_only=True)
    assert sum(drawn) == 20 < 20 * 10  # it stopped on the evidence, not after 200 draws


def test_info_on_a_run_folder_points_to_its_model(images, capsys):
    assert main(["info", str(images)]) == 2
    assert f"its exported model is {images / 'model'}" in capsys.readouterr().err


def test_written_files_follow_the_users_umask(images, tmp_path):
    script = (f"import genforge; m = genforge.load({str(images / 'model')!r}, device='cpu'); "
              f"m.generate(2, sign=False, out={str(tmp_path / 'out')!r})")
    subprocess.run([sys.executable, "-c", f"import os; os.umask(0o027); {script}"], check=True)
    modes = {stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "out").iterdir()}
    assert modes == {0o640}
    weights = images / "model" / "model.safetensors"  # written by safetensors, then given the mode
    assert stat.S_IMODE(weights.stat().st_mode) == 0o666 & ~io.UMASK


def test_an_unsigned_small_image_does_not_claim_a_c2pa_manifest(images, tmp_path):
    model = genforge.load(images / "model", device="cpu")
    model.generate(2, sign=False, out=tmp_path / "out")
    reason = json.loads((tmp_path / "out" / "generation.json").read_text())["watermark"]["reason"]
    assert "generation log" in reason and "C2PA" not in reason


def test_a_walk_passes_through_each_seeds_own_sample(images):
    model = genforge.load(images / "model", device="cpu")
    walk = model.interpolate([1, 7], frames=4, loop=False).int()
    one, seven = model.generate(1, seed=1).int(), model.generate(1, seed=7).int()
    assert (walk[0] - one[0]).abs().max() <= 1 and (walk[-1] - seven[0]).abs().max() <= 1


def test_lode_runner_noise_is_told_apart_from_a_built_level():
    tile = formats.LODE_RUNNER.index
    grid = np.full((20, 28), tile("."), np.uint8)
    grid[-1] = tile("B")               # a floor of solid ground
    grid[10, 3:20] = tile("b")         # a platform of diggable bricks
    grid[10:19, 20] = tile("#")        # a ladder down to the floor
    grid[18, 1], grid[9, 5] = tile("M"), tile("G")
    noise = np.random.default_rng(0).integers(0, formats.LODE_RUNNER.size, (20, 28)).astype(np.uint8)
    _, infos = check_levels(torch.from_numpy(np.stack([grid, noise])), formats.LODE_RUNNER)
    assert [i["noisy"] for i in infos] == [False, True]
    assert lode_runner.structure_share(grid) > lode_runner.NOISE_BELOW


def test_the_audit_of_music_counts_files_and_crops_apart():
    record = api.audit(str(FIXTURES / "music" / "good"), bars=1, split="all", transpose=0)
    text = api.audit_text(record)
    assert "2 items from 1 of 1 files" in text and "by content" in text
    assert "looked for in images only" in text


def test_one_image_beside_the_class_folders_is_not_silent(tmp_path):
    from PIL import Image
    for folder in ("cats", "dogs"):
        (tmp_path / folder).mkdir()
        for i in range(2):
            Image.new("L", (8, 8), 40 * i).save(tmp_path / folder / f"{i}.png")
    Image.new("L", (8, 8), 200).save(tmp_path / "stray.png")
    with pytest.warns(UserWarning, match=r"1 image\(s\) sit directly in .* \(first: stray.png\) "
                                         "while the others are in 2 class sub-folders"):
        data = api.open_data(api.data_config(str(tmp_path)))
    assert data.labels is None


def test_precision_auto_resolves_to_a_measured_choice_and_says_why(tmp_path, monkeypatch):
    from genforge.training import speed
    options = dict(preset=None, steps=1, model_channels=8, channel_mult=(1, 2), num_blocks=1,
                   attn_resolutions=(), batch_size=8, resolution=12, preview_count=4,
                   device="cpu")
    monkeypatch.setenv("GENFORGE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("GENFORGE_PRECISION")
    monkeypatch.setattr(speed, "cpu_has_fast_bf16", lambda: False)
    summary = genforge.train("fashion-mnist-sample", tmp_path / "a", **options)
    assert summary["precision"] == "fp32"
    assert summary["precision_choice"]["why"] == "this CPU has no native bf16 (AMX or AVX512-BF16)"
    monkeypatch.setattr(speed, "cpu_has_fast_bf16", lambda: True)
    summary = genforge.train("fashion-mnist-sample", tmp_path / "b", **options)
    choice = summary["precision_choice"]
    assert summary["precision"] == {"fp32": "fp32", "bf16": "bfloat16"}[choice["precision"]]
    assert set(choice["seconds_per_step"]) == {"fp32", "bf16"} and "measured here" in choice["why"]
    faster = min(choice["seconds_per_step"], key=choice["seconds_per_step"].get)
    assert choice["precision"] == faster or "disagreed" in choice["why"]
    assert "measured here" in (tmp_path / "b" / "summary.md").read_text()
    # each precision in both batch layouts; the run trains in the faster layout of its precision
    layouts = choice["layouts"]
    assert set(layouts) == {f"{p} {layout}" for p in ("fp32", "bf16")
                            for layout in ("channels-last", "contiguous")}
    assert layouts[f"{choice['precision']} {choice['layout']}"] == min(
        v for k, v in layouts.items() if k.startswith(choice["precision"]))
    # a fixed precision is taken as given
    fixed = genforge.train("fashion-mnist-sample", tmp_path / "c", precision="fp32", **options)
    assert fixed["precision_choice"] == {"precision": "fp32", "why": "--precision fp32"}


def test_sampling_precision_auto_is_measured_recorded_and_fixed_when_given(images, tmp_path,
                                                                           monkeypatch):
    from genforge.training import speed
    monkeypatch.setenv("GENFORGE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("GENFORGE_PRECISION")
    monkeypatch.setattr(speed, "cpu_has_fast_bf16", lambda: False)
    model = api.load(images / "model", device="cpu")
    model.generate(2, seed=0, steps=4, out=tmp_path / "a")
    record = json.loads((tmp_path / "a" / "generation.json").read_text())
    assert (record["precision"], record["precision_why"]) == (
        "fp32", "this CPU has no native bf16 (AMX or AVX512-BF16)")
    monkeypatch.setattr(speed, "cpu_has_fast_bf16", lambda: True)
    model = api.load(images / "model", device="cpu")
    items = model.generate(2, seed=0, steps=4, out=tmp_path / "b")
    choice = model.sampling_precision(model.sampling(steps=4))
    assert set(choice["seconds_per_item"]) == {"fp32", "bf16"} and "measured here" in choice["why"]
    faster = min(choice["seconds_per_item"], key=choice["seconds_per_item"].get)
    assert choice["precision"] == faster or "disagreed" in choice["why"]
    record = json.loads((tmp_path / "b" / "generation.json").read_text())
    assert record["precision"] == choice["precision"] and items.dtype == torch.uint8
    # both precisions in both layouts; the network is left in the fastest of the chosen one
    assert len(choice["layouts"]) == 4 and choice["layout"] in ("channels-last", "contiguous")
    conv = next(m for m in model.module.modules()  # one whose two layouts differ
                if isinstance(m, torch.nn.Conv2d) and m.in_channels > 1 and m.kernel_size == (3, 3))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last) == (
        choice["layout"] == "channels-last")
    # measured once per machine and options: a second load reads the cache
    assert api.load(images / "model", device="cpu").sampling_precision(
        model.sampling(steps=4))["cached"]
    # bf16 given is taken as given, and its samples stay close to fp32's
    fixed = api.load(images / "model", device="cpu", precision="bf16")
    bf16 = fixed.generate(2, seed=0, steps=4)
    fp32 = api.load(images / "model", device="cpu", precision="fp32").generate(2, seed=0, steps=4)
    assert fixed.sampling_precision(fixed.sampling(steps=4))["why"] == "--precision bf16"
    assert (bf16.float() - fp32.float()).abs().mean() < 8  # of 255 grey levels
    with pytest.raises(genforge.errors.ConfigError, match="--precision 'fp16': expected one of"):
        api.load(images / "model", device="cpu", precision="fp16")
    # GENFORGE_PRECISION fixes what auto means on a machine (reproducible across CPUs)
    monkeypatch.setenv("GENFORGE_PRECISION", "fp32")
    assert api.load(images / "model", device="cpu").sampling_precision(
        model.sampling(steps=4)) == {"precision": "fp32", "why": "GENFORGE_PRECISION=fp32"}
