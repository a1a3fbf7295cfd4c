"""The training loop: budgets, exact resume (also after SIGTERM), atomic checkpoints, accumulation."""
from __future__ import annotations

import json
import math
import os
import signal

import pytest
import torch
from torch import nn

import genforge
from genforge import io
from genforge.api import resolve_config
from genforge.errors import CheckpointError, ConfigError
from genforge.families import FAMILIES, Phase
from genforge.modalities import MODALITIES, Dataset
from loop_helpers import train
from genforge.training.state import CHECKPOINT_NAME, DataStream

TINY = dict(model_channels=8, channel_mult=(1, 2), num_blocks=1, attn_resolutions=(),
            batch_size=8, warmup_steps=2, checkpoint_every=3, sample_every=1000, log_every=1,
            preview_count=4, resolution=12, lr=2e-3,
            device="cpu")  # exact-equality tests hold on the CPU; a GPU run sums in another order


@pytest.fixture(scope="module")
def small_data() -> Dataset:
    """48 real Fashion-MNIST items from the bundled sample, at 12x12, 10 classes."""
    config = resolve_config("fashion-mnist-sample", preset=None, resolution=12)
    full = MODALITIES["image"].open(config.data)
    return Dataset("image", full.items[:48].clone(), full.labels[:48].clone(), full.class_names,
                   full.source)


def run(tmp_path, name, data, **options):
    config = resolve_config("fashion-mnist-sample", preset=None, **{**TINY, **options})
    return train(tmp_path / name, config, data, FAMILIES["diffusion"], MODALITIES["image"])


def checkpoint_tensors(folder):
    tensors, meta = io.load_tensors(folder / CHECKPOINT_NAME)
    return tensors, meta


def assert_same_state(a, b):
    ta, ma = checkpoint_tensors(a)
    tb, mb = checkpoint_tensors(b)
    assert ta.keys() == tb.keys()
    for key in ta:
        assert torch.allclose(ta[key].float(), tb[key].float(), atol=1e-6, rtol=0), key
    assert ma["progress"]["step"] == mb["progress"]["step"]
    assert ma["progress"]["images_seen"] == mb["progress"]["images_seen"]


def test_resume_equals_uninterrupted_training(tmp_path, small_data):
    # dropout exercises the global torch RNG; label dropout and noise use the training generator;
    # a constant rate, as a schedule decaying to the end of a 4-step budget must differ
    same = dict(dropout=0.1, grad_accum=2, lr_schedule="constant")
    straight = run(tmp_path, "straight", small_data, steps=7, **same)
    assert straight.status == "finished" and straight.progress.step == 7
    run(tmp_path, "resumed", small_data, steps=4, **same)
    resumed = run(tmp_path, "resumed", small_data, steps=7, **same)
    assert resumed.progress.step == 7
    assert_same_state(tmp_path / "straight", tmp_path / "resumed")
    # the stats log continues rather than restarting
    steps = [json.loads(line)["step"] for line in (tmp_path / "resumed" / "stats.jsonl").open()]
    assert steps == list(range(1, 8))


def test_optimiser_runs_fused_here_whatever_the_checkpoint_says(tmp_path, small_data):
    # a checkpoint written by the per-tensor optimiser (older runs, or another machine) resumes
    # with this machine's fused kernel, to the same state as an uninterrupted fused run
    constant = dict(lr_schedule="constant")  # the budget grows from 2 to 4 steps
    straight = run(tmp_path, "straight", small_data, steps=4, **constant)
    assert straight.status == "finished"
    run(tmp_path, "resumed", small_data, steps=2, **constant)
    tensors, meta = checkpoint_tensors(tmp_path / "resumed")
    groups = [group for opt in meta["optimizers"].values() for group in opt["param_groups"]]
    assert groups and all(group["fused"] for group in groups)
    for group in groups:
        group["fused"] = None
    io.save_tensors(tmp_path / "resumed" / CHECKPOINT_NAME, tensors, meta)
    run(tmp_path, "resumed", small_data, steps=4, **constant)
    _, meta = checkpoint_tensors(tmp_path / "resumed")
    assert all(group["fused"] for opt in meta["optimizers"].values() for group in opt["param_groups"])
    assert_same_state(tmp_path / "straight", tmp_path / "resumed")


def test_sigterm_writes_checkpoint_and_rerun_resumes_exactly(tmp_path, small_data, monkeypatch):
    family = FAMILIES["diffusion"]
    original = family.phases
    calls = {"n": 0}

    def phases_sending_sigterm(config, spec):
        (phase,) = original(config, spec)

        def loss(*args):
            calls["n"] += 1
            if calls["n"] == 3:  # as if the user pressed Ctrl-C / the scheduler sent SIGTERM
                os.kill(os.getpid(), signal.SIGTERM)
            return phase.loss(*args)

        return [Phase(phase.name, phase.parameters, loss)]

    monkeypatch.setattr(family, "phases", phases_sending_sigterm)
    stopped = run(tmp_path, "stopped", small_data, steps=6)
    assert stopped.status == "interrupted" and stopped.progress.step == 3
    monkeypatch.setattr(family, "phases", original)
    finished = run(tmp_path, "stopped", small_data, steps=6)
    assert finished.status == "finished"
    run(tmp_path, "straight", small_data, steps=6)
    assert_same_state(tmp_path / "straight", tmp_path / "stopped")


def test_rerunning_a_finished_run_does_nothing_more(tmp_path, small_data):
    run(tmp_path, "r", small_data, steps=2)
    again = run(tmp_path, "r", small_data, steps=2)
    assert again.status == "already finished" and again.progress.step == 2


def test_resume_with_other_model_options_is_refused(tmp_path, small_data):
    run(tmp_path, "r", small_data, steps=1)
    with pytest.raises(CheckpointError, match=r"network.model_channels: 8 -> 16") as err:
        run(tmp_path, "r", small_data, steps=2, model_channels=16)
    assert "\n" not in str(err.value)


def test_time_budget_stops_training(tmp_path, small_data):
    result = run(tmp_path, "t", small_data, minutes=0.002)
    assert result.status == "finished" and result.progress.step >= 1
    # the loop stops where the time left would not hold another preview (it keeps the final
    # preview's time free), so it ends near the 0.12 s budget, by an estimate, not past it
    assert result.progress.elapsed_s >= 0.5 * 0.12


def test_no_budget_is_a_clear_error(tmp_path, small_data):
    with pytest.raises(ConfigError, match="--steps N or --minutes M"):
        run(tmp_path, "n", small_data)


def test_failed_checkpoint_write_keeps_the_previous_one(tmp_path, small_data, monkeypatch):
    run(tmp_path, "a", small_data, steps=3)
    before = (tmp_path / "a" / CHECKPOINT_NAME).read_bytes()

    def broken_save(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(io, "save_file", broken_save)
    with pytest.raises(CheckpointError, match="could not be written \\(disk full\\); the previous"):
        run(tmp_path, "a", small_data, steps=6)
    assert (tmp_path / "a" / CHECKPOINT_NAME).read_bytes() == before
    assert not [p for p in (tmp_path / "a").iterdir() if p.name.endswith(".tmp")]


def test_damaged_checkpoint_is_a_clear_error(tmp_path, small_data):
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / CHECKPOINT_NAME).write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        run(tmp_path, "d", small_data, steps=2)


def test_data_stream_visits_every_item_once_per_epoch_and_resumes():
    stream = DataStream(10, seed=3)
    first = torch.cat([stream.next(4) for _ in range(5)])  # 20 items: two full epochs
    assert sorted(first[:10].tolist()) == list(range(10))
    assert sorted(first[10:].tolist()) == list(range(10))
    assert not torch.equal(first[:10], first[10:])  # reshuffled each epoch
    resumed = DataStream(10, seed=3, epoch=stream.epoch, offset=stream.offset)
    assert torch.equal(resumed.next(7), stream.next(7))


class LinearFamily:
    """A deterministic toy family: proves the loop is family-agnostic and checks accumulation."""

    name = "toy"

    def build(self, spec, config):
        torch.manual_seed(0)
        return nn.Linear(144, 1)

    def exported(self, module):
        return module

    def stats(self, module):
        return {}

    def phases(self, config, spec):
        def loss(module, images, labels, generator):
            return ((module(images.flatten(1)).squeeze(1) - labels.float()) ** 2).mean()
        return [Phase("fit", lambda m: list(m.parameters()), loss)]

    def sample(self, module, seeds, labels, **options):
        return torch.zeros(len(seeds), *options["item_shape"])


# fp32: accumulating micro-batch means is the same sum as one big batch up to fp32 rounding.
# bf16 (what --precision auto picks on CPUs with AMX or AVX512-BF16): each micro-batch's forward
# rounds to bf16, so the two agree to ~1e-5 (measured: 1.5e-5 at 4 micro-batches). The test pins
# the precision instead of inheriting the machine's, so it checks the same thing on every CPU.
@pytest.mark.parametrize("accum", [2, 4])
@pytest.mark.parametrize("precision, atol", [("fp32", 1e-6), ("bf16", 1e-4)])
def test_gradient_accumulation_matches_one_big_batch(tmp_path, small_data, accum, precision, atol):
    def weights(name, grad_accum):
        config = resolve_config("fashion-mnist-sample", preset=None,
                                **{**TINY, "steps": 3, "grad_accum": grad_accum, "grad_clip": 0,
                                   "precision": precision})
        train(tmp_path / name, config, small_data, LinearFamily(), MODALITIES["image"])
        tensors, _ = io.load_tensors(tmp_path / name / CHECKPOINT_NAME)
        return tensors["model.weight"]

    one, accumulated = weights("one", 1), weights("acc", accum)
    assert torch.allclose(one, accumulated, atol=atol)
    start = LinearFamily().build(None, None).weight.detach()
    assert (one - start).abs().max() > 20 * atol  # the steps moved the weights well past atol


def test_training_reduces_the_loss_and_draws_previews(tmp_path, small_data):
    result = run(tmp_path, "e", small_data, steps=40, log_every=5)
    records = [json.loads(line) for line in (tmp_path / "e" / "stats.jsonl").open()]
    assert records[-1]["loss"] < records[0]["loss"]
    assert (tmp_path / "e" / "samples" / "step-0000000.png").exists()
    assert result.progress.images_seen == 40 * 8


def test_cosine_schedule_warms_up_then_decays_to_zero_at_the_budget_end(tmp_path, small_data):
    run(tmp_path, "cosine", small_data, steps=8, warmup_steps=2, lr_schedule="cosine")
    lrs = [json.loads(line)["lr"] for line in (tmp_path / "cosine" / "stats.jsonl").open()]
    assert lrs[0] == pytest.approx(1e-3)  # warm-up: half the peak at the first of two steps
    assert lrs[1] == pytest.approx(2e-3 * 0.5 * (1 + math.cos(math.pi / 8)))
    assert all(a > b for a, b in zip(lrs[1:], lrs[2:])) and lrs[-1] < 0.05 * 2e-3
    with pytest.raises(ConfigError, match="lr_schedule"):
        resolve_config("fashion-mnist-sample", preset=None, lr_schedule="linear")


def test_compile_trains_the_same_model_and_reports_its_cost(tmp_path):
    """--compile: the losses call compiled networks sharing the model's weights, so the run
    follows the eager one, the checkpoint resumes without it, and the summary names the cost."""
    import json
    from tiny import train_tiny
    eager = train_tiny(tmp_path / "eager", 4, "--precision", "fp32", "--log-every", "1")
    compiled = train_tiny(tmp_path / "compiled", 4, "--precision", "fp32", "--log-every", "1",
                          "--compile")
    summary = json.loads((compiled / "summary.json").read_text())
    cost = summary["compile"]
    assert cost["first_step_s"] > cost["step_s"] > 0 and cost["steps_timed"] == 3
    assert "compiling" in (compiled / "summary.md").read_text()
    losses = [[json.loads(line)["loss"] for line in (run / "stats.jsonl").read_text().splitlines()
               if "loss" in json.loads(line)] for run in (eager, compiled)]
    assert losses[1] == pytest.approx(losses[0], rel=1e-3)
    train_tiny(compiled, 5, "--precision", "fp32")  # resumed without --compile: same weights' names
    assert json.loads((compiled / "summary.json").read_text())["steps"] == 5
