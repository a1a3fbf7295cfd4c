"""The Sokoban solver on the shipped levels: how often it gives up at its budget, whether it ever
calls a shipped level unsolvable, and its time per level (run by hand; prints a markdown table)

    python benchmarks/bench_solver.py --workers 2 --out /tmp/solver-bench

Every level of cavepacker-data's sets (all of them, as `genforge train sokoban --level-sets all`)
up to --max-size is solved at --budget states (20,000: levels.playable.NODE_BUDGET) by
levels.sokoban.solve as shipped (PI-corral pruning, A* for the first quarter of the budget, then
weighted A* at 3 from both ends: a backward search pulling boxes from the goals joins), by the same
solver searching forward only (as shipped before the backward search), and, as the peer in the same
run, by plain A* (weight 1 throughout, no PI-corrals, forward only). A shipped level is solvable,
so "unsolvable" there would be a bug; "gave up" is the share of levels with the budget spent. Times
are per level on one core each.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from _cli import cpu_model  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

VARIANTS = {"shipped": {}, "forward only": {"backward": None},
            "plain A*": {"weight": 1.0, "pi_corrals": False, "backward": None}}


def _solve(job: tuple[str, str, bytes, tuple[int, int], int]) -> dict:
    import numpy as np

    from genforge.levels import sokoban as sk
    variant, name, data, shape, budget = job
    grid = np.frombuffer(data, dtype=np.uint8).reshape(shape)
    started = time.process_time()
    result = sk.solve(grid, budget, **VARIANTS[variant])
    return {"variant": variant, "name": name, "status": result.status, "pushes": result.pushes,
            "moves": result.moves, "optimal": result.optimal, "nodes": result.nodes,
            "seconds": time.process_time() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-size", type=int, default=10)
    parser.add_argument("--budget", type=int, default=20_000)
    parser.add_argument("--sets", default="all")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--out", default="runs/solver-bench")
    args = parser.parse_args()
    from genforge.levels import sources
    levels, _ = sources.load_sokoban(None, args.sets)
    small = [lv for lv in levels if max(lv.grid.shape) <= args.max_size]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(v, lv.name, lv.grid.tobytes(), lv.grid.shape, args.budget)
            for v in args.variants.split(",") for lv in small]
    load_before, started = os.getloadavg()[0], time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool, open(out / "solver-rows.jsonl", "w") as log:
        rows = []
        for row in pool.map(_solve, jobs, chunksize=4):
            rows.append(row)
            log.write(json.dumps(row) + "\n")
    lines = [f"Sokoban solver on {len(small)} shipped levels up to {args.max_size}x"
             f"{args.max_size} (cavepacker-data sets: {args.sets}), {args.budget:,} states per "
             f"level; {cpu_model()}, {args.workers} worker(s), load average {load_before:.1f} "
             f"before, {os.getloadavg()[0]:.1f} after; {time.perf_counter() - started:.0f} s",
             "", "| solver | solved | gave up | unsolvable (a bug) | push-optimal | median s | "
             "90th pct s | mean states |", "|---|---|---|---|---|---|---|---|"]
    for variant in args.variants.split(","):
        mine = [r for r in rows if r["variant"] == variant]
        seconds = sorted(r["seconds"] for r in mine)
        count = lambda s: sum(r["status"] == s for r in mine)  # noqa: E731
        solved = [r for r in mine if r["status"] == "solvable"]
        lines.append(f"| {variant} | {count('solvable')} | {count('unknown')} "
                     f"({count('unknown') / len(mine):.1%}) | {count('unsolvable')} | "
                     f"{sum(r['optimal'] for r in solved)} of {len(solved)} | "
                     f"{statistics.median(seconds):.2f} | "
                     f"{seconds[int(0.9 * (len(seconds) - 1))]:.2f} | "
                     f"{statistics.mean(r['nodes'] for r in mine):,.0f} |")
    text = "\n".join(lines)
    print(text)
    (out / "solver-results.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
