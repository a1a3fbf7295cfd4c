"""The consistency family: an EDM diffusion model tuned by Easy Consistency Tuning (ECT; Geng,
Pokle, Luo, Lin & Kolter 2024, "Consistency models made easy") to sample in 1-2 evaluations.

Written from the paper. The EDM denoiser already is a consistency function f(x, t) = D(x; t)
(c_skip(0) = 1, c_out(0) = 0 give f(x, 0) = x), so tuning only changes its weights:

- Loss (the paper's consistency-tuning objective, sec. 3): for data x and one noise n,
  x_t = x + t n and x_r = x + r n; minimise w(t, r) d(f(x_t, t), sg[f(x_r, r)]) with the target
  f at r computed from the current weights without gradient (no frozen teacher, no JVP).
- t ~ lognormal(P_mean, P_std) = (-1.1, 2.0) (the paper's training distribution of t).
- Mapping r(t) (sec. 3.3): r/t = 1 - n(t) / q^(a+1), n(t) = 1 + k sigmoid(-b t), clamped at 0;
  a is the stage (optimiser step // d), held at the final stage (4 by default: r/t at least
  1 - 5/32 there). At stage 0 with q = 2 most small t get r = 0, where the target is x itself:
  the diffusion model's own denoising loss, which is why tuning can start from it; each stage
  halves t - r, tightening towards the continuous consistency condition. Past about stage 7 a
  tuning of the cpu-small teacher degraded and then collapsed (1-step FD 10.8 after 3,120
  steps), so the stage stops rising; held at 4, longer tunings kept improving.
- Weighting w(t, r) = 1 / (t - r) (sec. 3.4), which keeps the loss the size of df/dt as r -> t.
- Distance d: the pseudo-Huber sqrt(|f_t - f_r|^2 + c^2) - c (iCT's, Song & Dhariwal 2023);
  its gradient is the squared loss's scaled by 1 / sqrt(|delta|^2 + c^2): ECT's adaptive weighting
  with p = 1/2, which keeps rare large differences from dominating.
- Dropout (ECT tunes CIFAR-10 with 0.2): both ends of the loss see the same dropout mask, so the
  difference measures the change in t, not two draws of the mask. The masks are drawn once, at t,
  and replayed at r (DropoutTape), and f at r is evaluated only for the items whose r > 0: at
  stage 0 most of the batch has r = 0 and a target that needs no network.
- Precision: from stage FP32_FROM_STAGE on, both ends run in fp32 whatever the run's precision:
  bf16 rounds f by about as much as f_t - f_r is there (below).
The equation numbers of the paper could not be checked offline; the sections are named instead.
"""
from __future__ import annotations

import math
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import torch
from torch import nn

from ..augment import nonleaking_augment
from ..config import RunConfig
from ..models.precond import EDMDenoiser
from ..options import Check, Declared, between, build, option
from ..sampling import MID_SIGMA, consistency_sigmas, sample_consistency
from .base import ModelSpec, Phase
from .diffusion import build_denoiser, sampling_start

MAX_STEPS = 2  # the tuned model is judged at 1 and 2 evaluations; more add little (ECT, table 1)
# The stage from which the loss's two evaluations run in fp32. Measured on a 4,600-step
# cpu-small teacher (256 images; t = 0.3, 3, 40): f_t - f_r is 1.0-1.3e-2 rms at stage 4,
# 3.0-6.2e-3 at 5, 1.5e-3 at 7, while bf16 autocast changes that difference by 1.9-3.2e-3 at
# every stage measured (2-10): from stage 5 on the loss would measure rounding
# (benchmarks/README.md, "Few-step").
FP32_FROM_STAGE = 5


@dataclass(frozen=True)
class ConsistencySampling(Declared):
    """How a consistency-tuned model samples: 1 or 2 evaluations, classifier-free guidance."""

    sampler: str = option("consistency", "consistency: map noise straight to a sample, then "
                          "(2 steps) re-noise to --mid-sigma and map again", choices=("consistency",))
    steps: int = option(2, "network evaluations: 1 or 2",
                        check=Check(lambda v: 1 <= v <= MAX_STEPS,
                                    f"1 or {MAX_STEPS} (a consistency-tuned model samples in one "
                                    "or two network evaluations)"))
    guidance: float = option(1.0, "classifier-free guidance scale (1: none)",
                             check=between(0.0, 100.0))
    mid_sigma: float = option(MID_SIGMA, "noise level of the second evaluation (2 steps)",
                              check=between(1e-3, 80.0))


def ect_r(t: torch.Tensor, stage: int, q: float, k: float, b: float) -> torch.Tensor:
    """ECT's mapping from t to r at a stage: r = t (1 - n(t) / q^(stage+1)), n = 1 + k sigmoid(-bt),
    never below 0."""
    n = 1 + k * torch.sigmoid(-b * t)
    return (t * (1 - n / q ** (stage + 1))).clamp(min=0)


def _precision(stage: int, device: torch.device):
    """The run's precision up to FP32_FROM_STAGE, fp32 from there (autocast off)."""
    return torch.autocast(device.type, enabled=False) if stage >= FP32_FROM_STAGE else nullcontext()


class DropoutTape:
    """The dropout masks of one evaluation of a network, so that a second evaluation on some of
    the same items applies the same masks (ECT's shared mask). The second evaluation reads its
    masks instead of drawing them: on a CPU, drawing the masks is a large share of a forward
    pass (measured: 30 of 105 ms of a 64-image pass of cpu-small with dropout 0.2). Masks come from
    the global generator, as nn.Dropout's do (the loop seeds and checkpoints it; an explicit
    generator would break a --compile graph at every dropout)."""

    def __init__(self, network: nn.Module):
        self.dropouts = [m for m in network.modules() if isinstance(m, nn.Dropout) and m.p > 0]
        self.masks: dict[nn.Module, list[torch.Tensor]] = {m: [] for m in self.dropouts}

    @contextmanager
    def _patched(self, forward):
        for module in self.dropouts:
            module.forward = forward.__get__(module)  # this instance only, until the end
        try:
            yield
        finally:
            for module in self.dropouts:
                del module.forward

    def record(self):
        """While open, each dropout of the network draws its mask here and keeps it."""
        tape = self

        def forward(module, x):
            if not module.training:
                return x
            keep = torch.rand(x.shape, device=x.device) >= module.p
            mask = keep.to(x.dtype) / (1 - module.p)
            tape.masks[module].append(mask)
            return x * mask

        return self._patched(forward)

    def replay(self, items: torch.Tensor):
        """While open, each dropout applies the next recorded mask, at the given batch items."""
        pending = {m: list(masks) for m, masks in self.masks.items()}

        def forward(module, x):
            return x * pending[module].pop(0)[items].to(x.dtype) if module.training else x

        return self._patched(forward)


def ect_loss(denoiser: nn.Module, images: torch.Tensor, labels: torch.Tensor | None,
             generator: torch.Generator, *, stage: int, config: RunConfig,
             augment_p: float = 0.0) -> torch.Tensor:
    """The consistency-tuning loss of one micro-batch at a stage (module docstring)."""
    c, d = config.consistency, config.diffusion
    b, device = images.shape[0], images.device
    augment_labels = None
    if augment_p > 0:
        images, augment_labels = nonleaking_augment(images, augment_p, generator)
    t = (torch.randn(b, device=device, generator=generator) * d.p_std + d.p_mean).exp()
    t = t.clamp(d.sigma_min, d.sigma_max)
    r = ect_r(t, stage, c.ratio_q, c.ratio_k, c.ratio_b)
    noise = torch.randn(images.shape, device=device, generator=generator)
    if labels is not None and d.label_dropout > 0:
        drop = torch.rand(b, device=device, generator=generator) < d.label_dropout
        labels = torch.where(drop, -1, labels)  # the same labels for both ends
    per_item = [-1, *([1] * (images.dim() - 1))]
    tape = DropoutTape(denoiser)
    with _precision(stage, device), tape.record():
        f_t = denoiser(images + t.view(per_item) * noise, t, labels, augment_labels)
    # r = 0 is the boundary f(x, 0) = x: the target is the clean item itself, no evaluation
    f_r = images.float().clone()
    live = (r > 0).nonzero().flatten()
    if len(live):
        pick = (lambda v: None if v is None else v[live])
        with _precision(stage, device), torch.no_grad(), tape.replay(live):
            f_r[live] = denoiser(images[live] + r[live].view(per_item) * noise[live],
                                 r[live].clamp(min=d.sigma_min),
                                 pick(labels), pick(augment_labels)).float()
    huber_c = c.huber_c if c.huber_c is not None else 0.00054 * math.sqrt(images[0].numel())
    distance = ((f_t.float() - f_r) ** 2).flatten(1).sum(1)
    distance = (distance + huber_c**2).sqrt() - huber_c
    return (distance / (t - r)).mean()


class ConsistencyTuner(nn.Module):
    """The module the loop trains: the denoiser, and the count of optimiser steps taken (in the
    checkpoint, so a resumed or rolled-back tuning is at the stage it was)."""

    def __init__(self, denoiser: EDMDenoiser):
        super().__init__()
        self.denoiser = denoiser
        self.register_buffer("micro_batches", torch.zeros((), dtype=torch.long))


class ConsistencyFamily:
    """Consistency tuning of an EDM model; given the teacher's weights (genforge distill), the
    module it builds starts from them; without (loading an exported model), the weights are
    loaded after."""

    name = "consistency"
    sampling = ConsistencySampling
    inpainting = None

    def __init__(self, teacher: dict[str, torch.Tensor] | None = None):
        self.teacher = teacher

    def supports(self, modality) -> str | None:
        return None

    def build(self, spec: ModelSpec, config: RunConfig) -> nn.Module:
        denoiser = build_denoiser(spec, config)
        if self.teacher is not None and not any(p.is_meta for p in denoiser.parameters()):
            denoiser.load_state_dict(self.teacher)
        return ConsistencyTuner(denoiser)

    def exported(self, module: nn.Module) -> nn.Module:
        return module.denoiser

    @staticmethod
    def stage(module: ConsistencyTuner, config: RunConfig) -> int:
        """The ECT stage: optimiser steps taken // stage_steps, at most final_stage."""
        c = config.consistency
        stage = int(module.micro_batches) // config.train.grad_accum // c.stage_steps
        return stage if c.final_stage is None else min(stage, c.final_stage)

    def phases(self, config: RunConfig, spec: ModelSpec) -> list[Phase]:
        augment_p = config.augment.augment_p if config.augment.augment == "nonleaking" else 0.0

        def loss(module, images, labels, generator):
            stage = self.stage(module, config)
            module.micro_batches += 1
            return ect_loss(module.denoiser, images, labels, generator, stage=stage,
                            config=config, augment_p=augment_p)

        return [Phase("consistency", lambda module: list(module.denoiser.parameters()), loss)]

    def stats(self, module: nn.Module) -> dict[str, float]:
        return {"micro_batches": int(module.micro_batches)}

    def latent_shape(self, module: nn.Module, item_shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(item_shape)

    @torch.no_grad()
    def sample(self, module: EDMDenoiser, seeds: list[int], class_labels: torch.Tensor | None,
               *, item_shape: tuple[int, ...], device: torch.device | str = "cpu",
               config: RunConfig | None = None, latents: torch.Tensor | None = None,
               spec: ModelSpec | None = None, callback=None, **options) -> torch.Tensor:
        """Samples for the given seeds in 1 or 2 evaluations; sample i depends only on seeds[i]
        and class_labels[i] (latents, unit-variance, replace the seeds' starting noise)."""
        o = build(ConsistencySampling, options)
        d = config.diffusion if config is not None else RunConfig().diffusion
        sigmas = consistency_sigmas(o.steps, d.sigma_max, (o.mid_sigma,)).to(device)
        noise, x, denoiser = sampling_start(module, seeds, class_labels, item_shape, latents,
                                            sigmas[0], o.guidance, device)
        return sample_consistency(denoiser, x, sigmas, noise=noise, callback=callback)


__all__ = ["ConsistencyFamily", "ConsistencySampling", "ConsistencyTuner", "DropoutTape",
           "ect_loss", "ect_r"]
