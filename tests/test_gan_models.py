"""Raw GAN networks: shapes at any size, conditioning, gradient flow, noise inputs, truncation,
projection discriminators, bf16 autocast, and clear errors for mismatched architectures."""
from __future__ import annotations

import pytest
import torch

from genforge.models.gan import build_gan, feature_sides, minibatch_std

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = dict(latent_dim=16, generator_channels=4, discriminator_channels=4, max_channels=16,
            mapping_layers=2)
CASES = [("stylegan2", (1, 28, 28)), ("stylegan2", (3, 32, 32)), ("stylegan2", (4, 25, 17)),
         ("dcgan", (1, 28, 28)), ("dcgan", (3, 32, 32)), ("dcgan", (4, 25, 17)), ("mlp", (2,))]


def inputs(batch: int, latent_dim: int, num_classes: int, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn(batch, latent_dim, generator=generator)
    labels = torch.arange(batch) % num_classes if num_classes else None
    return z, labels


def seeded_noise(seed: int):
    """A noise callable for StyleGAN2's noise inputs, drawing from its own seeded stream."""
    generator = torch.Generator().manual_seed(seed)
    return lambda shape: torch.randn(shape, generator=generator)


def zero_noise(shape: tuple[int, ...]) -> torch.Tensor:
    return torch.zeros(shape)


def test_feature_sides_halve_with_rounding_up_until_the_smaller_side_is_at_most_8():
    assert feature_sides(28, 28) == [(7, 7), (14, 14), (28, 28)]
    assert feature_sides(32, 32) == [(8, 8), (16, 16), (32, 32)]
    assert feature_sides(64, 64) == [(8, 8), (16, 16), (32, 32), (64, 64)]
    assert feature_sides(25, 17) == [(7, 5), (13, 9), (25, 17)]
    assert feature_sides(6, 40) == [(6, 40)]


@pytest.mark.parametrize("architecture, shape", CASES)
@pytest.mark.parametrize("num_classes", [0, 3])
def test_shapes_dtypes_and_gradients_reach_every_parameter(architecture, shape, num_classes):
    torch.manual_seed(0)
    generator, discriminator = build_gan(architecture, shape, num_classes, **TINY)
    assert generator.item_shape == shape and generator.latent_dim == 16
    assert generator.num_classes == discriminator.num_classes == num_classes
    z, labels = inputs(6, 16, num_classes)  # 6: the minibatch-std group falls back from 4 to 3
    items = generator(z, labels)
    assert items.shape == (6, *shape) and items.dtype == torch.float32
    logits = discriminator(items, labels)
    assert logits.shape == (6,) and logits.dtype == torch.float32
    assert torch.isfinite(items).all() and torch.isfinite(logits).all()
    logits.square().sum().backward()
    for name, p in [*generator.named_parameters(), *discriminator.named_parameters()]:
        assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient reaches {name}"


@pytest.mark.parametrize("architecture, shape", CASES)
def test_discriminator_supports_r1_double_backward(architecture, shape):
    torch.manual_seed(0)
    _, discriminator = build_gan(architecture, shape, **TINY)
    reals = torch.randn(5, *shape, requires_grad=True)
    (grad,) = torch.autograd.grad(discriminator(reals).sum(), reals, create_graph=True)
    grad.square().sum().backward()
    # Biases drop out: the input gradient of a piecewise-linear network does not depend on them.
    for name, p in discriminator.named_parameters():
        if name.endswith("weight"):
            assert p.grad is not None and p.grad.abs().sum() > 0, f"R1 does not reach {name}"


def test_stylegan2_output_is_a_function_of_z_and_the_noise_callable():
    torch.manual_seed(0)
    generator, _ = build_gan("stylegan2", (1, 12, 12), **TINY)
    with torch.no_grad():  # noise strengths start at zero: give the noise inputs some effect
        for name, p in generator.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.5)
    z, _ = inputs(3, 16, 0)
    first = generator(z, noise=seeded_noise(1))
    assert torch.equal(first, generator(z, noise=seeded_noise(1)))
    assert not torch.allclose(first, generator(z, noise=seeded_noise(2)))
    # without a callable the noise comes from the global RNG
    torch.manual_seed(5)
    global_a = generator(z)
    torch.manual_seed(5)
    assert torch.equal(global_a, generator(z))


def test_stylegan2_truncation_zero_gives_the_tracked_mean_image():
    torch.manual_seed(0)
    generator, _ = build_gan("stylegan2", (1, 12, 12), **TINY)
    assert not generator.w_avg.any()
    generator.train()
    generator(torch.randn(32, 16))  # training mode gathers the mean w ...
    assert not generator.w_avg.any()
    generator.fold_w_avg()  # ... which moves w_avg once a phase (the GAN family calls this)
    w_avg = generator.w_avg.clone()
    assert w_avg.any()
    generator.eval()
    z, _ = inputs(4, 16, 0)
    with torch.no_grad():
        images = generator(z, truncation=0.0, noise=zero_noise)
        assert torch.allclose(images, images[:1].expand_as(images))
        untruncated = generator(z, noise=zero_noise)
        assert not torch.allclose(untruncated[0], untruncated[1])
    assert torch.equal(generator.w_avg, w_avg)  # evaluation leaves it alone


@pytest.mark.parametrize("architecture, shape", [("dcgan", (1, 12, 12)), ("mlp", (2,))])
def test_truncation_scales_z_for_dcgan_and_mlp(architecture, shape):
    torch.manual_seed(0)
    generator, _ = build_gan(architecture, shape, **TINY)
    generator.eval()
    z, _ = inputs(4, 16, 0)
    with torch.no_grad():
        assert torch.allclose(generator(z, truncation=0.5), generator(z * 0.5))


@pytest.mark.parametrize("architecture, shape", [("stylegan2", (1, 12, 12)),
                                                 ("dcgan", (1, 12, 12)), ("mlp", (2,))])
def test_projection_discriminator_and_conditional_generator_depend_on_labels(architecture, shape):
    torch.manual_seed(0)
    generator, discriminator = build_gan(architecture, shape, num_classes=4, **TINY)
    generator.eval()
    z, _ = inputs(4, 16, 0)
    items = torch.randn(4, *shape)
    a, b = torch.zeros(4, dtype=torch.long), torch.full((4,), 3)
    with torch.no_grad():
        assert not torch.allclose(discriminator(items, a), discriminator(items, b))
        assert not torch.allclose(generator(z, a, noise=zero_noise),
                                  generator(z, b, noise=zero_noise))
    with pytest.raises(ValueError, match="labels"):
        generator(z)
    with pytest.raises(ValueError, match="labels"):
        discriminator(items)


def test_minibatch_std_works_for_any_batch_size():
    x = torch.randn(7, 3, 2, 2)  # prime: groups of one, whose std is zero
    assert torch.allclose(minibatch_std(x)[:, -1], torch.full((7, 2, 2), 1e-4))
    x = torch.randn(8, 3, 2, 2)  # groups of 4: samples n and n + 2 share a group
    out = minibatch_std(x)[:, -1, 0, 0]
    assert out.shape == (8,) and torch.equal(out[:2], out[2:4]) and out[0] != out[1]


@pytest.mark.parametrize("architecture, shape", CASES[:4] + CASES[-1:])
def test_bf16_autocast_runs_on_cpu_and_returns_float32(architecture, shape):
    torch.manual_seed(0)
    generator, discriminator = build_gan(architecture, shape, 2, **TINY)
    z, labels = inputs(2, 16, 2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        items = generator(z, labels, truncation=0.7)
        logits = discriminator(items, labels)
    assert items.dtype == logits.dtype == torch.float32
    assert torch.isfinite(items).all() and torch.isfinite(logits).all()


@pytest.mark.parametrize("architecture, shape, message", [
    ("stylegan3", (1, 28, 28), "unknown GAN architecture 'stylegan3'"),
    ("mlp", (1, 28, 28), "'mlp' is for 1-D items"),
    ("stylegan2", (2,), "'stylegan2' is for images"),
    ("dcgan", (2,), "'dcgan' is for images"),
    ("stylegan2", (1, 0, 28), "side below 1"),
])
def test_mismatched_architecture_and_shape_raise_clear_errors(architecture, shape, message):
    with pytest.raises(ValueError, match=message):
        build_gan(architecture, shape)
