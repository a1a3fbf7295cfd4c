"""Augmentation: DiffAugment, ADA and EDM's non-leaking pipeline on tiny seeded batches."""
from __future__ import annotations

import pytest
import torch

from genforge.augment import (AUGMENT_LABEL_DIM, ada_augment, ada_update, diffaugment,
                              nonleaking_augment)
from genforge.errors import ConfigError

pytestmark = pytest.mark.usefixtures("one_thread")


def images(b: int = 6, c: int = 3, h: int = 8, w: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.rand(b, c, h, w, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def rng(seed: int = 1) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# Each pipeline as images -> images at full strength, so the shared checks run over all three.
PIPELINES = {
    "diffaugment": lambda x, g: diffaugment(x, g),
    "ada": lambda x, g: ada_augment(x, 1.0, g),
    "nonleaking": lambda x, g: nonleaking_augment(x, 1.0, g)[0],
}


def changed(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per image: does y differ from x anywhere?"""
    return (x != y).flatten(1).any(dim=1)


@pytest.mark.parametrize("name", PIPELINES)
def test_gradients_reach_the_input(name):
    x = images(c=3, h=9, w=7).requires_grad_()
    weights = torch.rand(x.shape, generator=rng(5))
    (PIPELINES[name](x, rng()) * weights).sum().backward()
    assert torch.isfinite(x.grad).all()
    assert (x.grad != 0).flatten(1).any(dim=1).all()  # every image passes gradient back


@pytest.mark.parametrize("name", PIPELINES)
@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("size", [(8, 8), (25, 17)])
def test_shapes_and_seeds(name, channels, size):
    x = images(c=channels, h=size[0], w=size[1])
    first, again, other = (PIPELINES[name](x, rng(s)) for s in (1, 1, 2))
    assert first.shape == x.shape and first.dtype == x.dtype
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_p_zero_is_an_exact_identity_and_draws_nothing():
    x, g = images(), rng()
    state = g.get_state()
    assert ada_augment(x, 0.0, g) is x
    assert ada_augment(x, torch.tensor(0.0), g) is x
    y, labels = nonleaking_augment(x, 0.0, g)
    assert y is x
    assert labels.shape == (len(x), AUGMENT_LABEL_DIM) and not labels.any()
    assert torch.equal(g.get_state(), state)


def test_ada_keeps_grey_grey_and_leaves_alpha_to_geometry():
    grey = images(b=16, c=1)
    rgba = torch.cat([grey.expand(-1, 3, -1, -1), torch.full_like(grey, 0.3)], dim=1)
    out = ada_augment(rgba, 1.0, rng())
    # Every colour op (hue and saturation too) maps the grey diagonal to itself.
    assert torch.allclose(out[:, 0], out[:, 1], atol=1e-5)
    assert torch.allclose(out[:, 0], out[:, 2], atol=1e-5)
    # A constant alpha stays constant through any resampling and is not recoloured.
    assert torch.allclose(out[:, 3], torch.tensor(0.3), atol=1e-6)
    assert changed(rgba[:, :3], out[:, :3]).all()
    assert ada_augment(grey, 1.0, rng()).shape == grey.shape


def test_diffaugment_colour_leaves_alpha_alone():
    x = images(c=4)
    out = diffaugment(x, rng(), policy=("color",))
    assert torch.equal(out[:, 3], x[:, 3])
    assert changed(x[:, :3], out[:, :3]).all()


def test_diffaugment_rejects_unknown_ops():
    with pytest.raises(ConfigError, match="blur"):
        diffaugment(images(), rng(), policy=("color", "blur"))


def test_cutout_zeroes_a_square_of_half_the_side():
    for h, w in ((16, 16), (25, 17)):
        size_y, size_x = int(h / 2 + 0.5), int(w / 2 + 0.5)
        out = diffaugment(torch.ones(64, 1, h, w), rng(), policy=("cutout",))
        assert set(out.unique().tolist()) == {0.0, 1.0}
        full = 0
        for hole in out[:, 0] == 0:
            rows, cols = hole.any(dim=1).nonzero().flatten(), hole.any(dim=0).nonzero().flatten()
            height, width = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
            assert hole.sum() == height * width  # one rectangle: the square, clipped at the border
            assert height <= size_y and width <= size_x
            full += int(height == size_y and width == size_x)
        assert full > 0


def test_translation_shifts_content_with_zeros_behind():
    h, w = 16, 12
    x = (torch.arange(h * w, dtype=torch.float32) + 1).view(1, 1, h, w).repeat(32, 1, 1, 1)
    out = diffaugment(x, rng(), policy=("translation",))
    reach_y, reach_x = 2, int(w / 8 + 0.5)
    padded = torch.nn.functional.pad(x[0, 0], [reach_x] * 2 + [reach_y] * 2)
    shifts = set()
    for image in out[:, 0]:
        found = [(dy, dx) for dy in range(-reach_y, reach_y + 1) for dx in range(-reach_x, reach_x + 1)
                 if torch.equal(image, padded[reach_y + dy:reach_y + dy + h, reach_x + dx:reach_x + dx + w])]
        assert len(found) == 1
        shifts.add(found[0])
    assert len(shifts) > 5


def flags(labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per image, which of EDM's ops the labels say were applied (see the layout in augment.py)."""
    return {"xflip": labels[:, 0] != 0, "yflip": labels[:, 1] != 0, "turn": labels[:, 2:4].any(dim=1),
            "other": labels[:, 4:].any(dim=1)}


def test_nonleaking_labels_are_nonzero_exactly_for_changed_images():
    x = images(b=256, c=1, h=7, w=6)
    out, labels = nonleaking_augment(x, 0.3, rng())
    assert labels.shape == (256, AUGMENT_LABEL_DIM) and labels.dtype == torch.float32
    f = flags(labels)
    # x-flip, y-flip and a half turn together are the identity: labelled, yet rightly unchanged.
    undone = f["xflip"] & f["yflip"] & (labels[:, 2] == -2) & ~f["other"]
    assert torch.equal(changed(x, out), labels.any(dim=1) & ~undone)
    assert 0.3 < labels.any(dim=1).float().mean() < 0.95


def test_flips_and_quarter_turns_are_exact_pixel_copies():
    x = images(b=512, c=2, h=7, w=7)
    out, labels = nonleaking_augment(x, 0.3, rng())
    f = flags(labels)
    xflip_only = f["xflip"] & ~f["yflip"] & ~f["turn"] & ~f["other"]
    yflip_only = f["yflip"] & ~f["xflip"] & ~f["turn"] & ~f["other"]
    turn_only = f["turn"] & ~f["xflip"] & ~f["yflip"] & ~f["other"]
    assert xflip_only.any() and yflip_only.any() and turn_only.any()
    assert torch.equal(out[xflip_only], x[xflip_only].flip(3))
    assert torch.equal(out[yflip_only], x[yflip_only].flip(2))
    for i in turn_only.nonzero().flatten():
        turns = {(-1.0, 1.0): 1, (-2.0, 0.0): 2, (-1.0, -1.0): 3}[tuple(labels[i, 2:4].tolist())]
        assert torch.equal(out[i], x[i].rot90(turns, dims=(1, 2)))


def test_quarter_turn_of_a_non_square_image_is_a_true_rotation():
    from genforge.augment import _rotate, _warp
    x = images(b=2, c=1, h=25, w=17)
    out = _warp(x, _rotate(torch.zeros(2), torch.ones(2)))
    # The 17 x 17 middle turns in place; the rest of the tall frame is filled by reflection.
    assert torch.equal(out[:, :, 4:21], x[:, :, 4:21].rot90(1, dims=(2, 3)))


def test_ada_changes_images_at_the_rate_its_ops_imply():
    p, n = 0.1, 1000
    x = images(b=n, c=3)
    frac = changed(x, ada_augment(x, p, rng())).float().mean().item()
    # Twelve ops each fire with probability p, but x-flip and luma flip then pick "no" half the time,
    # a quarter turn is no turn a quarter of the time, and an integer shift of 8 x [-1/8, 1/8] pixels
    # rounds to zero in both axes a quarter of the time.
    unchanged = (1 - p / 2) ** 2 * (1 - 3 * p / 4) ** 2 * (1 - p) ** 8
    assert abs(frac - (1 - unchanged)) < 0.05
    assert 1 - (1 - p / 2) ** 12 < frac < 1 - (1 - p) ** 12


def test_ada_update_moves_towards_the_target_and_clamps():
    step = dict(target=0.6, images=1000, speed_images=500_000)
    assert ada_update(0.1, 0.8, **step) == pytest.approx(0.102)
    assert ada_update(0.1, 0.2, **step) == pytest.approx(0.098)
    assert ada_update(0.1, 0.6, **step) == 0.1
    assert ada_update(0.001, 0.0, **step) == 0.0
    top = ada_update(0.9995, 1.0, **step)
    assert 0.999 < top < 1.0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu_with_a_cpu_generator():
    x = images(b=8, c=4, h=9, w=11)
    for name, fn in PIPELINES.items():
        on_gpu = fn(x.cuda(), rng()).cpu()
        assert torch.allclose(on_gpu, fn(x, rng()), atol=1e-4), name
        assert fn(x.cuda(), torch.Generator("cuda").manual_seed(1)).shape == x.shape
