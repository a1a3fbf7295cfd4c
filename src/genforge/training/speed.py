"""How fast a configuration trains on this machine, measured: a few optimiser steps of the real
model on real batches, as the loop runs them (phases, micro-batches, autocast), timed after one
warm-up step. The preflight (--dry-run) turns it into the steps a time budget buys, and
--precision auto into the faster precision (the right one depends on the network and the
machine, not on a CPU flag: a small net ran 1.5x slower in bf16 on an AMX Xeon, a larger 1.76x
faster)."""
from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from collections.abc import Callable

import torch

from .. import io
from ..config import RunConfig
from ..errors import ConfigError
from ..families import Family, ModelSpec
from ..modalities import Dataset, Modality
from .devices import adamw, autocast, autocast_dtype, cpu_has_fast_bf16, resolve_device
from .state import DataStream


# The memory layouts a batch of 4-D items can be given in: convolutions follow their input's, and
# which is faster depends on the precision and the CPU (on a 2-core AMD EPYC, equal-architecture
# U-Net: channels-last 4% faster in fp32, 20% slower in bf16)
LAYOUTS = {"channels-last": torch.channels_last, "contiguous": torch.contiguous_format}


def in_layout(x: torch.Tensor, layout: str | None) -> torch.Tensor:
    """A batch in a layout (None: as the content kind made it); items that are not 4-D as they are."""
    if layout is None or x.dim() != 4:
        return x
    return x.contiguous(memory_format=LAYOUTS[layout])


def seconds_per_step(config: RunConfig, dataset: Dataset, family: Family, modality: Modality,
                     steps: int = 3, precision: str | None = None,
                     layout: str | None = None, prepare=None) -> dict:
    """{seconds_per_step, device, precision, measured_steps, first_loss}: wall seconds of one
    optimiser step (every phase; one that runs every k steps counts 1/k), after one warm-up step
    of each; first_loss is the first phase's loss on the first batch (the same in any precision,
    up to rounding). precision overrides the config's; layout is the batches' (in_layout);
    prepare(model), if given, sets up the fresh model first (a consistency tuner's stage)."""
    t = config.train
    device = resolve_device(t.device)
    amp = autocast_dtype(precision or t.precision, device)
    modality = modality.bind(dataset.vocabulary)
    spec = ModelSpec.for_dataset(dataset, modality)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(t.seed)
        model = family.build(spec, config).to(device)
        if prepare is not None:
            prepare(model)
        phases = family.phases(config, spec)
        optimizer = adamw(model.parameters(), device, lr=t.lr)
        generator = torch.Generator(device).manual_seed(t.seed + 1)
        stream = DataStream(len(dataset), t.seed)
        micro = t.batch_size // t.grad_accum
        model.train()

        losses: list[float] = []

        def run(phase) -> float:
            """Wall seconds of one optimiser step of this phase."""
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            started = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            for _ in range(t.grad_accum):
                index = stream.next(micro)
                x = in_layout(modality.to_model(dataset.items[index]), layout).to(device)
                labels = dataset.labels[index].to(device) if dataset.labels is not None else None
                with autocast(precision or t.precision, device):
                    loss = phase.loss(model, x, labels, generator)
                (loss / t.grad_accum).backward()
                losses.append(float(loss.detach()))
            optimizer.step()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            return time.perf_counter() - started

        warm = sum(run(phase) for phase in phases)  # warm-up: allocations, oneDNN's kernel choice
        if warm > 2.0:  # a slow network (the gpu preset on a CPU): one timed step says enough
            steps = 1
        # a phase that runs every k steps (a GAN's lazy R1) costs 1/k of its time per step
        seconds = sum(sum(run(phase) for _ in range(steps)) / steps / phase.interval
                      for phase in phases)
    return {"seconds_per_step": seconds, "device": str(device),
            "precision": str(amp).replace("torch.", "") if amp else "fp32",
            "measured_steps": steps, "first_loss": losses[0]}


LOSS_AGREEMENT = 0.05  # bf16's first loss within 5% of fp32's (measured: 0.1-1% on every preset)


PRECISION_ENV = "GENFORGE_PRECISION"  # fp32 or bf16: what auto means on this machine


def unmeasured_choice(precision: str, device: torch.device) -> dict | None:
    """The precision choice that needs no measurement (a fixed --precision, GENFORGE_PRECISION
    set, a GPU, a CPU without native bf16), or None where auto must time both precisions here."""
    if precision != "auto":
        return {"precision": precision, "why": f"--precision {precision}"}
    fixed = os.environ.get(PRECISION_ENV, "")
    if fixed:
        if fixed not in ("fp32", "bf16"):
            raise ConfigError(f"{PRECISION_ENV}={fixed!r}: expected fp32 or bf16 (or unset, "
                              "to measure)")
        return {"precision": fixed, "why": f"{PRECISION_ENV}={fixed}"}
    if device.type == "cuda":
        amp = autocast_dtype("auto", device)
        return {"precision": "bf16" if amp else "fp32",
                "why": "this GPU computes bf16" if amp else "this GPU has no bf16"}
    if not cpu_has_fast_bf16():
        return {"precision": "fp32", "why": "this CPU has no native bf16 (AMX or AVX512-BF16)"}
    return None


def cached_measurement(what: str, key: list, measure: Callable[[], dict]) -> dict:
    """measure(), cached per machine (CPU, core and thread count, torch version) and key: a
    damaged cache is measured again, an unwritable one costs a measurement next time."""
    digest = hashlib.sha256(json.dumps([platform.processor(), platform.machine(), os.cpu_count(),
                                        torch.__version__, torch.get_num_threads(), *key],
                                       sort_keys=True, default=str).encode()).hexdigest()[:24]
    cache = io.cache_dir("precision") / f"{what}-{digest}.json"
    if cache.exists():
        try:
            return {**json.loads(cache.read_text()), "cached": True}
        except ValueError:
            pass
    result = measure()
    try:
        io.write_json(cache, result)
    except OSError:
        pass
    return result


def layouts_for(spec: ModelSpec) -> list[str | None]:
    """The layouts auto measures: both for 4-D batches, none (as they come) otherwise."""
    return list(LAYOUTS) if len(spec.model_shape) == 3 else [None]


def fastest_choice(seconds: dict[tuple[str, str | None], float],
                   agrees: Callable[[dict[str, str | None]], bool]
                   ) -> tuple[str, dict[str, str | None], bool]:
    """(the precision to run in, each precision's fastest layout, whether bf16 agreed) from the
    seconds of each (precision, layout): bf16 only where it is faster and agrees(fastest) (its
    result matches fp32's, each in its fastest layout), else fp32, which is never wrong."""
    fastest = {p: min((layout for q, layout in seconds if q == p),
                      key=lambda layout: seconds[p, layout]) for p in ("fp32", "bf16")}
    agree = agrees(fastest)
    faster = seconds["bf16", fastest["bf16"]] < seconds["fp32", fastest["fp32"]]
    return ("bf16" if agree and faster else "fp32"), fastest, agree


def choose_precision(config: RunConfig, dataset: Dataset, family: Family,
                     modality: Modality) -> dict:
    """What --precision auto trains in, and why: on a GPU bf16 where supported; on a CPU without
    native bf16, fp32 (emulated bf16 ran 15x slower); on one with it, whichever of fp32 and bf16
    runs this network's steps faster here, measured (and cached per machine and network shape),
    provided bf16's loss agrees. A fixed --precision is taken as it is."""
    t = config.train
    fixed = unmeasured_choice(t.precision, resolve_device(t.device))
    if fixed is not None:
        return fixed
    spec = ModelSpec.for_dataset(dataset, modality)

    def measure() -> dict:
        runs = {(p, layout): seconds_per_step(config, dataset, family, modality, precision=p,
                                              layout=layout)
                for p in ("fp32", "bf16") for layout in layouts_for(spec)}
        seconds = {key: r["seconds_per_step"] for key, r in runs.items()}

        def agrees(fastest: dict) -> bool:
            fp32, bf16 = (runs[p, fastest[p]]["first_loss"] for p in ("fp32", "bf16"))
            return abs(bf16 - fp32) <= LOSS_AGREEMENT * abs(fp32)

        pick, fastest, agree = fastest_choice(seconds, agrees)
        times = {p: round(seconds[p, fastest[p]], 4) for p in ("fp32", "bf16")}
        shown = {p: f" ({fastest[p]} batches)" if fastest[p] else "" for p in times}
        why = (f"measured here: a step takes {times['fp32']:.3g} s in fp32{shown['fp32']} and "
               f"{times['bf16']:.3g} s in bf16{shown['bf16']}"
               + ("" if agree else " (bf16's loss disagreed with fp32's)"))
        return {"precision": pick, "layout": fastest[pick], "why": why, "seconds_per_step": times,
                "layouts": {f"{p} {layout}": round(v, 4) for (p, layout), v in seconds.items()
                            if layout},
                "measured_steps": runs["fp32", fastest["fp32"]]["measured_steps"]}

    return cached_measurement("train", ["layouts", family.name, spec.to_dict(),
                                        config.to_dict()["network"],
                                        config.to_dict()["gan"], t.batch_size, t.grad_accum],
                              measure)
