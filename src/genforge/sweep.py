"""The cost-quality curve of a model's sampling: FD and sampling time per sample at each number
of network evaluations, for each deterministic sampler the model's family has (a diffusion
model: euler, dpmpp-2m, heun; a consistency-tuned model: its 1- and 2-step sampler).
`genforge evaluate MODEL --steps-sweep 1,2,4,8,16,35` runs it beside the usual metrics and draws
it in the report.
"""
from __future__ import annotations

import math
import time
from contextlib import contextmanager
from typing import Any

from .errors import ConfigError
from .metrics import registry
from .metrics.plots import escape, svg_line_chart
from .sampling import EVALS_PER_STEP

# Deterministic samplers only: a sweep compares the cost of the same ODE solved more or less
# finely, and an ancestral sampler's noise would make each point a different draw.
SWEPT = {"diffusion": ("euler", "dpmpp-2m", "heun"), "consistency": ("consistency",)}
MAX_COUNTS = 16


def parse_counts(text: str | list | tuple) -> tuple[int, ...]:
    """'1,2,4,8' -> (1, 2, 4, 8): distinct counts of network evaluations, each 1 to 1000."""
    parts = text.split(",") if isinstance(text, str) else list(text)
    try:
        counts = sorted({int(str(p).strip()) for p in parts if str(p).strip()})
    except ValueError:
        raise ConfigError(f"--steps-sweep takes evaluation counts separated by commas (e.g. "
                          f"1,2,4,8,16,35), got {text!r:.60}") from None
    if not counts or counts[0] < 1 or counts[-1] > 1000 or len(counts) > MAX_COUNTS:
        raise ConfigError(f"--steps-sweep takes 1 to {MAX_COUNTS} counts from 1 to 1000, got "
                          f"{text!r:.60}")
    return tuple(counts)


def plan(family: str, counts: tuple[int, ...],
         samplers: tuple[str, ...] | None = None) -> list[tuple[str, int]]:
    """(sampler, steps) per point whose unguided network evaluations are one of the counts, for
    the family's samplers (or those of them named): Heun evaluates twice a step but once at the
    last, so it reaches only odd counts (2 steps: 3); a consistency model only 1 and 2."""
    if family not in SWEPT:
        raise ConfigError(f"--steps-sweep applies to diffusion and consistency models, not a "
                          f"{family} model")
    points = []
    for sampler in (s for s in SWEPT[family] if samplers is None or s in samplers):
        for count in counts:
            if sampler == "heun":
                steps = (count + 1) // 2
                if steps < 2 or 2 * steps - 1 != count:
                    continue
                points.append((sampler, steps))
            elif sampler == "consistency":
                if count <= 2:
                    points.append((sampler, count))
            else:
                points.append((sampler, count // EVALS_PER_STEP[sampler]))
    if not points:
        raise ConfigError(f"none of the counts {list(counts)} suit a {family} model "
                          "(a consistency-tuned model samples in 1 or 2 evaluations)")
    return points


@contextmanager
def counted_rows(module):
    """[rows the module's forward has seen] while inside: one row is one item's evaluation."""
    seen = [0]
    handle = module.register_forward_pre_hook(
        lambda _, args: seen.__setitem__(0, seen[0] + len(args[0])))
    try:
        yield seen
    finally:
        handle.remove()


def steps_sweep(model, counts: tuple[int, ...], *, reference, extractor, n: int, seed: int,
                fd_dim: int | None, device, batch_size: int = 256,
                samplers: tuple[str, ...] | None = None, **sampling: Any) -> list[dict]:
    """One row per (sampler, evaluations): FD-<extractor> of n samples (seeds seed..seed+n-1)
    against the reference, with its bootstrap interval, and the sampling seconds per sample
    on this machine. sampling: other options (guidance) held fixed across the sweep, else the
    model's defaults. Evaluations are counted as the network sees them: a guided step of a
    class-conditional model costs two (with and without the class), so guided points lie at up
    to twice the counts asked for (less where the guidance interval leaves steps unguided)."""
    if fd_dim is None and n <= extractor.dim:  # evaluate's rule: a few samples per dimension
        fd_dim = min(extractor.dim - 1, n // 4)
    chosen = model.sampling(**sampling)
    guidance, interval = chosen.get("guidance", 1.0), list(chosen.get("guidance_interval", ()))
    rows = []
    for sampler, steps in plan(model.config.family, counts, samplers):
        options = {**sampling, "sampler": sampler, "steps": steps}
        started = time.perf_counter()
        with counted_rows(model.module) as seen:
            items = model.generate(n, seed=seed, batch_size=batch_size, watermark=False,
                                   sign=False, **options)
        seconds = time.perf_counter() - started
        evaluations = round(seen[0] / n)
        protocol = registry.Protocol(generated=n, reference_limit=n, seed=seed, fd_dim=fd_dim,
                                     fd_resamples=10, sampler={"family": model.family.name,
                                                               **model.sampling(**options)})
        result = registry.evaluate(lambda count: items[:count], reference, extractor,
                                   metrics=("fd",), protocol=protocol,
                                   cache_dir=registry.default_cache_dir(), device=device)
        record = result.records[0]
        rows.append({"sampler": sampler, "steps": steps, "evaluations": evaluations,
                     "guidance": guidance, "guidance_interval": interval,
                     "label": record.label, "fd": record.value, "ci_low": record.ci_low,
                     "ci_high": record.ci_high, "seconds_per_sample": seconds / n,
                     "samples": n})
    return rows


def _guidance(row: dict) -> str:
    """1.8, or 1.8 for sigma in (0.3, 5] where an interval limits it."""
    interval = row.get("guidance_interval") or ()
    shown = f"{row['guidance']:g}"
    if interval and row["guidance"] != 1.0:
        shown += f" for sigma in ({interval[0]:g}, {interval[1]:g}]"
    return shown


def sweep_html(rows: list[dict], title: str = "") -> str:
    """The sweep as a report section: FD over log2(evaluations), a line per sampler, and a table."""
    series: dict[str, list[tuple[float, float]]] = {}
    for r in rows:
        if r["fd"] is not None:
            series.setdefault(f"{title}{r['sampler']}", []).append(
                (math.log2(r["evaluations"]), r["fd"]))
    label = rows[0]["label"] if rows else "FD"
    table = ["<table><tr><th>sampler</th><th>steps</th><th>guidance</th>"
             f"<th>network evaluations</th><th>{escape(label)}</th><th>95% interval</th>"
             "<th>ms per sample</th></tr>"]
    for r in rows:
        ci = "" if r["ci_low"] is None else f"[{r['ci_low']:.4g}, {r['ci_high']:.4g}]"
        value = "undefined" if r["fd"] is None else f"{r['fd']:.4g}"
        table.append(f"<tr><td>{escape(r['sampler'])}</td><td>{r['steps']}</td>"
                     f"<td>{_guidance(r)}</td>"
                     f"<td>{r['evaluations']}</td><td>{value}</td><td>{ci}</td>"
                     f"<td>{1000 * r['seconds_per_sample']:.2f}</td></tr>")
    return (svg_line_chart(series, "network evaluations (log2)", label) + "\n"
            + "".join(table) + "</table>\n")
