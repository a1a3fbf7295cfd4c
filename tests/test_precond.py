"""EDM preconditioning: Table 1 of Karras et al. (2022), and what the wrapper feeds the network."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from genforge.models.precond import EDMDenoiser, edm_scalings


class Constant(nn.Module):
    """A stand-in network F that returns `value` everywhere and records what it was given."""

    def __init__(self, value: float = 0.0):
        super().__init__()
        self.value = value
        self.calls: list[tuple] = []

    def forward(self, x, noise, class_labels=None):
        self.calls.append((x.clone(), noise.clone(), class_labels))
        return torch.full_like(x, self.value)


def table1(sigma: float, sigma_data: float) -> tuple[float, float, float, float]:
    """Karras et al. 2022, Table 1, EDM column, written out independently."""
    c_skip = sigma_data**2 / (sigma**2 + sigma_data**2)
    c_out = sigma * sigma_data / math.sqrt(sigma_data**2 + sigma**2)
    c_in = 1 / math.sqrt(sigma**2 + sigma_data**2)
    c_noise = 0.25 * math.log(sigma)
    return c_skip, c_out, c_in, c_noise


@pytest.mark.parametrize("sigma_data", [0.5, 1.0])
@pytest.mark.parametrize("sigma", [0.002, 0.1, 0.5, 1.0, 7.0, 80.0])
def test_scalings_match_table_1(sigma, sigma_data):
    got = edm_scalings(torch.tensor(sigma, dtype=torch.float64), sigma_data)
    for name, value, expected in zip(("c_skip", "c_out", "c_in", "c_noise"), got, table1(sigma, sigma_data)):
        assert value.item() == pytest.approx(expected, rel=1e-12, abs=1e-15), name


def test_scalings_give_a_unit_variance_target():
    """The identity Table 1 is derived from: c_out^2 = (1 - c_skip)^2 sd^2 + c_skip^2 sigma^2."""
    sigma = torch.logspace(-3, 2, 20, dtype=torch.float64)
    c_skip, c_out, c_in, _ = edm_scalings(sigma, 0.5)
    assert torch.allclose(c_out**2, (1 - c_skip) ** 2 * 0.25 + c_skip**2 * sigma**2)
    assert torch.allclose(c_in**2 * (0.25 + sigma**2), torch.ones_like(sigma))


def test_scalings_keep_the_shape_of_sigma():
    sigma = torch.rand(2, 3) + 0.1
    assert all(c.shape == (2, 3) for c in edm_scalings(sigma, 0.5))


def test_zero_network_gives_c_skip_x():
    torch.manual_seed(0)
    x = torch.randn(4, 2, 5, 5)
    sigma = torch.tensor([0.002, 0.3, 2.0, 80.0])
    out = EDMDenoiser(Constant(0.0), sigma_data=0.5)(x, sigma)
    for i, s in enumerate(sigma.tolist()):
        assert torch.allclose(out[i], table1(s, 0.5)[0] * x[i], rtol=1e-6, atol=1e-7)


def test_network_sees_c_in_x_and_c_noise_and_its_output_is_scaled_by_c_out():
    torch.manual_seed(0)
    net = Constant(2.0)
    x = torch.randn(3, 1, 4, 4)
    sigma = torch.tensor([0.05, 1.0, 20.0])
    labels = torch.tensor([1, -1, 0])
    out = EDMDenoiser(net, sigma_data=0.5)(x, sigma, labels)
    (seen_x, seen_noise, seen_labels), = net.calls
    assert seen_labels is labels
    for i, s in enumerate(sigma.tolist()):
        c_skip, c_out, c_in, c_noise = table1(s, 0.5)
        assert torch.allclose(seen_x[i], c_in * x[i], rtol=1e-6)
        assert seen_noise[i].item() == pytest.approx(c_noise, rel=1e-6)
        assert torch.allclose(out[i], c_skip * x[i] + c_out * 2.0, rtol=1e-5, atol=1e-6)


def test_tiny_sigma_returns_the_input_and_huge_sigma_returns_the_network():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 4, 4)
    denoiser = EDMDenoiser(Constant(1.0), sigma_data=0.5)
    # D - x = (c_skip - 1) x + c_out F, both O(sigma) for small sigma.
    assert torch.allclose(denoiser(x, 1e-5), x, atol=2e-5)
    # For sigma >> sigma_data the input is pure noise: D -> sigma_data * F.
    assert torch.allclose(denoiser(x, 1e4), torch.full_like(x, 0.5), atol=1e-4)


def test_sigma_may_be_a_float_a_scalar_tensor_or_one_per_sample():
    torch.manual_seed(0)
    x = torch.randn(3, 1, 4, 4)
    denoiser = EDMDenoiser(Constant(1.0), sigma_data=0.5)
    reference = denoiser(x, torch.full((3,), 0.7))
    for sigma in (0.7, torch.tensor(0.7), torch.tensor([0.7]), torch.tensor([[0.7]])):
        assert torch.equal(denoiser(x, sigma), reference)
    per_sample = torch.tensor([0.1, 1.0, 10.0])
    batch = denoiser(x, per_sample)
    for i in range(3):
        assert torch.equal(batch[i:i + 1], denoiser(x[i:i + 1], per_sample[i]))
    assert not torch.allclose(batch[0], batch[2])


def test_output_is_float32_whatever_the_input_dtype():
    x = torch.randn(2, 1, 3, 3, dtype=torch.float64)
    out = EDMDenoiser(Constant(1.0))(x, torch.tensor([0.5, 2.0], dtype=torch.float64))
    assert out.dtype == torch.float32


def test_num_classes_comes_from_the_network():
    net = Constant()
    assert EDMDenoiser(net).num_classes == 0
    net.num_classes = 7
    assert EDMDenoiser(net).num_classes == 7


class Scale(nn.Module):
    """F(x) = w * x, one weight: its gradient says how hard the loss pulls the network."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(0.3))

    def forward(self, x, noise, class_labels=None):
        return self.w * x


def _loss_and_grads(denoiser):
    from genforge.families.diffusion import edm_loss
    images = torch.randn(8, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    denoiser.zero_grad()
    loss = edm_loss(denoiser, images, None, torch.Generator().manual_seed(2), -1.2, 1.2, 0.0)
    loss.backward()
    return loss, denoiser.net.w.grad.clone()


def test_learned_weighting_keeps_edms_loss_value_and_divides_the_pull_by_exp_u():
    from genforge.models.precond import NoiseUncertainty
    plain_loss, plain_grad = _loss_and_grads(EDMDenoiser(Scale()))
    uncertainty = NoiseUncertainty()
    denoiser = EDMDenoiser(Scale(), uncertainty=uncertainty)
    loss, grad = _loss_and_grads(denoiser)  # u starts at 0: EDM's loss, EDM's gradient
    assert torch.allclose(loss, plain_loss) and torch.allclose(grad, plain_grad)
    assert uncertainty.linear.bias.grad is not None and uncertainty.linear.bias.grad != 0
    with torch.no_grad():
        uncertainty.linear.bias.fill_(math.log(4.0))  # u = ln 4 at every level
    loss, grad = _loss_and_grads(denoiser)
    assert torch.allclose(loss, plain_loss)  # the value shown stays EDM's
    assert torch.allclose(grad, plain_grad / 4)


def test_noise_uncertainty_is_fixed_by_its_seed_and_starts_neutral():
    from genforge.models.precond import NoiseUncertainty
    a, b = NoiseUncertainty(), NoiseUncertainty()
    assert torch.equal(a.freqs, b.freqs) and torch.equal(a.phases, b.phases)
    sigma = torch.tensor([0.002, 0.5, 80.0])
    assert torch.equal(a(sigma), torch.zeros(3))  # starts neutral
    assert not torch.equal(NoiseUncertainty(seed=1).freqs, a.freqs)
