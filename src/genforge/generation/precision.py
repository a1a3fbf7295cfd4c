"""The precision a model samples in: --precision auto|fp32|bf16, chosen as training's is (by
measurement where the CPU computes bf16 natively: whichever precision draws this model's samples
faster here, provided bf16's samples agree with fp32's), and recorded with the outputs."""
from __future__ import annotations

import time
from typing import Any

import torch

from ..errors import ConfigError
from ..families import Family, ModelSpec
from ..export import SAMPLING_MEMORY_FORMAT
from ..training.devices import autocast
from ..training.speed import (LAYOUTS, cached_measurement, fastest_choice, layouts_for,
                              unmeasured_choice)

PRECISIONS = ("auto", "fp32", "bf16")
# bf16's samples from the same seeds within 5% (relative RMS) of fp32's; a sampler that draws
# fresh tokens from the network's probabilities (the discrete family) may diverge further, and
# then samples in fp32, which is never wrong, only perhaps slower
SAMPLE_AGREEMENT = 0.05
MEASURED_ITEMS = 8


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ConfigError(f"--precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    return precision


def draw_timed(family: Family, module: torch.nn.Module, spec: ModelSpec, config,
               options: dict[str, Any], precision: str, device: torch.device,
               items: int = MEASURED_ITEMS) -> tuple[float, torch.Tensor]:
    """(seconds per item, the samples in model space) of one batch from seeds 0..items-1, after
    a one-item warm-up, in this precision."""
    labels = torch.arange(items) % spec.num_classes if spec.num_classes else None

    def draw(n: int) -> torch.Tensor:
        with torch.no_grad(), autocast(precision, device):
            return family.sample(module, list(range(n)), None if labels is None else labels[:n],
                                 item_shape=spec.model_shape, device=device, config=config,
                                 spec=spec, latents=None, **options).float().cpu()

    draw(1)
    started = time.perf_counter()
    x = draw(items)
    return (time.perf_counter() - started) / items, x


def choose_sampling_precision(requested: str, family: Family, module: torch.nn.Module,
                              spec: ModelSpec, config, options: dict[str, Any],
                              device: torch.device) -> dict:
    """{precision, why[, seconds_per_item]}: what a sampling call with these options runs in.
    auto measures both precisions on 8 items (cached per machine, network and options)."""
    fixed = unmeasured_choice(check_precision(requested), device)
    if fixed is not None:
        return fixed

    def measure() -> dict:
        # each precision with the network in each layout (convolutions follow their weights')
        runs = {}
        for layout in layouts_for(spec):
            if layout:
                module.to(memory_format=LAYOUTS[layout])
            for p in ("fp32", "bf16"):
                runs[p, layout] = draw_timed(family, module, spec, config, options, p, device)
        module.to(memory_format=SAMPLING_MEMORY_FORMAT)  # as loaded, until the choice is applied
        seconds = {key: r[0] for key, r in runs.items()}

        def agrees(fastest: dict) -> bool:
            fp32, bf16 = (runs[p, fastest[p]][1] for p in ("fp32", "bf16"))
            scale = fp32.pow(2).mean().sqrt().clamp(min=1e-8)
            return float((bf16 - fp32).pow(2).mean().sqrt() / scale) <= SAMPLE_AGREEMENT

        pick, fastest, agree = fastest_choice(seconds, agrees)
        times = {p: seconds[p, fastest[p]] for p in ("fp32", "bf16")}
        shown = {p: f" ({fastest[p]})" if fastest[p] else "" for p in times}
        why = (f"measured here: an item takes {1000 * times['fp32']:.3g} ms in fp32{shown['fp32']} "
               f"and {1000 * times['bf16']:.3g} ms in bf16{shown['bf16']}"
               + ("" if agree else " (bf16's samples disagreed with fp32's)"))
        return {"precision": pick, "layout": fastest[pick], "why": why,
                "seconds_per_item": {p: round(v, 5) for p, v in times.items()},
                "layouts": {f"{p} {layout}": round(v, 5) for (p, layout), v in seconds.items()
                            if layout}}

    return cached_measurement("sample", ["layouts", family.name, spec.to_dict(),
                                         config.to_dict()["network"], config.to_dict()["gan"],
                                         sorted(options.items())], measure)


def apply_layout(module: torch.nn.Module, choice: dict) -> None:
    """Put the network in the layout the choice measured fastest (as loaded where none was)."""
    layout = choice.get("layout")
    module.to(memory_format=LAYOUTS[layout] if layout else SAMPLING_MEMORY_FORMAT)


def precision_record(choice: dict) -> dict:
    """What a generation record says of the precision: which, and why."""
    return {"precision": choice["precision"], "precision_why": choice["why"]}
