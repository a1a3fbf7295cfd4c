"""Samplers against analytic denoisers, convergence order, schedules, per-sample noise, guidance.

For data x0 ~ N(mu, s^2) per pixel the ideal denoiser is E[x0 | x0 + sigma n = x]
= (s^2 x + sigma^2 mu) / (s^2 + sigma^2), and the probability-flow ODE dx/dsigma = (x - D) / sigma
has the exact solution x(sigma) - mu = (x(sigma_max) - mu) sqrt(s^2 + sigma^2) / sqrt(s^2 + sigma_max^2).
For two points at +-1 with weight w on +1 it is tanh(x / sigma^2 + atanh(2w - 1)).
"""
from __future__ import annotations

import math

import pytest
import torch

from genforge.config import make_config
from genforge.errors import ConfigError
from genforge.families.base import ModelSpec
from genforge.families.diffusion import DiffusionFamily, build_denoiser
from genforge.sampling import (EVALS_PER_STEP, SAMPLERS, SeededNoise, classifier_free, conditional,
                               karras_sigmas)

MU, S = 1.0, 0.5
SIGMA_MAX = 80.0


def per_sample(sigma: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return sigma.reshape(-1, *[1] * (x.dim() - 1)).to(x)


def gaussian_denoiser(mu: float = MU, s: float = S):
    def denoise(x, sigma):
        sigma = per_sample(sigma, x)
        return (s**2 * x + sigma**2 * mu) / (s**2 + sigma**2)
    return denoise


def two_point_denoiser(weight_plus: float = 0.5):
    bias = math.atanh(2 * weight_plus - 1)

    def denoise(x, sigma):
        # tanh saturates long before 30; clamping keeps it off a slow path for huge arguments.
        return torch.tanh((x / per_sample(sigma, x) ** 2 + bias).clamp(-30, 30))
    return denoise


def exact_gaussian_flow(x_start, sigma_start: float, sigma_end: float, mu: float = MU, s: float = S):
    return mu + (x_start - mu) * math.sqrt(s**2 + sigma_end**2) / math.sqrt(s**2 + sigma_start**2)


def draw(sampler: str, denoiser, steps: int, seeds: int = 32, item_shape=(1, 32, 32)) -> torch.Tensor:
    """Sample `seeds` items the way DiffusionFamily.sample does: noise * sigma_max, then the solver."""
    noise = SeededNoise(range(seeds))
    sigmas = karras_sigmas(steps, 0.002, SIGMA_MAX)
    return SAMPLERS[sampler](denoiser, noise(item_shape) * sigmas[0], sigmas, noise=noise)


# --- sampling a known distribution --------------------------------------------------------------

# (sampler, steps, allowed relative error of the std from discretisation). The allowances are about
# 1.5x the exact discretisation error at these step counts (Euler is first order, so it gets more steps;
# the ancestral sampler's variance converges at first order too).
MOMENT_CASES = [("euler", 200, 0.02), ("heun", 32, 0.02), ("dpmpp-2m", 40, 0.015),
                ("euler-ancestral", 512, 0.02)]


@pytest.mark.parametrize("sampler, steps, allowance", MOMENT_CASES)
def test_gaussian_data_gives_the_right_mean_and_std(sampler, steps, allowance):
    out = draw(sampler, gaussian_denoiser(), steps)
    n = out.numel()
    mean_se, std_se = S / math.sqrt(n), S / math.sqrt(2 * n)
    # The ODE solvers start from N(0, sigma_max^2) rather than N(mu, s^2 + sigma_max^2), and the
    # flow carries that offset down exactly: mu * s / sigma_max, here 0.006. Ancestral steps forget it.
    expected_mean = MU if sampler == "euler-ancestral" else exact_gaussian_flow(0.0, SIGMA_MAX, 0.0)
    assert abs(out.mean().item() - expected_mean) < 4 * mean_se + 0.002
    assert abs(out.std().item() - S) < 4 * std_se + allowance * S


@pytest.mark.parametrize("weight_plus", [0.5, 0.8])
@pytest.mark.parametrize("sampler, steps", [("euler", 40), ("heun", 20), ("dpmpp-2m", 40),
                                            ("euler-ancestral", 512)])
def test_two_point_data_lands_on_the_points_in_the_right_proportion(sampler, steps, weight_plus):
    out = draw(sampler, two_point_denoiser(weight_plus), steps)
    assert ((out.abs() - 1).abs() < 1e-3).all()
    share = (out > 0).float().mean().item()
    se = math.sqrt(weight_plus * (1 - weight_plus) / out.numel())
    assert abs(share - weight_plus) < 4 * se + 0.003


# --- convergence order of the ODE solvers -------------------------------------------------------

def ode_error(sampler: str, steps: int, denoiser, reference, x, sigma_min: float) -> float:
    """Max error at sigma_min after `steps` steps (no final step to 0: that one is always Euler)."""
    sigmas = karras_sigmas(steps + 1, sigma_min, SIGMA_MAX).double()[:-1]
    return (SAMPLERS[sampler](denoiser, x, sigmas) - reference).abs().max().item()


def start_points() -> torch.Tensor:
    return torch.linspace(-2.5, 2.5, 41, dtype=torch.float64).reshape(-1, 1, 1, 1) * SIGMA_MAX


def test_gaussian_ode_errors_shrink_at_first_and_second_order():
    x, sigma_min = start_points(), 0.002
    reference = exact_gaussian_flow(x, SIGMA_MAX, karras_sigmas(2, sigma_min).double()[1].item())
    errors = {name: [ode_error(name, n, gaussian_denoiser(), reference, x, sigma_min)
                     for n in (16, 32, 64)] for name in ("euler", "heun", "dpmpp-2m")}
    for name, (e16, e32, e64) in errors.items():
        low, high = (1.6, 2.4) if name == "euler" else (3.5, 6.0)
        assert low < e16 / e32 < high and low < e32 / e64 < high, (name, errors[name])
    # At equal cost (2N evaluations) Heun beats Euler.
    heun_32, euler_64 = errors["heun"][1], ode_error("euler", 64, gaussian_denoiser(), reference, x, sigma_min)
    assert heun_32 < euler_64 / 2


def test_two_point_ode_heun_converges_faster_than_euler():
    # The two-point flow has no closed form: compare with Heun on a 16x finer grid. It stiffens as
    # sigma -> 0, so stop at sigma 0.5 where the asymptotic order shows at these step counts.
    x, sigma_min, denoiser = start_points(), 0.5, two_point_denoiser(0.5)
    reference = SAMPLERS["heun"](denoiser, x, karras_sigmas(2049, sigma_min).double()[:-1])
    euler = [ode_error("euler", n, denoiser, reference, x, sigma_min) for n in (32, 64, 128)]
    heun = [ode_error("heun", n, denoiser, reference, x, sigma_min) for n in (32, 64, 128)]
    assert 1.6 < euler[0] / euler[1] < 2.4 and 1.6 < euler[1] / euler[2] < 2.4, euler
    assert heun[0] / heun[1] > 3.5 and heun[1] / heun[2] > 3.5, heun
    assert heun[0] < euler[1]  # 64 evaluations each


# --- the sampler contract -----------------------------------------------------------------------

@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
def test_a_constant_denoiser_ends_exactly_at_its_constant(sampler):
    """If D always answers c, the flow x - c ~ sigma is linear and every solver lands on c."""
    noise = SeededNoise([0, 1])
    sigmas = karras_sigmas(5)
    x = noise((1, 3, 3)) * sigmas[0]
    out = SAMPLERS[sampler](lambda x, sigma: torch.full_like(x, 0.25), x, sigmas, noise=noise)
    assert torch.allclose(out, torch.full_like(out, 0.25), atol=1e-5)


@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
def test_callback_sees_every_step_and_cost_is_as_declared(sampler):
    steps, calls, seen = 7, [], []
    denoiser = gaussian_denoiser()

    def counting(x, sigma):
        calls.append(sigma[0].item())
        assert sigma.shape == (x.shape[0],)
        return denoiser(x, sigma)

    noise = SeededNoise([0, 1, 2])
    sigmas = karras_sigmas(steps)
    SAMPLERS[sampler](counting, noise((1, 2, 2)) * sigmas[0], sigmas, noise=noise,
                      callback=lambda i, x, d, sigma: seen.append((i, sigma.item(), d.shape)))
    assert [i for i, _, _ in seen] == list(range(steps))
    assert [s for _, s, _ in seen] == sigmas[:-1].tolist()
    assert all(shape == (3, 1, 2, 2) for _, _, shape in seen)
    assert steps <= len(calls) <= EVALS_PER_STEP[sampler] * steps
    assert 0.0 not in calls  # the denoiser is never asked about sigma = 0


def test_every_sampler_declares_its_cost():
    assert set(EVALS_PER_STEP) == set(SAMPLERS)


def test_ancestral_sampler_needs_a_noise_source():
    sigmas = karras_sigmas(3)
    with pytest.raises(ValueError, match="noise"):
        SAMPLERS["euler-ancestral"](gaussian_denoiser(), torch.zeros(1, 1, 2, 2), sigmas)


# --- schedule ------------------------------------------------------------------------------------

@pytest.mark.parametrize("steps", [2, 5, 18, 40])
def test_karras_sigmas_shape_and_ends(steps):
    sigmas = karras_sigmas(steps, sigma_min=0.002, sigma_max=80.0)
    assert sigmas.shape == (steps + 1,)
    assert sigmas[0].item() == pytest.approx(80.0, rel=1e-6)
    assert sigmas[-2].item() == pytest.approx(0.002, rel=1e-5)
    assert sigmas[-1].item() == 0.0
    assert (sigmas[1:] < sigmas[:-1]).all()


def test_karras_sigmas_are_evenly_spaced_in_sigma_to_the_one_over_rho():
    """Karras et al. 2022, eq. 5."""
    sigmas = karras_sigmas(10, 0.01, 50.0, rho=5.0).double()[:-1]
    gaps = sigmas ** (1 / 5.0)
    gaps = gaps[:-1] - gaps[1:]
    assert torch.allclose(gaps, gaps.mean().expand_as(gaps), rtol=1e-4)


def test_karras_sigmas_rejects_zero_steps():
    with pytest.raises(ValueError, match="steps"):
        karras_sigmas(0)


# --- per-sample noise ----------------------------------------------------------------------------

def test_seeded_noise_rows_depend_only_on_their_own_seed():
    batch, alone = SeededNoise([3, 4, 5]), SeededNoise([5])
    for _ in range(2):  # and the streams stay in step over successive draws
        assert torch.equal(batch((2, 3))[2], alone((2, 3))[0])
    rows = SeededNoise([3, 4, 5])((2, 3))
    assert rows.shape == (3, 2, 3)
    assert not torch.equal(rows[0], rows[1]) and not torch.equal(rows[1], rows[2])
    assert len(batch) == 3


def test_seeded_noise_draws_change_from_call_to_call():
    noise = SeededNoise([7])
    assert not torch.equal(noise((4,)), noise((4,)))


# --- guidance ------------------------------------------------------------------------------------

def fake_model(x, sigma, labels):
    """Prediction depends on the label, with a distinct answer for -1 (no class)."""
    sigma = per_sample(sigma.reshape(-1).expand(x.shape[0]), x)
    if labels is None:
        labels = torch.full((x.shape[0],), -1)
    code = torch.where(labels < 0, torch.tensor(10.0), labels.float()).reshape(-1, 1, 1, 1)
    return x * 0.5 + sigma * code


@pytest.mark.parametrize("sigma", [torch.tensor(1.5), torch.tensor([0.5, 1.0, 2.0])])
def test_classifier_free_guidance(sigma):
    torch.manual_seed(0)
    x = torch.randn(3, 1, 2, 2)
    labels = torch.tensor([0, 2, 5])
    sigmas = sigma.reshape(-1).expand(3)
    cond = fake_model(x, sigmas, labels)
    uncond = fake_model(x, sigmas, torch.full((3,), -1))
    assert not torch.allclose(cond, uncond)
    assert torch.allclose(classifier_free(fake_model, labels, 1.0)(x, sigma), cond)
    assert torch.allclose(classifier_free(fake_model, labels, 0.0)(x, sigma), uncond)
    for scale in (2.5, -0.5):
        expected = uncond + scale * (cond - uncond)
        assert torch.allclose(classifier_free(fake_model, labels, scale)(x, sigma), expected)
    assert torch.allclose(conditional(fake_model, labels)(x, sigma), cond)
    assert torch.allclose(conditional(fake_model, None)(x, sigma), uncond)


def test_guidance_interval_guides_only_inside_it_and_costs_one_evaluation_outside():
    x, labels = torch.randn(2, 1, 2, 2), torch.tensor([1, 3])
    rows = []
    counted = lambda x, sigma, labels: rows.append(len(x)) or fake_model(x, sigma, labels)  # noqa: E731
    guided = classifier_free(counted, labels, 3.0, (0.5, 2.0))
    for sigma, inside in ((0.5, False), (0.6, True), (2.0, True), (2.1, False)):
        rows.clear()
        s = torch.tensor(sigma)
        cond, uncond = fake_model(x, s, labels), fake_model(x, s, torch.full((2,), -1))
        expected = uncond + 3.0 * (cond - uncond) if inside else cond
        assert torch.allclose(guided(x, s), expected)
        assert rows == ([4] if inside else [2])  # both halves in one batch, or the class alone


# --- DiffusionFamily.sample: each sample depends only on its seed (and label) ---------------------

SPEC = ModelSpec("image", (1, 12, 12), ("a", "b", "c"))


@pytest.fixture(scope="module")
def tiny_denoiser():
    torch.manual_seed(0)
    config = make_config(None, {"network": {"model_channels": 8, "channel_mult": (1, 2),
                                            "num_blocks": 1, "attn_resolutions": (6,)}})
    denoiser = build_denoiser(SPEC, config)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():  # wake the zero-initialised layers so the network's output matters
        for p in denoiser.parameters():
            if not p.any():
                p.copy_(torch.randn(p.shape, generator=generator) * 0.1)
    return denoiser.eval()


@pytest.mark.parametrize("sampler, guidance, labelled", [
    ("dpmpp-2m", 1.0, True), ("euler-ancestral", 1.0, True), ("heun", 2.0, True),
    ("euler-ancestral", 3.0, True), ("euler", 1.0, False),
])
def test_family_sample_is_the_same_in_a_batch_and_alone(tiny_denoiser, sampler, guidance, labelled):
    family, seeds = DiffusionFamily(), [0, 1, 2, 3]
    labels = torch.tensor([0, 1, 2, -1]) if labelled else None
    options = dict(sampler=sampler, steps=6, guidance=guidance, item_shape=SPEC.item_shape)
    batch = family.sample(tiny_denoiser, seeds, labels, **options)
    assert batch.shape == (4, *SPEC.item_shape) and torch.isfinite(batch).all()
    for i, seed in enumerate(seeds):
        alone = family.sample(tiny_denoiser, [seed], None if labels is None else labels[i:i + 1],
                              **options)
        assert torch.allclose(alone[0], batch[i], atol=1e-5), (sampler, seed)
    assert not torch.allclose(batch[0], batch[1], atol=1e-3)


def test_family_sample_depends_on_the_label(tiny_denoiser):
    options = dict(sampler="dpmpp-2m", steps=4, item_shape=SPEC.item_shape)
    family = DiffusionFamily()
    first = family.sample(tiny_denoiser, [9, 9], torch.tensor([0, 2]), **options)
    assert not torch.allclose(first[0], first[1], atol=1e-3)
    again = family.sample(tiny_denoiser, [9], torch.tensor([2]), **options)
    assert torch.allclose(again[0], first[1], atol=1e-5)


@pytest.mark.parametrize("options, match", [({"sampler": "ddim"}, "ddim"), ({"steps": 0}, "steps")])
def test_family_sample_rejects_bad_options(tiny_denoiser, options, match):
    with pytest.raises(ConfigError, match=match):
        DiffusionFamily().sample(tiny_denoiser, [0], None, item_shape=SPEC.item_shape, **options)
