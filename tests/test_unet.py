"""The raw U-Net: shapes for any size, class conditioning, zero-initialised output, gradient flow."""
from __future__ import annotations

import pytest
import torch

from genforge.models.precond import EDMDenoiser, edm_scalings
from genforge.models.unet import Attention, UNet

TINY = dict(model_channels=8, channel_mult=(1, 2), num_blocks=1)


def perturb_zero_init(net: torch.nn.Module, seed: int = 0, scale: float = 0.1) -> torch.nn.Module:
    """Give every all-zero parameter (zero-initialised convs, norm biases) seeded random values."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            if not p.any():
                p.copy_(torch.randn(p.shape, generator=generator) * scale)
    return net


def inputs(batch: int, channels: int, height: int, width: int, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, channels, height, width, generator=generator)
    noise = torch.randn(batch, generator=generator) * 0.5
    return x, noise


@pytest.mark.parametrize("height, width, channels, patch, classes, attn", [
    (28, 28, 1, 1, 0, ()),
    (32, 32, 3, 1, 10, (16,)),
    (20, 20, 4, 1, 0, (10,)),
    (27, 27, 1, 1, 3, ()),       # odd: sides 27 -> 14 -> 7, up-sampled back to the skips' sizes
    (24, 32, 3, 1, 0, (16,)),    # non-square
    (32, 24, 1, 2, 5, ()),
    (28, 28, 1, 2, 10, (7,)),    # 28 -> patches 14 -> 7
    (27, 13, 4, 2, 0, ()),       # odd and non-square with patches
])
def test_output_shape_equals_input_shape(height, width, channels, patch, classes, attn):
    torch.manual_seed(0)
    net = perturb_zero_init(UNet(channels, **TINY, attn_resolutions=attn, num_classes=classes,
                                 resolution=max(height, width), patch_size=patch))
    x, noise = inputs(3, channels, height, width)
    labels = torch.tensor([0, classes - 1, -1]) if classes else None
    out = net(x, noise, labels)
    assert out.shape == x.shape
    assert out.dtype == x.dtype and torch.isfinite(out).all() and out.abs().sum() > 0


def test_attention_layers_sit_at_the_requested_feature_map_sides():
    """attn_resolutions name feature-map sides after patching (28 -> 14 -> 7 -> 4)."""
    sides = []
    net = UNet(1, model_channels=8, channel_mult=(1, 2, 2), num_blocks=1, attn_resolutions=(7,),
               resolution=28, patch_size=2)
    attention = [m for m in list(net.down.modules()) + list(net.up.modules()) if isinstance(m, Attention)]
    assert len(attention) == 3  # one after the down block, two after the up blocks at side 7
    for m in attention:
        m.register_forward_hook(lambda mod, args, out: sides.append(tuple(out.shape[-2:])))
    net(*inputs(2, 1, 28, 28))
    assert sides == [(7, 7)] * 3
    none = UNet(1, model_channels=8, channel_mult=(1, 2, 2), num_blocks=1, attn_resolutions=(8,),
                resolution=28, patch_size=2)
    assert not any(isinstance(m, Attention) for m in none.down.modules())


def test_label_minus_one_is_unconditional_and_equals_none():
    torch.manual_seed(0)
    net = perturb_zero_init(UNet(1, **TINY, num_classes=4, resolution=12)).eval()
    x, noise = inputs(3, 1, 12, 12)
    unconditional = net(x, noise, None)
    assert torch.equal(net(x, noise, torch.full((3,), -1)), unconditional)
    mixed = net(x, noise, torch.tensor([2, -1, 0]))
    assert torch.allclose(mixed[1], unconditional[1], atol=1e-6)
    # Labels do matter: a real class gives a different prediction from "no class".
    assert not torch.allclose(mixed[0], unconditional[0], atol=1e-4)
    assert not torch.allclose(mixed[2], unconditional[2], atol=1e-4)


def test_fresh_net_outputs_zeros_so_the_denoiser_returns_c_skip_x():
    torch.manual_seed(0)
    net = UNet(3, **TINY, num_classes=2, attn_resolutions=(8,), resolution=16)
    x, noise = inputs(4, 3, 16, 16)
    assert torch.equal(net(x, noise, torch.tensor([0, 1, -1, 1])), torch.zeros_like(x))
    denoiser = EDMDenoiser(net, sigma_data=0.5)
    sigma = torch.tensor([0.01, 0.5, 2.0, 80.0])
    c_skip = edm_scalings(sigma, 0.5)[0].reshape(-1, 1, 1, 1)
    assert torch.allclose(denoiser(x, sigma), c_skip * x, rtol=1e-6, atol=0)


@pytest.mark.parametrize("patch, classes", [(1, 3), (2, 0)])
def test_gradients_reach_every_parameter(patch, classes):
    torch.manual_seed(0)
    net = perturb_zero_init(UNet(2, model_channels=8, channel_mult=(1, 2, 2), num_blocks=1,
                                 attn_resolutions=(8, 4), num_classes=classes, resolution=16,
                                 patch_size=patch))
    x, noise = inputs(4, 2, 16, 16)
    labels = torch.tensor([0, 1, 2, -1]) if classes else None
    target = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    ((net(x, noise, labels) - target) ** 2).mean().backward()
    missing = [name for name, p in net.named_parameters() if p.grad is None or not p.grad.any()]
    assert missing == []


def test_fresh_net_trains_only_its_output_layer_on_the_first_step():
    """Why the test above perturbs: a fresh net's gradient stops at the zeroed output conv."""
    torch.manual_seed(0)
    net = UNet(1, **TINY, resolution=8)
    x, noise = inputs(2, 1, 8, 8)
    (net(x, noise) - 1).square().sum().backward()
    assert net.out[-1].weight.grad.any()
    assert not net.stem.weight.grad.any()


def test_same_seed_same_network_different_seed_different_network():
    def build(seed):
        torch.manual_seed(seed)
        return perturb_zero_init(UNet(1, **TINY, num_classes=3, resolution=12), seed=seed)

    a, b, c = build(0), build(0), build(1)
    x, noise = inputs(2, 1, 12, 12)
    labels = torch.tensor([0, 2])
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), name
    assert torch.equal(a(x, noise, labels), b(x, noise, labels))
    assert not torch.allclose(a(x, noise, labels), c(x, noise, labels))


def test_each_sample_is_independent_of_the_rest_of_the_batch():
    torch.manual_seed(0)
    net = perturb_zero_init(UNet(1, **TINY, num_classes=3, attn_resolutions=(6,),
                                 resolution=12)).eval()
    x, noise = inputs(4, 1, 12, 12)
    labels = torch.tensor([0, 1, 2, -1])
    batch = net(x, noise, labels)
    for i in range(4):
        single = net(x[i:i + 1], noise[i:i + 1], labels[i:i + 1])
        assert torch.allclose(single, batch[i:i + 1], atol=1e-5)
