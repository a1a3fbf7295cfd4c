"""Masked (discrete) diffusion: what each number of reveal steps costs and gives, judged by the
content kind's own metrics (run by hand; issue 23, part 5).

    genforge train sokoban --minutes 30 --run runs/sokoban
    python benchmarks/bench_discrete_steps.py runs/sokoban/model --data sokoban \\
        --counts 8,16,32,64 -n 500 --seeds 0,1,2
    genforge train bach-chorales --minutes 30 --run runs/bach
    python benchmarks/bench_discrete_steps.py runs/bach/model --data bach-chorales -n 1000

For each count, `genforge.evaluate(MODEL, DATA, steps=count)` with the kind's default metrics
(levels: playability, novelty, diversity, tile patterns; music: the musical metrics), and the
sampling time per item measured apart on --time-n items. Prints one markdown table per seed
set (mean over seeds) and writes OUT/discrete_steps.json.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
import genforge  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model")
    parser.add_argument("--data", required=True)
    parser.add_argument("--counts", default="8,16,32,64")
    parser.add_argument("-n", type=int, default=500)
    parser.add_argument("--time-n", type=int, default=64)
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    counts = [int(c) for c in args.counts.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    model = genforge.load(args.model, device="cpu")
    values: dict[int, dict[str, list[float]]] = {}
    timing: dict[int, float] = {}
    for count in counts:
        started = time.perf_counter()
        model.generate(args.time_n, seed=10**6, steps=count, sign=False, watermark=False)
        timing[count] = 1000 * (time.perf_counter() - started) / args.time_n
        for seed in seeds:
            result = genforge.evaluate(args.model, args.data, n=args.n, seed=seed * 10**6,
                                       steps=count, out=out / f"steps-{count}-seed-{seed}")
            for r in result["records"]:
                if r["value"] is not None:
                    values.setdefault(count, {}).setdefault(r["label"], []).append(r["value"])
        print(f"{count} steps done ({timing[count]:.1f} ms an item)", flush=True)
    labels = list(values[counts[0]])
    lines = [f"{args.model} on {args.data}: {args.n} items per point, seeds {seeds}, "
             f"{os.environ.get('OMP_NUM_THREADS', 'default')} thread(s)", "",
             "| steps | ms per item | " + " | ".join(labels) + " |",
             "|---|---|" + "---|" * len(labels)]
    for count in counts:
        cells = [f"{statistics.mean(values[count][label]):.4g}"
                 + (f" ±{statistics.stdev(values[count][label]):.2g}"
                    if len(values[count][label]) > 1 else "")
                 for label in labels]
        lines.append(f"| {count} | {timing[count]:.1f} | " + " | ".join(cells) + " |")
    print("\n".join(lines))
    (out / "discrete_steps.json").write_text(json.dumps(
        {"model": args.model, "data": args.data, "n": args.n, "seeds": seeds,
         "ms_per_item": timing, "values": values}, indent=2))
    (out / "discrete_steps.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
