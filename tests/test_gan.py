"""The GAN family through the one loop: a 2-D toy covers every mode, ADA steers its probability,
resume is exact (ADA's p included), rollback after divergence, generation, interpolation, errors."""
from __future__ import annotations

import json
import math

import pytest
import torch
from PIL import Image

import genforge
from genforge import io
from genforge.api import resolve_config
from genforge.cli import main
from genforge.families import FAMILIES, ModelSpec
from genforge.families.gan import GANPair
from genforge.modalities import MODALITIES, Dataset
from genforge.training.loop import TrainingDiverged
from loop_helpers import train
from genforge.training.state import CHECKPOINT_NAME

pytestmark = pytest.mark.usefixtures("one_thread")

TINY_GAN = dict(architecture="stylegan2", latent_dim=16, mapping_layers=2, generator_channels=8,
                discriminator_channels=8, max_channels=16, batch_size=8, checkpoint_every=3,
                sample_every=1000, log_every=1, preview_count=4, resolution=12,
                device="cpu", precision="fp32")  # auto would measure steps: some tests count calls


class Points:
    """A content kind of 2-D points, enough for the loop (the toy's modality)."""

    name, default_metrics = "points", ()

    def bind(self, vocabulary):
        return self

    def model_shape(self, item_shape):
        return tuple(item_shape)

    def to_model(self, items):
        return items.float()

    def from_model(self, x):
        return x.float()

    def preview(self, items, columns=None):
        return Image.new("L", (4, 4))


def ring(count: int, modes: int = 8, radius: float = 2.0, std: float = 0.02, seed: int = 0):
    """The classic ring of Gaussians (Metz et al. 2017): mode collapse shows as missing modes."""
    g = torch.Generator().manual_seed(seed)
    angle = torch.randint(modes, (count,), generator=g) * (2 * math.pi / modes)
    centres = torch.stack([angle.cos(), angle.sin()], 1) * radius
    return centres + std * torch.randn(count, 2, generator=g)


def test_gan_covers_every_mode_of_the_ring_in_seconds(tmp_path):
    data = Dataset("points", ring(2048), None, [], "ring")
    config = resolve_config(None, preset=None, family="gan", architecture="mlp", latent_dim=8,
                            batch_size=128, steps=800, lr=1e-3, ema_decay=0.99, r1_gamma=0.05,
                            checkpoint_every=10_000, sample_every=10_000, log_every=100,
                            preview_count=4, device="cpu")
    result = train(tmp_path / "ring", config, data, FAMILIES["gan"], Points())
    assert result.status == "finished"
    # the EMA generator, as it would be exported
    ema = FAMILIES["gan"].exported(FAMILIES["gan"].build(ModelSpec("points", (2,)), config))
    tensors, _ = io.load_tensors(tmp_path / "ring" / CHECKPOINT_NAME)
    ema.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")})
    samples = FAMILIES["gan"].sample(ema.eval(), list(range(2000)), None, item_shape=(2,))
    centres = torch.stack([torch.tensor([math.cos(a), math.sin(a)]) * 2
                           for a in torch.arange(8) * (2 * math.pi / 8)])
    distance, nearest = torch.cdist(samples, centres).min(1)
    close = distance < 0.3  # within 15 standard deviations of a mode: a good sample
    counts = torch.bincount(nearest[close], minlength=8)
    assert close.float().mean() > 0.3, f"only {close.float().mean():.2f} of samples near a mode"
    assert (counts >= 0.03 * len(samples)).all(), f"modes missed: {counts.tolist()}"


def test_ada_probability_rises_while_the_discriminator_overfits_and_falls_after():
    pair = GANPair(torch.nn.Linear(1, 1), torch.nn.Linear(1, 1))
    sure = torch.ones(64)  # every real image called real: overfitting
    for _ in range(10):
        pair.observe_real_logits(sure)
        pair.adjust_augment(target=0.6, interval_images=64, speed_images=6_400)
    assert pair.augment_p.item() == pytest.approx(0.1)
    assert pair.ada_overfit.item() == 1.0
    unsure = torch.tensor([1.0, -1.0] * 32)  # r_t = 0: below target
    for _ in range(4):
        pair.observe_real_logits(unsure)
        pair.adjust_augment(target=0.6, interval_images=64, speed_images=6_400)
    assert pair.augment_p.item() == pytest.approx(0.06)
    for _ in range(20):
        pair.observe_real_logits(unsure)
        pair.adjust_augment(target=0.6, interval_images=64, speed_images=6_400)
    assert pair.augment_p.item() == 0.0  # never below zero


@pytest.fixture(scope="module")
def small_data() -> Dataset:
    """16 Fashion-MNIST items at 12x12: few enough for a discriminator to memorise."""
    config = resolve_config("fashion-mnist-sample", preset=None, resolution=12)
    full = MODALITIES["image"].open(config.data)
    return Dataset("image", full.items[:16].clone(), full.labels[:16].clone(), full.class_names,
                   full.source)


def gan_run(tmp_path, name, data, **options):
    config = resolve_config("fashion-mnist-sample", preset=None, family="gan",
                            **{**TINY_GAN, **options})
    return train(tmp_path / name, config, data, FAMILIES["gan"], MODALITIES["image"])


def test_gan_resume_equals_uninterrupted_training_including_ada(tmp_path, small_data):
    ada = dict(augment="ada", ada_target=0.1, ada_images=64, ada_interval=1, r1_interval=2)
    straight = gan_run(tmp_path, "straight", small_data, steps=24, **ada)
    assert straight.status == "finished"
    gan_run(tmp_path, "resumed", small_data, steps=13, **ada)
    gan_run(tmp_path, "resumed", small_data, steps=24, **ada)
    a, _ = io.load_tensors(tmp_path / "straight" / CHECKPOINT_NAME)
    b, meta = io.load_tensors(tmp_path / "resumed" / CHECKPOINT_NAME)
    assert a.keys() == b.keys() and meta["progress"]["step"] == 24
    for key in a:
        assert torch.equal(a[key], b[key]), key
    # the discriminator separated 16 real images from fakes: ADA raised p, and the log shows it
    assert a["model.augment_p"].item() > 0
    stats = [json.loads(line) for line in open(tmp_path / "straight" / "stats.jsonl")]
    assert {"loss", "loss_D", "loss_R1", "augment_p", "ada_overfit"} <= set().union(*stats)


def test_nan_loss_rolls_back_to_the_checkpoint_with_a_lower_learning_rate(tmp_path, small_data):
    family = FAMILIES["gan"]
    calls = {"D": 0}

    class Flaky:  # the GAN family whose D loss turns NaN once, at its 5th call
        name = family.name

        def __getattr__(self, attr):
            return getattr(family, attr)

        def phases(self, config, spec):
            phases = family.phases(config, spec)
            d = next(p for p in phases if p.name == "D")
            real = d.loss

            def loss(*args):
                calls["D"] += 1
                value = real(*args)
                return value * float("nan") if calls["D"] == 5 else value
            d.loss = loss
            return phases

    config = resolve_config("fashion-mnist-sample", preset=None, family="gan",
                            **{**TINY_GAN, "steps": 8})
    with pytest.warns(UserWarning, match="rolled back to the checkpoint at step 3"):
        result = train(tmp_path / "flaky", config, small_data, Flaky(), MODALITIES["image"])
    assert result.status == "finished" and result.progress.step == 8
    assert result.progress.rollbacks == 1 and result.progress.lr_scale == 0.5
    events = [json.loads(line) for line in open(tmp_path / "flaky" / "stats.jsonl")]
    assert [e["step"] for e in events if e.get("event") == "rollback"] == [3]
    assert all(math.isfinite(e["loss_D"]) for e in events if "loss_D" in e)


def test_a_loss_that_stays_nan_stops_after_the_last_rollback(tmp_path, small_data):
    family = FAMILIES["diffusion"]

    class Broken:
        name = family.name

        def __getattr__(self, attr):
            return getattr(family, attr)

        def phases(self, config, spec):
            phases = family.phases(config, spec)
            real = phases[0].loss
            phases[0].loss = lambda *args: real(*args) * float("nan")
            return phases

    config = resolve_config("fashion-mnist-sample", preset=None, model_channels=8,
                            channel_mult=(1,), num_blocks=1, batch_size=8, steps=4,
                            resolution=12, sample_every=1000, preview_count=4,
                            device="cpu")
    with pytest.warns(UserWarning), pytest.raises(TrainingDiverged, match="3 rollbacks"):
        train(tmp_path / "broken", config, small_data, Broken(), MODALITIES["image"])
    assert (tmp_path / "broken" / CHECKPOINT_NAME).exists()  # the last good state is kept


# ----- through the API and the CLI -----------------------------------------------------------------

@pytest.fixture(scope="module")
def gan_model(tmp_path_factory):
    run = tmp_path_factory.mktemp("gan") / "run"
    options = {k: v for k, v in TINY_GAN.items() if k != "resolution"}
    summary = genforge.train("fashion-mnist-sample", run, family="gan", preset=None,
                             resolution=12, steps=4, **options)
    assert summary["family"] == "gan"
    return run


def test_gan_model_exports_loads_and_generates_per_seed(gan_model, tmp_path):
    model = genforge.load(gan_model / "model", device="cpu")
    assert model.info()["family"] == "gan" and model.info()["augment"] == "ada"  # 4,000 items
    together = model.generate(6, seed=3, batch_size=6)
    apart = model.generate(6, seed=3, batch_size=4)
    assert together.shape == (6, 1, 12, 12) and torch.equal(together, apart)
    assert not torch.equal(model.generate(2, truncation=0.5), model.generate(2))
    assert main(["generate", str(gan_model / "model"), "-n", "3", "--truncation", "0.7",
                 "--out", str(tmp_path / "out")]) == 0
    log = json.loads((tmp_path / "out" / "generation.json").read_text())
    assert log["truncation"] == 0.7 and len(log["items"]) == 3


def test_interpolation_writes_frames_and_an_animated_gif(gan_model, tmp_path):
    out = tmp_path / "walk"
    assert main(["generate", str(gan_model / "model"), "--interpolate", "1,2,3", "--frames", "4",
                 "--class", "0", "--out", str(out)]) == 0
    frames = sorted(out.glob("frame-*.png"))
    assert len(frames) == 12  # three segments of four, looping back to seed 1
    with Image.open(out / "walk.gif") as gif:
        assert gif.n_frames == 12 and min(gif.size) >= 256
    model = genforge.load(gan_model / "model", device="cpu")
    walk = model.interpolate([1, 2], frames=4, loop=False, class_label=0)
    # the walk starts at seed 1's own sample and ends at seed 2's latent (with seed 1's noise
    # inputs, which only change fine detail)
    first, last = (model.generate(1, seed=s, class_label=0)[0].float() for s in (1, 2))
    assert (walk[0].float() - first).abs().max() <= 1  # equal up to float summation order
    assert (walk[-1].float() - last).abs().mean() < (walk[-1].float() - first).abs().mean()


@pytest.mark.parametrize("argv, message", [
    (["train", "fashion-mnist-sample", "--family", "vae"], "invalid choice: 'vae'"),
    (["train", "fashion-mnist-sample", "--family", "gan", "--model-channels", "16"],
     "--model-channels is a diffusion and discrete option"),
    (["train", "fashion-mnist-sample", "--generator-channels", "16"],
     "--generator-channels is a gan option"),
    (["train", "fashion-mnist-sample", "--family", "gan", "--augment", "nonleaking"],
     "'nonleaking' does not apply to the gan family"),
])
def test_family_mistakes_are_one_clear_line(argv, message, capsys, tmp_path):
    with pytest.raises(SystemExit) if "vae" in argv else _no_exit():
        code = main(argv + ["--run", str(tmp_path / "r"), "--steps", "1"])
        assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1]


class _no_exit:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_resuming_a_run_as_the_other_family_is_refused(gan_model, capsys):
    code = main(["train", "fashion-mnist-sample", "--run", str(gan_model), "--resolution", "12",
                 "--steps", "5", "--preset", "cpu-small"])
    assert code == 2
    assert "holds a gan run; it cannot be resumed as diffusion" in capsys.readouterr().err


def test_sampling_options_of_the_other_family_are_refused(gan_model, capsys):
    assert main(["generate", str(gan_model / "model"), "-n", "1", "--steps", "5"]) == 2
    assert "--steps does not apply to a gan model" in capsys.readouterr().err


def test_a_small_dataset_gets_a_memorisation_warning_and_ada(tmp_path, small_data):
    folder = tmp_path / "few"
    MODALITIES["image"].write(small_data.items, folder, [f"{i:03d}" for i in range(16)])
    options = {k: v for k, v in TINY_GAN.items() if k != "resolution"}
    with pytest.warns(UserWarning, match=r"holds only 16 items.*memorised_share"):
        summary = genforge.train(str(folder), tmp_path / "run", family="gan", preset=None,
                                 steps=1, **options)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["augment"]["augment"] == "ada"
    assert summary["steps"] == 1


def test_r1_needs_no_double_backward_through_the_augmentation(monkeypatch):
    # CUDA's grid_sample has no second derivative; R1 must not need one (it failed on an H200).
    from genforge.families import gan as gan_family

    class OnceDifferentiable(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1.0

        @staticmethod
        @torch.autograd.function.once_differentiable
        def backward(ctx, grad):
            return grad

    real_augment = gan_family.ada_augment
    monkeypatch.setattr(gan_family, "ada_augment",
                        lambda x, p, g: OnceDifferentiable.apply(real_augment(x, p, g)))
    config = resolve_config(None, preset=None, family="gan", augment="ada",
                            **{k: v for k, v in TINY_GAN.items() if k in ("architecture",
                               "latent_dim", "mapping_layers", "generator_channels",
                               "discriminator_channels", "max_channels", "batch_size")})
    spec = ModelSpec("image", (1, 12, 12), ("a", "b"))
    family = FAMILIES["gan"]
    pair = family.build(spec, config)
    pair.augment_p.fill_(0.5)
    phases = {p.name: p for p in family.phases(config, spec)}
    reals, labels = torch.rand(8, 1, 12, 12) * 2 - 1, torch.tensor([0, 1] * 4)
    generator = torch.Generator().manual_seed(0)
    for name in ("G", "D", "R1"):  # each backward once, as the loop does
        phases[name].loss(pair, reals, labels, generator).backward()
    assert all(p.grad is not None for p in pair.discriminator.parameters())
