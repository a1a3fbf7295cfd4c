"""How fast a configuration trains on this machine, measured: a few optimiser steps of the real
model on real batches, as the loop runs them (phases, micro-batches, autocast), timed after one
warm-up step. The preflight (--dry-run) turns it into the steps a time budget buys."""
from __future__ import annotations

import time
from contextlib import nullcontext

import torch

from ..config import RunConfig
from ..families import Family, ModelSpec
from ..modalities import Dataset, Modality
from .devices import autocast_dtype, resolve_device
from .state import DataStream


def seconds_per_step(config: RunConfig, dataset: Dataset, family: Family, modality: Modality,
                     steps: int = 3) -> dict:
    """{seconds_per_step, device, precision, measured_steps}: wall seconds of one optimiser step
    (every phase; one that runs every k steps counts 1/k), after one warm-up step of each."""
    t = config.train
    device = resolve_device(t.device)
    amp = autocast_dtype(t.precision, device)
    modality = modality.bind(dataset.vocabulary)
    spec = ModelSpec.for_dataset(dataset, modality)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(t.seed)
        model = family.build(spec, config).to(device)
        phases = family.phases(config, spec)
        optimizer = torch.optim.AdamW(model.parameters(), lr=t.lr)
        generator = torch.Generator(device).manual_seed(t.seed + 1)
        stream = DataStream(len(dataset), t.seed)
        micro = t.batch_size // t.grad_accum
        model.train()

        def run(phase) -> float:
            """Wall seconds of one optimiser step of this phase."""
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            started = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            for _ in range(t.grad_accum):
                index = stream.next(micro)
                x = modality.to_model(dataset.items[index]).to(device)
                labels = dataset.labels[index].to(device) if dataset.labels is not None else None
                with torch.autocast(device.type, amp) if amp else nullcontext():
                    loss = phase.loss(model, x, labels, generator)
                (loss / t.grad_accum).backward()
            optimizer.step()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            return time.perf_counter() - started

        for phase in phases:  # warm-up: allocations, oneDNN's kernel choice
            run(phase)
        # a phase that runs every k steps (a GAN's lazy R1) costs 1/k of its time per step
        seconds = sum(sum(run(phase) for _ in range(steps)) / steps / phase.interval
                      for phase in phases)
    return {"seconds_per_step": seconds, "device": str(device),
            "precision": str(amp).replace("torch.", "") if amp else "fp32",
            "measured_steps": steps}
