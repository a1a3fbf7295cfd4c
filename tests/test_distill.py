"""Few-step generation: consistency sampling, ECT's schedule, and genforge distill end to end."""
from __future__ import annotations

import json

import pytest
import torch

import genforge
import genforge.errors
from genforge import io
from genforge.cli import main
from genforge.families.consistency import ect_r
from genforge.sampling import SeededNoise, consistency_sigmas, sample_consistency
from genforge.training.state import CHECKPOINT_NAME
from tiny import train_tiny

# ECT with a stage every 2 steps, so a few steps go through several stages
TUNE = ["--stage-steps", "2", "--batch-size", "8", "--preview-count", "4", "--sample-every",
        "1000", "--precision", "fp32", "--device", "cpu", "--progress", "none"]


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    return train_tiny(tmp_path_factory.mktemp("teacher") / "run", 3) / "model"


@pytest.fixture(scope="module")
def tuned(teacher, tmp_path_factory):
    run = tmp_path_factory.mktemp("tuned") / "run"
    assert main(["distill", str(teacher), "--run", str(run), "--steps", "5", *TUNE]) == 0
    return run / "model"


# -- the sampler on analytic denoisers ----------------------------------------------------------

def test_consistency_sampling_of_a_single_point_returns_that_point():
    point = torch.tensor([0.3, -0.7, 1.1]).reshape(1, 3, 1, 1)
    denoiser = lambda x, sigma: point.expand_as(x)  # the ideal denoiser of a one-point dataset
    for steps in (1, 2):
        sigmas = consistency_sigmas(steps, 80.0)
        x = SeededNoise([1, 2])((3, 1, 1)) * sigmas[0]
        out = sample_consistency(denoiser, x, sigmas, noise=SeededNoise([1, 2]))
        assert torch.allclose(out, point.expand(2, 3, 1, 1))


def test_one_step_consistency_sampling_of_gaussian_data_returns_its_mean():
    mean, std = torch.tensor(2.0), torch.tensor(0.5)
    # the ideal denoiser of N(mean, std^2): E[x0 | x] = mean + std^2 / (std^2 + sigma^2) (x - mean)
    denoiser = lambda x, sigma: mean + std**2 / (std**2 + sigma.view(-1, 1, 1, 1)**2) * (x - mean)
    seeds = list(range(400))
    sigmas = consistency_sigmas(1, 80.0)
    x = SeededNoise(seeds)((1, 1, 1)) * sigmas[0]
    out = sample_consistency(denoiser, x, sigmas)
    # from sigma 80 the posterior mean is the data mean, up to std^2/80 of the noise
    assert (out - mean).abs().max() < 4 * 80 * std**2 / (std**2 + 80**2)
    two = sample_consistency(denoiser, x, consistency_sigmas(2, 80.0), noise=SeededNoise(seeds))
    # the second evaluation, from mean + MID_SIGMA z, pulls back towards the mean: spread < std
    assert abs(two.mean() - mean) < 0.1 and 0 < two.std() < std


def test_consistency_schedule_takes_one_or_two_steps():
    assert consistency_sigmas(1, 80.0).tolist() == [80.0, 0.0]
    assert consistency_sigmas(2, 80.0, (0.5,)).tolist() == [80.0, 0.5, 0.0]
    with pytest.raises(ValueError):
        consistency_sigmas(3, 80.0)


def test_ect_mapping_brings_r_towards_t_stage_by_stage():
    t = torch.logspace(-3, 2, 50)
    previous = torch.zeros_like(t)
    for stage in range(8):
        r = ect_r(t, stage, q=2.0, k=8.0, b=1.0)
        assert (r >= 0).all() and (r < t).all() and (r >= previous).all()
        previous = r
    assert (ect_r(t[t < 1], 0, 2.0, 8.0, 1.0) == 0).all()  # stage 0 at low noise: denoising
    assert (t - previous).div(t).max() < 5 / 2**8 + 1e-6   # by stage 7 within n(t)/q^8 of t


def test_the_stage_stops_rising_at_the_final_stage():
    from genforge.families.consistency import ConsistencyFamily, ConsistencyTuner
    from genforge.families.diffusion import build_denoiser
    config, spec = _tiny_consistency(stage_steps=2, final_stage=3)
    tuner = ConsistencyTuner(build_denoiser(spec, config))
    stages = []
    for micro_batches in range(12):
        tuner.micro_batches.fill_(micro_batches)
        stages.append(ConsistencyFamily.stage(tuner, config))
    assert stages == [0, 0, 1, 1, 2, 2, 3, 3, 3, 3, 3, 3]
    # a long tuning is safe by default: later stages made the samples collapse (benchmarks)
    assert _tiny_consistency()[0].consistency.final_stage is not None


def test_the_consistency_loss_stays_finite_at_every_stage_for_five_seeds():
    from genforge.families.consistency import ect_loss
    from genforge.families.diffusion import build_denoiser
    config, spec = _tiny_consistency()
    for seed in range(5):
        torch.manual_seed(seed)
        denoiser = build_denoiser(spec, config)
        images = torch.randn(16, 1, 8, 8)
        labels = torch.randint(0, 2, (16,))
        for stage in (0, 3, 12):  # from denoising to r within 1e-4 of t
            loss = ect_loss(denoiser, images, labels, torch.Generator().manual_seed(seed),
                            stage=stage, config=config)
            loss.backward()
            assert torch.isfinite(loss)
            assert all(torch.isfinite(p.grad).all() for p in denoiser.parameters()
                       if p.grad is not None)


def _tiny_consistency(dropout: float = 0.2, **consistency):
    from genforge.config import make_config
    from genforge.families import ModelSpec
    return make_config(None, {"network": {"model_channels": 8, "channel_mult": (1,),
                                          "num_blocks": 1, "dropout": dropout},
                              "consistency": consistency}, family="consistency"), \
        ModelSpec("image", (1, 8, 8), ("a", "b"))


def _trained_looking_denoiser(config, spec):
    """A denoiser with seeded random weights, as after training: the output layer is no longer
    zero, so f depends on its input."""
    from genforge.families.diffusion import build_denoiser
    torch.manual_seed(0)
    denoiser = build_denoiser(spec, config)
    with torch.no_grad():
        for p in denoiser.parameters():
            p.normal_(0, 0.2)
    return denoiser


def test_both_ends_of_the_loss_share_one_dropout_mask():
    # r within 1e-3 of t: with one mask the loss is the size of df/dt, as without dropout; two
    # masks would differ by O(1) and, divided by t - r, make it tens of times larger (40x here)
    from genforge.families.consistency import ect_loss
    losses = {}
    for dropout in (0.0, 0.5):
        config, spec = _tiny_consistency(dropout, ratio_q=10.0)
        denoiser = _trained_looking_denoiser(config, spec)
        denoiser.train()
        images, labels = torch.randn(16, 1, 8, 8), torch.randint(0, 2, (16,))
        with torch.no_grad():
            losses[dropout] = float(ect_loss(denoiser, images, labels,
                                             torch.Generator().manual_seed(0), stage=2,
                                             config=config))
    assert losses[0.5] < 5 * losses[0.0]


def test_a_replayed_dropout_tape_gives_some_items_the_masks_they_had():
    from genforge.families.consistency import DropoutTape
    config, spec = _tiny_consistency(0.5)
    denoiser = _trained_looking_denoiser(config, spec)
    denoiser.train()
    x, sigma, labels = torch.randn(6, 1, 8, 8), torch.full((6,), 2.0), torch.randint(0, 2, (6,))
    tape = DropoutTape(denoiser)
    with torch.no_grad():
        with tape.record():
            first = denoiser(x, sigma, labels)
        items = torch.tensor([1, 4])
        with tape.replay(items):
            again = denoiser(x[items], sigma[items], labels[items])
        fresh = denoiser(x[items], sigma[items], labels[items])  # the tape is closed: new masks
    assert torch.allclose(again, first[items], atol=1e-5)
    assert not torch.allclose(fresh, first[items], atol=1e-3)


def test_the_target_costs_no_evaluation_where_r_is_zero():
    # stage 0 maps most low noise levels to r = 0, whose target is the clean item itself
    from genforge.families.consistency import ect_loss
    config, spec = _tiny_consistency()
    denoiser = _trained_looking_denoiser(config, spec)
    batches = []
    denoiser.register_forward_hook(lambda module, args, out: batches.append(len(args[0])))
    images, labels = torch.randn(64, 1, 8, 8), torch.randint(0, 2, (64,))
    d = config.diffusion
    t = (torch.randn(64, generator=torch.Generator().manual_seed(0)) * d.p_std + d.p_mean).exp()
    evaluated = {}
    for stage in (0, 3):
        batches.clear()
        ect_loss(denoiser, images, labels, torch.Generator().manual_seed(0), stage=stage,
                 config=config)
        live = int((ect_r(t, stage, 2.0, 8.0, 1.0) > 0).sum())  # t as the loss draws it
        assert batches == [64, live]
        evaluated[stage] = live
    assert evaluated[0] < 32 and evaluated[3] == 64


def test_late_stages_compare_in_fp32_under_bf16_autocast():
    # from FP32_FROM_STAGE on, r is so close to t that bf16's rounding of f is as large as
    # f_t - f_r: the loss is then fp32's whatever the run's precision; before, bf16's own
    from genforge.families.consistency import FP32_FROM_STAGE, ect_loss
    config, spec = _tiny_consistency(0.0)
    denoiser = _trained_looking_denoiser(config, spec)
    images, labels = torch.randn(16, 1, 8, 8), torch.randint(0, 2, (16,))

    def loss(stage: int, bf16: bool) -> float:
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            return float(ect_loss(denoiser, images, labels, torch.Generator().manual_seed(0),
                                  stage=stage, config=config))

    early, late = FP32_FROM_STAGE - 1, FP32_FROM_STAGE
    assert loss(late, bf16=True) == loss(late, bf16=False)
    assert loss(early, bf16=True) != loss(early, bf16=False)  # autocast did reach the network


# -- genforge distill ---------------------------------------------------------------------------

def test_tuned_model_samples_in_one_and_two_evaluations_per_seed(tuned, teacher):
    model = genforge.load(tuned, device="cpu")
    assert model.info()["family"] == "consistency"
    calls = []
    forward = model.module.forward
    model.module.forward = lambda *a, **k: calls.append(1) or forward(*a, **k)
    for steps in (1, 2):
        calls.clear()
        items = model.generate(3, seed=5, steps=steps, batch_size=3, sign=False)
        assert items.shape == (3, 1, 12, 12) and items.dtype == torch.uint8
        assert len(calls) == steps  # one network evaluation per step, for the whole batch
        alone = model.generate(1, seed=6, steps=steps, sign=False)
        assert torch.equal(alone[0], items[1])  # seed 6 makes the same image in any batch
    assert model.sampling()["steps"] == 2  # the default
    manifest = model.manifest
    assert manifest["tuned_from"]["weights_sha256"] == io.read_json(
        teacher / "manifest.json")["weights_sha256"]
    assert manifest["training"]["steps"] == 5
    card = (tuned / "README.md").read_text()
    assert "tuned from `run`" in card and "5 steps" in card


def test_tuned_model_interpolates_and_evaluates_with_a_sweep(tuned, tmp_path):
    assert main(["generate", str(tuned), "--interpolate", "1,2", "--frames", "2", "--out",
                 str(tmp_path / "walk"), "--no-sign", "--progress", "none"]) == 0
    assert (tmp_path / "walk" / "walk.gif").exists()
    result = genforge.evaluate(tuned, "fashion-mnist-sample", n=40, data_options={"resolution": 12},
                               metrics=("memorisation",), steps_sweep="1,2,4",
                               out=tmp_path / "eval")
    assert [(r["sampler"], r["evaluations"]) for r in result["sweep"]] == [
        ("consistency", 1), ("consistency", 2)]
    assert all(r["fd"] is not None and r["seconds_per_sample"] > 0 for r in result["sweep"])
    assert "Quality and cost by network evaluations" in (tmp_path / "eval" / "report.html").read_text()


def test_sweep_counts_both_evaluations_of_a_guided_step(teacher, tmp_path):
    # the teacher knows classes, so its image preset guides by default, at noise levels in
    # (0.3, 5] only: of 3 Euler steps (at sigma 80, 2.5 and 0.002) the second costs two
    # evaluations (with and without the class), or all three with no interval
    cases = (({}, 4), ({"guidance": 1.0}, 3), ({"guidance_interval": ()}, 6),
             ({"guidance_interval": "0.001,100"}, 6))
    for i, (given, evaluations) in enumerate(cases):
        result = genforge.evaluate(teacher, "fashion-mnist-sample", n=8, metrics=("memorisation",),
                                   data_options={"resolution": 12}, steps_sweep="3",
                                   out=tmp_path / str(i), **given)
        euler = [r for r in result["sweep"] if r["sampler"] == "euler"]
        assert [(r["steps"], r["evaluations"]) for r in euler] == [(3, evaluations)]


def test_distill_resumes_exactly(teacher, tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert main(["distill", str(teacher), "--run", str(straight), "--steps", "5", *TUNE]) == 0
    assert main(["distill", str(teacher), "--run", str(resumed), "--steps", "3", *TUNE]) == 0
    assert main(["distill", str(teacher), "--run", str(resumed), "--steps", "5", *TUNE]) == 0
    a, meta_a = io.load_tensors(straight / CHECKPOINT_NAME)
    b, meta_b = io.load_tensors(resumed / CHECKPOINT_NAME)
    assert a.keys() == b.keys()
    for key in a:  # weights, EMA, optimiser state and the ECT step count alike
        assert torch.allclose(a[key].float(), b[key].float(), atol=1e-6, rtol=0), key
    assert meta_a["progress"]["step"] == meta_b["progress"]["step"] == 5
    steps = [json.loads(line)["step"] for line in (resumed / "stats.jsonl").open()]
    assert steps == sorted(steps) and steps[-1] == 5


def test_bad_input_gets_one_line(tuned, teacher, tmp_path, capsys):
    def error(*argv):
        assert main(list(argv)) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and "Traceback" not in err
        return err

    assert "1 or 2" in error("generate", str(tuned), "-n", "1", "--steps", "3", "--no-sign")
    assert "already consistency-tuned" in error("distill", str(tuned), "--steps", "1", *TUNE)
    assert "no tuning budget" in error("distill", str(teacher), *TUNE)
    assert "genforge distill" in error("train", "fashion-mnist-sample", "--family", "consistency",
                                       "--steps", "1", "--run", str(tmp_path / "scratch"))
    # a network option would not fit the teacher's weights (the CLI has no such flag for distill)
    with pytest.raises(genforge.errors.ConfigError, match="cannot be changed by distill"):
        genforge.distill(teacher, tmp_path / "wider", steps=1, model_channels=16)
    for family in ("gan", "discrete"):  # another family's model folder (its config says so)
        folder = tmp_path / family
        folder.mkdir()
        for name in ("model.safetensors", "manifest.json"):
            (folder / name).write_bytes((teacher / name).read_bytes())
        config = json.loads((teacher / "config.json").read_text())
        config["family"] = config["run_config"]["family"] = family
        (folder / "config.json").write_text(json.dumps(config))
        assert f"is a {family} model; distill tunes EDM diffusion models" in error(
            "distill", str(folder), "--steps", "1", *TUNE)
