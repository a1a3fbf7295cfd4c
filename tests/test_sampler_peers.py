"""genforge's samplers against diffusers' EDM schedulers, driven by the same network, step by step.

diffusers is a test-only peer (the `test` extra). Both sides see one raw U-Net F(c_in x, c_noise,
labels): genforge through EDMDenoiser, diffusers through its documented EDM loop
`F(scheduler.scale_model_input(x, t), t, labels)` with t = c_noise = ln(sigma)/4 and
prediction_type "epsilon", whose c_skip/c_out are EDM's (Karras et al. 2022, Table 1).
Everything runs in float32 (EDMDenoiser computes in float32); the tolerance is a few float32 ulps
of the largest values involved (x starts at sigma_max = 80, whose ulp is 7.6e-6).
HeunDiscreteScheduler has no EDM mode (its sigmas come from a beta schedule, its c_in assumes
sigma_data = 1), so Heun is checked on that scheduler's own Karras sigmas with prediction_type
"sample", i.e. diffusers is handed genforge's denoised estimate and only its update rule is compared.
"""
from __future__ import annotations

import pytest
import torch

diffusers = pytest.importorskip("diffusers")

from genforge.models.precond import EDMDenoiser  # noqa: E402
from genforge.models.unet import UNet  # noqa: E402
from genforge.sampling import SAMPLERS, conditional, karras_sigmas  # noqa: E402

STEPS = (5, 10, 18)
ATOL = 1e-4
SHAPE = (3, 1, 8, 8)  # three images, one channel, 8x8: small enough to keep the file at a few seconds


pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors: see conftest.py


@pytest.fixture(scope="module")
def net() -> UNet:
    """A tiny class-conditional U-Net, every parameter re-drawn (zero-initialised layers too): F != 0."""
    torch.manual_seed(0)
    net = UNet(1, model_channels=16, channel_mult=(1, 2), num_blocks=1, attn_resolutions=(4,),
               num_classes=3, resolution=8).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn_like(p) * 0.3)  # output std about 0.4
    return net


@pytest.fixture(scope="module")
def inputs() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return torch.randn(SHAPE, generator=gen), torch.tensor([0, 2, -1])  # -1: the "no class" row


def run_genforge(net, name, noise, labels, sigmas):
    """(x before each step, denoised at each step, final x) from a genforge sampler."""
    xs, denoised = [], []
    denoiser = conditional(EDMDenoiser(net), labels)
    final = SAMPLERS[name](denoiser, noise * sigmas[0], sigmas,
                           callback=lambda i, x, d, s: (xs.append(x), denoised.append(d)))
    return xs, denoised, final


@torch.no_grad()
def run_diffusers(net, scheduler, noise, labels, steps):
    """The same, from diffusers' documented EDM loop; the start is sigma_max * noise, as in EDM.

    (Not `noise * scheduler.init_noise_sigma`: that is sqrt(sigma_max^2 + 1), a VP-style leftover.)
    """
    scheduler.set_timesteps(steps)
    x = noise * scheduler.sigmas[0]
    xs, denoised = [], []
    for t in scheduler.timesteps:
        xs.append(x)
        model_output = net(scheduler.scale_model_input(x, t), t.expand(len(x)), labels)
        x = scheduler.step(model_output, t, x).prev_sample
        # Euler returns its x0 estimate; the multistep solver keeps it as its latest model output.
        denoised.append(scheduler.model_outputs[-1] if hasattr(scheduler, "model_outputs")
                        else scheduler.precondition_outputs(xs[-1], model_output,
                                                            scheduler.sigmas[scheduler.step_index - 1]))
    return xs, denoised, x, scheduler.sigmas


def assert_same_trajectory(ours, theirs):
    (xs, ds, final), (their_xs, their_ds, their_final) = ours, theirs
    assert len(xs) == len(their_xs)
    for i, (a, b) in enumerate(zip(xs, their_xs)):
        assert (a - b).abs().max() < ATOL, f"x before step {i} differs by {(a - b).abs().max():.3g}"
    for i, (a, b) in enumerate(zip(ds, their_ds)):
        assert (a - b).abs().max() < ATOL, f"denoised at step {i} differs by {(a - b).abs().max():.3g}"
    assert (final - their_final).abs().max() < ATOL


@pytest.mark.parametrize("steps", STEPS)
def test_euler_matches_edm_euler_scheduler(net, inputs, steps):
    scheduler = diffusers.EDMEulerScheduler(sigma_min=0.002, sigma_max=80.0, sigma_data=0.5, rho=7.0,
                                            prediction_type="epsilon", final_sigmas_type="zero")
    noise, labels = inputs
    theirs = run_diffusers(net, scheduler, noise, labels, steps)
    sigmas = karras_sigmas(steps)
    # Both build the schedule in float64 and round to float32: bit-identical.
    assert sigmas.dtype == theirs[3].dtype and torch.equal(sigmas, theirs[3])
    assert_same_trajectory(run_genforge(net, "euler", noise, labels, sigmas), theirs[:3])


@pytest.mark.parametrize("steps", STEPS)
def test_dpmpp_2m_matches_edm_dpmsolver_multistep(net, inputs, steps):
    scheduler = diffusers.EDMDPMSolverMultistepScheduler(
        sigma_min=0.002, sigma_max=80.0, sigma_data=0.5, rho=7.0, prediction_type="epsilon",
        solver_order=2, algorithm_type="dpmsolver++", solver_type="midpoint",
        lower_order_final=True, euler_at_final=False, final_sigmas_type="zero")
    noise, labels = inputs
    theirs = run_diffusers(net, scheduler, noise, labels, steps)
    sigmas = karras_sigmas(steps)
    # This scheduler computes its Karras ramp in float32 (genforge in float64, then rounds), so the
    # schedules agree to float32 rounding, not bit for bit.
    torch.testing.assert_close(sigmas, theirs[3], rtol=2e-6, atol=0)
    assert_same_trajectory(run_genforge(net, "dpmpp-2m", noise, labels, sigmas), theirs[:3])


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # diffusers' own numpy-2 warning
@pytest.mark.parametrize("steps", STEPS)
def test_heun_matches_heun_discrete_scheduler_update(net, inputs, steps):
    scheduler = diffusers.HeunDiscreteScheduler(use_karras_sigmas=True, prediction_type="sample")
    scheduler.set_timesteps(steps)
    noise, labels = inputs
    denoiser = conditional(EDMDenoiser(net), labels)
    x = noise * scheduler.sigmas[0]
    with torch.no_grad():
        for t in scheduler.timesteps:  # 2 * steps - 1 evaluations: no correction into sigma = 0
            scheduler.scale_model_input(x, t)  # only to place the scheduler on its step
            sigma = scheduler.sigmas[scheduler.step_index]
            x = scheduler.step(denoiser(x, sigma.expand(len(x))), t, x).prev_sample
    # diffusers repeats each inner sigma (one entry per evaluation); genforge lists each level once.
    sigmas = torch.cat([scheduler.sigmas[:1], scheduler.sigmas[1:-1:2], scheduler.sigmas[-1:]])
    assert len(sigmas) == steps + 1 and sigmas[-1] == 0
    evaluations = []
    counting = lambda x, sigma: evaluations.append(1) or denoiser(x, sigma)  # noqa: E731
    ours = SAMPLERS["heun"](counting, noise * sigmas[0], sigmas)
    assert len(evaluations) == len(scheduler.timesteps)
    assert (ours - x).abs().max() < ATOL
