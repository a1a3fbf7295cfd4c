"""Few-step generation: a diffusion teacher's cost-quality curve beside its consistency-tuned
copy (genforge distill), on Fashion-MNIST (run by hand; issue 23's targets).

The full protocol (hours on 2 idle cores):

    genforge train fashion-mnist --preset cpu-small --minutes 30 --run runs/fm-teacher
    genforge features train fashion-mnist --out runs/fashion-mnist-encoder.safetensors
    python benchmarks/bench_few_step.py --teacher runs/fm-teacher/model \\
        --encoder runs/fashion-mnist-encoder.safetensors --tune-minutes 7.5 -n 10000 \\
        --seeds 0,1,2 --rows targets --out runs/few-step

Without --tuned it runs `genforge distill` on the teacher first (timed), once per seed with that
seed: two tunings with different seeds differ by more than two draws of samples (at a quarter of
the teacher, 1-step FD 0.95-1.10 over three tunings, against +-0.03 over three sample draws of
one), so each seed's tuned row comes from its own tuning. For each seed it measures
FD-<encoder> of n samples against n training images and the sampling time per sample:
the teacher with euler and dpmpp-2m at 1, 2, 4, 8, 16 evaluations, dpmpp-2m and Heun (18
steps) at 35, dpmpp-2m also at 10 and 100 (--rows targets: only 1, 2, 10, 35 and 100, what
the targets compare; --rows ratios: only dpmpp-2m at 35, the ratio targets' denominator); the
tuned model at 1 and 2. Prints the table (mean over seeds, their range and a 95% t
interval), the targets' verdicts, and writes few_step.json, few_step.svg (FD over evaluations) and
grid.png (rows: teacher Heun 35 evaluations, tuned 2, tuned 1; the same seeds, one class per
column).
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import genforge  # noqa: E402
from _cli import cpu_model, interval, run_genforge  # noqa: E402
from genforge import io  # noqa: E402
from genforge.config import DataConfig  # noqa: E402
from genforge.metrics.encoder import load_encoder  # noqa: E402
from genforge.metrics.plots import svg_line_chart  # noqa: E402
from genforge.modalities import IMAGE  # noqa: E402
from genforge.sweep import steps_sweep  # noqa: E402
from genforge.training.speed import seconds_per_step  # noqa: E402

# (samplers, counts) swept for the teacher: every deterministic sampler on the short end, the
# default sampler also at 10 and 100 for the "10 within 10% of 100" target
TEACHER_SWEEPS = [(("euler", "dpmpp-2m"), (1, 2, 4, 8, 16)), (("dpmpp-2m", "heun"), (35,)),
                  (("dpmpp-2m",), (10, 100))]
# --rows targets: only what the targets compare (the teacher at 1, 2, 10, 35 and 100), 189
# evaluations a sample instead of 241, for the 10,000-sample protocol
TARGET_SWEEPS = [(("euler", "dpmpp-2m"), (1, 2)), (("dpmpp-2m", "heun"), (35,)),
                 (("dpmpp-2m",), (10, 100))]
# --rows ratios: only the teacher's best 35-evaluation sampler (DPM-Solver++ in every run so far),
# the denominator of the two ratio targets: 35 evaluations a sample instead of 189
RATIO_SWEEPS = [(("dpmpp-2m",), (35,))]
SWEEPS = {"all": TEACHER_SWEEPS, "targets": TARGET_SWEEPS, "ratios": RATIO_SWEEPS}


def sweep_all(teacher, tuned, reference, encoder, n: int, seeds: list[int],
              sweeps=TEACHER_SWEEPS) -> list[dict]:
    """Every row of every seed, tagged with the model ('teacher' or 'tuned') and the seed."""
    rows = []
    for seed in seeds:
        first = seed * 1_000_000  # disjoint seed ranges: seed s draws s*1e6 .. s*1e6+n-1
        for samplers, counts in sweeps:
            for r in steps_sweep(teacher, counts, reference=reference, extractor=encoder, n=n,
                                 seed=first, fd_dim=None, device="cpu", samplers=samplers,
                                 guidance=1.0):  # the protocol: unguided, as the tuned model
                rows.append({"model": "teacher", "seed": seed, **r})
                print(f"seed {seed} teacher {r['sampler']} {r['evaluations']}: {r['fd']:.4g} "
                      f"({1000 * r['seconds_per_sample']:.2f} ms/sample)", flush=True)
        for r in steps_sweep(tuned, (1, 2), reference=reference, extractor=encoder, n=n,
                             seed=first, fd_dim=None, device="cpu"):
            rows.append({"model": "tuned", "seed": seed, **r})
            print(f"seed {seed} tuned {r['evaluations']}: {r['fd']:.4g} "
                  f"({1000 * r['seconds_per_sample']:.2f} ms/sample)", flush=True)
    return rows


def summarise(rows: list[dict]) -> dict[tuple[str, str, int], dict]:
    """(model, sampler, evaluations) -> mean FD, its range and 95% t interval over seeds, mean
    ms per sample."""
    groups: dict[tuple[str, str, int], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["model"], r["sampler"], r["evaluations"]), []).append(r)
    return {key: {"fd": statistics.mean(r["fd"] for r in group),
                  "low": min(r["fd"] for r in group), "high": max(r["fd"] for r in group),
                  "interval": interval([r["fd"] for r in group])[1:],
                  "ms": 1000 * statistics.mean(r["seconds_per_sample"] for r in group),
                  "seeds": len(group)}
            for key, group in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][2], kv[0][1]))}


def best(table: dict, model: str, evaluations: int) -> tuple[str, float]:
    """The sampler with the lowest mean FD at this many evaluations, and that FD."""
    options = [(v["fd"], sampler) for (m, sampler, e), v in table.items()
               if m == model and e == evaluations]
    fd, sampler = min(options)
    return sampler, fd


def verdicts(table: dict, tuning: dict) -> list[str]:
    sampler35, fd35 = best(table, "teacher", 35)
    two = table[("tuned", "consistency", 2)]["fd"]
    one = table[("tuned", "consistency", 1)]["fd"]
    lines = [f"2 steps: FD {two:.4g} = {two / fd35:.2f}x the teacher's best at 35 evaluations "
             f"({sampler35}, {fd35:.4g}); target <= 1.15x: {'met' if two <= 1.15 * fd35 else 'NOT met'}",
             f"1 step: FD {one:.4g} = {one / fd35:.2f}x; target <= 2.0x: "
             f"{'met' if one <= 2.0 * fd35 else 'NOT met'}"]
    for evaluations, fd in ((1, one), (2, two)):
        if not any(m == "teacher" and e == evaluations for m, _, e in table):
            continue  # --rows ratios
        sampler, teacher_fd = best(table, "teacher", evaluations)
        lines.append(f"{evaluations} evaluation(s): tuned {fd:.4g} vs the teacher's best "
                     f"training-free sampler ({sampler}) {teacher_fd:.4g}: "
                     f"{'beats it' if fd < teacher_fd else 'does NOT beat it'}")
    if ("teacher", "dpmpp-2m", 100) in table:
        ten, hundred = (table[("teacher", "dpmpp-2m", e)]["fd"] for e in (10, 100))
        lines.append(f"teacher dpmpp-2m: FD {ten:.4g} at 10 evaluations vs {hundred:.4g} at 100 "
                     f"({ten / hundred - 1:+.1%}); target within 10%: "
                     f"{'met' if abs(ten / hundred - 1) <= 0.10 else 'NOT met'}")
    lines.append(f"tuning: {tuning['seconds']:.0f} s for {tuning['steps']} steps vs the teacher's "
                 f"{tuning['teacher_seconds']:.0f} s for {tuning['teacher_steps']} steps: "
                 f"{tuning['seconds'] / tuning['teacher_seconds']:.0%} of its time (both runs' "
                 "own clocks: they move with other work on the machine); in step cost (a "
                 f"tuning step timed here at {tuning['step_cost']:.2f} teacher steps) "
                 f"{tuning['steps'] * tuning['step_cost'] / tuning['teacher_steps']:.0%}; "
                 "target <= 25%")
    return lines


def grid(teacher, tuned, out: Path) -> None:
    """Rows: teacher Heun at 35 evaluations, tuned 2 steps, tuned 1 step; seeds 0-9, one class
    per column (seed s draws class s mod 10)."""
    import torch
    rows = [teacher.generate(10, seed=0, sampler="heun", steps=18, guidance=1.0, sign=False,
                             watermark=False),
            tuned.generate(10, seed=0, steps=2, sign=False, watermark=False),
            tuned.generate(10, seed=0, steps=1, sign=False, watermark=False)]
    picture = IMAGE.preview(torch.cat(rows), columns=10)
    io.write_with(out, lambda tmp: picture.save(tmp, format="PNG"))


def step_cost(teacher, tuned, dataset, tuned_steps: int, steps: int = 6,
              repeats: int = 3) -> float:
    """A tuning step's cost in teacher steps, both timed here in fp32 on the same batches: the
    mean over the tuning's stages, each weighted by the steps it ran (a step costs less in the
    first stages, where most targets are the clean images and need no evaluation). Each timing
    is the median of `repeats`, the teacher's taken between the stages' (one timing of 6 steps
    on a shared machine was seen 40% off)."""
    from genforge.families import FAMILIES

    def timed(model, at: int = 0) -> float:
        def prepare(module):  # start the tuner at optimiser step `at`: its stage
            module.micro_batches.fill_(at * model.config.train.grad_accum)
        return seconds_per_step(model.config, dataset, FAMILIES[model.config.family], IMAGE,
                                steps=steps, precision="fp32",
                                prepare=prepare if at else None)["seconds_per_step"]

    per_stage = tuned.config.consistency.stage_steps
    starts = range(0, tuned_steps, per_stage)
    times: dict[object, list[float]] = {}
    for _ in range(repeats):
        for at in starts:
            times.setdefault("teacher", []).append(timed(teacher))
            times.setdefault(at, []).append(timed(tuned, at))
    tuning = sum(statistics.median(times[at]) * (min(at + per_stage, tuned_steps) - at)
                 for at in starts)
    return tuning / tuned_steps / statistics.median(times["teacher"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--teacher", required=True, help="the teacher's model folder (RUN/model)")
    parser.add_argument("--tuned", default=None, help="distilled model folders, comma-separated: "
                        "one that every seed samples, or one per seed, tuned with that seed "
                        "(default: run genforge distill now, once per seed with --seed S, into "
                        "OUT/tuned-sS: tunings differ by more than samples do)")
    parser.add_argument("--tune-minutes", type=float, default=None)
    parser.add_argument("--tune-steps", type=int, default=None)
    parser.add_argument("--stage-steps", type=int, default=None)
    parser.add_argument("--encoder", required=True, help="a Fashion-MNIST encoder file "
                        "('genforge features train')")
    parser.add_argument("-n", type=int, default=10_000)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", 2)))
    parser.add_argument("--rows", choices=tuple(SWEEPS), default="all",
                        help="all: the teacher's whole curve (1-16, 35, 10, 100); targets: only "
                             "the counts the targets compare; ratios: only the teacher's "
                             "DPM-Solver++ at 35 (the two ratio targets)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    teacher_folder = Path(args.teacher)
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.tuned is None:
        budget = (["--minutes", str(args.tune_minutes)] if args.tune_minutes else
                  ["--steps", str(args.tune_steps or 1000)])
        stage = ["--stage-steps", str(args.stage_steps)] if args.stage_steps else []
        tuned_folders = []
        for seed in seeds:
            run = out / f"tuned-s{seed}"
            run_genforge(["distill", str(teacher_folder), "--run", str(run), "--seed", str(seed),
                          *budget, *stage, "--progress", "none"], args.threads,
                         out / "commands.log")
            tuned_folders.append(run / "model")
    else:
        tuned_folders = [Path(folder) for folder in args.tuned.split(",")]
        if len(tuned_folders) not in (1, len(seeds)):
            parser.error(f"--tuned: {len(tuned_folders)} folders for {len(seeds)} seeds "
                         "(expected one, or one per seed)")
    import torch
    torch.set_num_threads(args.threads)
    teacher = genforge.load(teacher_folder, device="cpu")
    tuned_models = [genforge.load(folder, device="cpu") for folder in tuned_folders]
    tuned = tuned_models[0]  # the first: its time and step cost are shown
    taught, tuned_training = teacher.manifest["training"], tuned.manifest["training"]
    tuning = {"steps": tuned_training["steps"], "seconds": tuned_training["seconds"],
              "teacher_steps": taught["steps"], "teacher_seconds": taught["seconds"]}
    reference = IMAGE.open(DataConfig(source="fashion-mnist"))
    tuning["step_cost"] = step_cost(teacher, tuned, reference, tuning["steps"])
    encoder = load_encoder(args.encoder)
    grid(teacher, tuned, out / "grid.png")
    rows: list[dict] = []
    for done, seed in enumerate(seeds):  # the report is rewritten after each seed
        rows += sweep_all(teacher, tuned_models[done % len(tuned_models)], reference, encoder,
                          args.n, [seed], SWEEPS[args.rows])
        report(rows, seeds[:done + 1], args, teacher_folder, tuned_folders, taught, tuning, out)


def report(rows: list[dict], seeds: list[int], args, teacher_folder: Path,
           tuned_folders: list[Path], taught: dict, tuning: dict, out: Path) -> None:
    """Print the table and verdicts of the seeds done so far; write few_step.{md,json,svg}."""
    table = summarise(rows)
    label = rows[0]["label"]
    lines = [f"CPU: {cpu_model()}, {args.threads} thread(s); {args.n} samples vs {args.n} "
             f"training images per point, seeds {seeds}; extractor {label} ({args.encoder})",
             f"teacher: {teacher_folder} ({taught['steps']} steps, {taught['seconds']} s); "
             f"tuned: {', '.join(map(str, tuned_folders))} (the first: {tuning['steps']} steps, "
             f"{tuning['seconds']} s)", "",
             f"| model | sampler | network evaluations | {label} (mean over seeds) | range | "
             "95% t interval | ms per sample |", "|---|---|---|---|---|---|---|"]
    for (model, sampler, evaluations), v in table.items():
        lines.append(f"| {model} | {sampler} | {evaluations} | {v['fd']:.4g} | "
                     f"[{v['low']:.4g}, {v['high']:.4g}] | [{v['interval'][0]:.4g}, "
                     f"{v['interval'][1]:.4g}] | {v['ms']:.2f} |")
    lines += ["", *verdicts(table, tuning)]
    print("\n".join(lines))
    series: dict[str, list[tuple[float, float]]] = {}
    for (model, sampler, evaluations), v in table.items():
        series.setdefault(f"{model} {sampler}", []).append((math.log2(evaluations), v["fd"]))
    io.write_text(out / "few_step.svg", svg_line_chart(series, "network evaluations (log2)", label))
    io.write_json(out / "few_step.json", {"rows": rows, "summary": [
        {"model": m, "sampler": s, "evaluations": e, **v} for (m, s, e), v in table.items()],
        "tuning": tuning, "verdicts": verdicts(table, tuning), "cpu": cpu_model(),
        "threads": args.threads, "n": args.n, "seeds": seeds})
    io.write_text(out / "few_step.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
