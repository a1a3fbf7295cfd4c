"""Music items fit the diffusion family's U-Net: a training step, sampling and harmonising run."""
from __future__ import annotations

import numpy as np
import torch

from genforge.families.diffusion import edm_loss, inpaint_items
from genforge.modalities.music import MUSIC
from genforge.models.precond import EDMDenoiser
from genforge.models.unet import UNet
from genforge.music import harmonize
from genforge.music import representation as rep
from genforge.music.representation import Note
from genforge.sampling import SAMPLERS, SeededNoise, conditional, karras_sigmas


def test_unet_trains_and_samples_on_music_planes():
    items = torch.from_numpy(np.stack([rep.notes_to_satb(
        [Note(60 + k + 12 * (3 - v) - 24, s, s + 4, v) for v in range(4) for s in range(0, 32, 4)], 32)
        for k in range(4)]))
    channels, height, width = MUSIC.model_shape(tuple(items.shape[1:]))
    torch.manual_seed(0)
    denoiser = EDMDenoiser(UNet(channels, 16, (1, 2), 1, resolution=max(height, width)), 0.5)
    optimiser = torch.optim.Adam(denoiser.parameters(), lr=1e-3)
    x = MUSIC.to_model(items)
    loss = edm_loss(denoiser, x, None, torch.Generator().manual_seed(0), -1.2, 1.2, 0.0)
    loss.backward()
    optimiser.step()
    assert torch.isfinite(loss)
    with torch.no_grad():
        noise = SeededNoise([0, 1])
        sigmas = karras_sigmas(3, 0.002, 10.0)
        out = SAMPLERS["euler"](conditional(denoiser, None), noise((channels, height, width)) * sigmas[0],
                                sigmas)
        codes = MUSIC.from_model(out)
        assert codes.shape == (2, 4, 32) and codes.dtype == torch.uint8
        given = items[:2].numpy()
        mask = harmonize.given_mask(voices=(0, 3), steps=32)[None].repeat(2, axis=0)
        filled = inpaint_items(conditional(denoiser, None), MUSIC, torch.from_numpy(given),
                               torch.from_numpy(mask), [0, 1],
                               sigmas=karras_sigmas(3, 0.002, 10.0)).numpy()
        assert (filled[mask] == given[mask]).all()
