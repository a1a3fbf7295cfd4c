"""Inpainting keeps known entries exactly and fills the rest consistently; harmonising keeps the
given melody; the Markov baseline is seeded and well formed."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from genforge.families.diffusion import inpaint_items
from genforge.modalities.music import MUSIC
from genforge.music import baseline, corpus, dataset, harmonize
from genforge.music import representation as rep
from genforge.sampling import SeededNoise, karras_sigmas
from genforge.sampling.inpaint import sample_inpaint

FIXTURES = Path(__file__).parent / "fixtures" / "music"


def mixture_denoiser(points: torch.Tensor):
    """The exact denoiser D(x, sigma) = E[x0 | x] when the data are these points, equally likely."""
    flat_points = points.reshape(len(points), -1).double()

    def denoise(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(len(x), -1).double()
        d2 = torch.cdist(flat, flat_points) ** 2
        weights = torch.softmax(-d2 / (2 * sigma.double().reshape(-1, 1) ** 2), dim=1)
        return (weights @ flat_points).reshape(x.shape).to(x.dtype)
    return denoise


POINTS = torch.tensor([[1, 1, 1, 1, 1, -1, 1, -1],
                       [-1, -1, -1, -1, -1, 1, -1, 1],
                       [1, 1, 1, 1, -1, -1, -1, -1]], dtype=torch.float32)


@pytest.mark.parametrize("eta,resample", [(1.0, 1), (0.0, 1), (1.0, 3)])
def test_known_entries_exact_unknown_consistent(eta, resample):
    n = 40
    known = POINTS[0].expand(n, 8).clone() + 0.25  # known half is off the data: kept regardless
    known[:, :4] = 1.0
    mask = torch.tensor([True] * 4 + [False] * 4)
    noise = SeededNoise(range(n))
    sigmas = karras_sigmas(24, 0.002, 20.0)
    x = sample_inpaint(mixture_denoiser(POINTS), noise((8,)) * sigmas[0], sigmas, known, mask,
                       noise=noise, eta=eta, resample=resample)
    assert torch.equal(x[:, :4], known[:, :4])
    unknown = x[:, 4:]
    to_a = (unknown - POINTS[0, 4:]).abs().amax(dim=1)
    to_c = (unknown - POINTS[2, 4:]).abs().amax(dim=1)
    assert (torch.minimum(to_a, to_c) < 1e-2).all()  # never point B, whose known half differs
    if eta > 0:  # a stochastic sampler finds both completions
        assert 0.15 < (to_a < to_c).float().mean() < 0.85


def test_inpaint_is_seeded():
    mask = torch.tensor([True] * 4 + [False] * 4)
    known = torch.ones(3, 8)

    def run(seeds):
        noise = SeededNoise(seeds)
        sigmas = karras_sigmas(8, 0.002, 20.0)
        return sample_inpaint(mixture_denoiser(POINTS), noise((8,)) * sigmas[0], sigmas,
                              known[:len(seeds)], mask, noise=noise)
    assert torch.equal(run([5, 6, 7])[1], run([6, 7])[0])


@pytest.fixture(scope="module")
def crops() -> np.ndarray:
    paths = {p.name: p for p in corpus.bach_chorale_paths()}
    pieces = [corpus.read_piece(paths["bwv347.mxl"], "bwv347")]
    return dataset.crop_pieces(pieces, bars=4, hop=3).items


def test_harmonize_recovers_and_keeps_melody(crops):
    denoiser = mixture_denoiser(rep.satb_to_model(torch.from_numpy(crops)))
    target = crops[1]
    given = np.zeros_like(crops[:2])
    given[:, 0] = target[0]
    mask = np.zeros(given.shape, dtype=bool)
    mask[:, 0] = True
    # sigma_max 10 already drowns one-hot data; from 80, noise in the unknown voices can commit
    # them to another crop before the melody's evidence counts (RePaint's known weakness)
    out = inpaint_items(denoiser, MUSIC, torch.from_numpy(given), torch.from_numpy(mask), [0, 1],
                        sigmas=karras_sigmas(16, 0.002, MUSIC.inpaint_sigma_max)).numpy()
    assert (out[:, 0] == target[0]).all()
    assert (out == target).all()  # the only chorale crop with this melody is the answer


def test_harmonize_a_melody_file(crops):
    codes, mask = harmonize.read_given(FIXTURES / "melody.mid")
    assert codes.shape == mask.shape == (4, 64) and mask[0].all() and not mask[1:].any()
    assert [n.pitch for n in rep.satb_to_notes(codes)][:4] == [72, 71, 69, 67]
    denoiser = mixture_denoiser(rep.satb_to_model(torch.from_numpy(crops)))
    out = inpaint_items(denoiser, MUSIC, torch.from_numpy(codes[None]), torch.from_numpy(mask[None]),
                        [3], sigmas=karras_sigmas(12, 0.002, 80.0)).numpy()[0]
    assert (out[0] == codes[0]).all() and out[1:].any()


def test_force_given_never_touches_given():
    given = harmonize.given_mask(voices=(0,), bars=(1,), steps=32)
    codes = np.zeros((4, 32), dtype=np.uint8)
    codes[0, 16:] = rep.pitch_code(70, False)  # a given hold whose step before is generated
    generated = np.full((4, 32), rep.pitch_code(60, False), dtype=np.uint8)
    out = harmonize.force_given(generated, codes, given)
    assert (out[given] == codes[given]).all()
    assert out[1, 0] == rep.pitch_code(60, True)  # generated holds made well formed


def test_markov_baseline(crops):
    model = baseline.fit_markov(crops, order=2)
    a = baseline.sample_markov(model, 3, 64, seed=4)
    b = baseline.sample_markov(model, 2, 64, seed=4)
    assert a.shape == (3, 4, 64) and a.dtype == torch.uint8
    assert torch.equal(a[:2], b) and not torch.equal(a, baseline.sample_markov(model, 3, 64, seed=5))
    assert (rep.canonical_satb(a.numpy()) == a.numpy()).all()
    train_pitches = set(rep.satb_pitches(crops).ravel().tolist())
    assert set(rep.satb_pitches(a.numpy()).ravel().tolist()) <= train_pitches
    with pytest.raises(ValueError):
        baseline.fit_markov(crops, order=0)


def test_read_given_aligns_a_pickup(tmp_path):
    from music21 import meter, note, stream
    pickup = stream.Measure([meter.TimeSignature("4/4"), note.Note(67, quarterLength=1)], number=0)
    pickup.paddingLeft = 3.0
    full = stream.Measure([note.Note(p, quarterLength=1) for p in (72, 71, 72, 74)], number=1)
    part = stream.Part()
    part.append([pickup, full])
    stream.Score([part]).write("musicxml", fp=tmp_path / "pickup.musicxml")
    codes, mask = harmonize.read_given(tmp_path / "pickup.musicxml", steps=32)
    assert [(n.pitch, n.start) for n in rep.satb_to_notes(codes)][:2] == [(67, 12), (72, 16)]
