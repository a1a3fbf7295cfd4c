"""Training throughput on 1 and several processes (torchrun through `genforge train --nproc N`),
measured in the same run: images/s and scaling efficiency.

    python benchmarks/bench_distributed.py [--steps 60] [--preset cpu-small] [--out DIR]

CPU rows (every run the same global batch of 64 in 2 micro-batches, so all compute the same
thing): 1 process x 1 thread (the baseline), 1 process x 2 threads (what one process gets from
two cores), 2 processes x 1 thread (what torchrun gets from them). Scaling efficiency =
images/s of N processes / (N x images/s of 1 process at the same threads per process).
GPU rows, where CUDA is present: 1 GPU, and N GPUs (all of this machine's) with N processes, each
with --batch items a step (weak scaling: the global batch is N x --batch).
images/s is the median of the logged windows after the first (warm-up, the step-0 preview) from
RUN/stats.jsonl; on a CPU every process uses OMP_NUM_THREADS threads.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cli import run_genforge, cpu_model  # noqa: E402

TARGET_GPU_EFFICIENCY = 0.85  # the target from 1 to 2 GPUs


def images_per_s(run: Path) -> float:
    """Median images/s over the logged windows after the first."""
    records = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    rates = [r["images_per_s"] for r in records if "images_per_s" in r][1:]
    return statistics.median(rates)


def measure(out: Path, label: str, processes: int, threads: int, device: str, args, *,
            batch: int, micro_batches: int) -> dict:
    run = out / label.replace(" ", "_")
    command = ["train", "fashion-mnist-sample", "--run", str(run), "--preset", args.preset,
               "--steps", str(args.steps), "--batch-size", str(batch),
               "--grad-accum", str(micro_batches), "--log-every", str(max(1, args.steps // 6)),
               "--sample-every", "1000000", "--checkpoint-every", "1000000",
               "--precision", "fp32" if device == "cpu" else "bf16", "--device", device,
               "--progress", "none", "--nproc", str(processes)]
    wall = run_genforge(command, threads, out / "log.txt")
    rate = images_per_s(run)
    row = {"label": label, "processes": processes, "threads_per_process": threads,
           "device": device, "images_per_s": round(rate, 1), "wall_s": round(wall, 1),
           "command": f"OMP_NUM_THREADS={threads} genforge " + " ".join(command)}
    print(f"{label:>28}: {rate:8.1f} images/s  (wall {wall:.0f} s)", flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--preset", default="cpu-small")
    parser.add_argument("--out", default=None, help="output folder (default: a temporary one)")
    parser.add_argument("--no-cpu", action="store_true", help="only the GPU rows")
    args = parser.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="bench-distributed-"))
    out.mkdir(parents=True, exist_ok=True)
    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores; torch {torch.__version__}; load average "
          f"{os.getloadavg()[0]:.1f} before; preset {args.preset}, global batch {args.batch}, "
          f"{args.steps} steps; output in {out}", flush=True)
    rows = []
    if not args.no_cpu:
        same = dict(batch=args.batch, micro_batches=2)  # the same computation in every row
        base = measure(out, "cpu 1 process x 1 thread", 1, 1, "cpu", args, **same)
        two = measure(out, "cpu 2 processes x 1 thread", 2, 1, "cpu", args, **same)
        threads = measure(out, "cpu 1 process x 2 threads", 1, 2, "cpu", args, **same)
        rows += [base, two, threads]
        print(f"scaling efficiency, 1 -> 2 CPU processes: "
              f"{two['images_per_s'] / (2 * base['images_per_s']):.0%}; 2 processes x 1 thread / "
              f"1 process x 2 threads: {two['images_per_s'] / threads['images_per_s']:.2f}")
    gpus = torch.cuda.device_count()
    if gpus:
        # weak scaling, as multi-GPU training is used: --batch per GPU, the global batch grows
        one = measure(out, "1 GPU", 1, 4, "cuda", args, batch=args.batch, micro_batches=1)
        rows.append(one)
        if gpus > 1:
            many = measure(out, f"{gpus} GPUs", gpus, 4, "cuda", args, batch=args.batch * gpus,
                           micro_batches=gpus)
            rows.append(many)
            efficiency = many["images_per_s"] / (gpus * one["images_per_s"])
            print(f"scaling efficiency, 1 -> {gpus} GPUs: {efficiency:.0%} (target "
                  f"{TARGET_GPU_EFFICIENCY:.0%})")
    else:
        print("no CUDA GPU here: GPU rows not measured")
    print(f"load average {os.getloadavg()[0]:.1f} after")
    (out / "bench_distributed.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
