"""Small-data training: does augmentation help, for GANs and diffusion, at equal training time?
(run by hand; prints a table and writes OUT/results.json)

    python benchmarks/bench_small_data.py --minutes 8 --out runs/bench-small-data

For each training-set size (default 1,000 and 60,000 Fashion-MNIST images) it trains four models
for the same time on the same number of threads, through the CLI a user would run:

    gan            genforge train DATA --family gan --augment off
    gan-ada        genforge train DATA --family gan --augment ada
    diffusion      genforge train DATA --augment off
    diffusion-aug  genforge train DATA --augment nonleaking

and judges each with `genforge evaluate` against the held-out test split (10,000 images):
FD-domain (the domain encoder of `genforge features train`), precision/recall and the share of
samples that copy a training image (nearest-neighbour ratio in pixel space, against the model's
own training set). The 1,000 images are the first 100 of each class of the training split,
written as a folder of PNGs with one sub-folder per class, as a user's data would be.

--parallel N runs N jobs at once (each with --threads threads): on a machine with many cores the
runs still get equal CPU time. Do not run anything else on the machine meanwhile.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cli import run_genforge as run  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

CONFIGS = {
    "gan": ["--family", "gan", "--augment", "off"],
    "gan-ada": ["--family", "gan", "--augment", "ada"],
    "diffusion": ["--augment", "off"],
    "diffusion-aug": ["--augment", "nonleaking"],
}


def balanced_subset_folder(out: Path, per_class: int) -> Path:
    """The first per_class training images of each Fashion-MNIST class, as PNG class folders."""
    from genforge.config import DataConfig
    from genforge.modalities import MODALITIES
    folder = out / f"fashion-mnist-{per_class * 10}"
    if (folder / ".done").exists():
        return folder
    data = MODALITIES["image"].open(DataConfig(source="fashion-mnist"))
    for index, name in enumerate(data.class_names):
        chosen = (data.labels == index).nonzero().flatten()[:per_class]
        (folder / name).mkdir(parents=True, exist_ok=True)
        MODALITIES["image"].write(data.items[chosen], folder / name,
                                  [f"{int(i):05d}" for i in chosen])
    (folder / ".done").touch()
    return folder




def job(size: int, name: str, data: str, args: argparse.Namespace) -> dict:
    folder = Path(args.out) / "runs" / f"{size}-{name}"
    folder.mkdir(parents=True, exist_ok=True)
    log = folder.parent / f"{size}-{name}.log"
    budget = ["--minutes", str(args.minutes)] + (["--steps", str(args.steps)] if args.steps else [])
    run(["train", data, "--run", str(folder), "--preset", args.preset, *budget, "--progress", "none",
         "--device", args.device, *CONFIGS[name]], args.threads, log)
    evaluation = folder / "evaluation"
    seconds = run(["evaluate", str(folder / "model"), "--data", "fashion-mnist-test", "-n",
                   str(args.samples), "--extractor", args.encoder, "--metrics",
                   "fd,prdc,memorisation", "--device", args.device, "--out", str(evaluation)],
                  args.threads, log)
    records = json.loads((evaluation / "evaluation.json").read_text())["records"]
    summary = json.loads((folder / "summary.json").read_text())
    row = {"size": size, "config": name, "steps": summary["steps"],
           "images_seen": summary["images_seen"], "training_s": summary["training_seconds"],
           "evaluation_s": round(seconds, 1)}
    for r in records:
        row[r["metric"]] = r["value"]
        row[r["metric"] + "_ci"] = (r["ci_low"], r["ci_high"])
    row["extractor"] = next(r["extractor"] for r in records if r["metric"] == "fd")
    print(f"done {size} {name}: FD {row.get('fd'):.4g}", flush=True)
    with open(Path(args.out) / "rows.jsonl", "a") as f:  # each row as it comes: a failure later
        f.write(json.dumps(row) + "\n")                   # elsewhere loses nothing
    return row


def attempt(size: int, name: str, data: str, args: argparse.Namespace) -> dict | None:
    """One job; a failure is reported (with the tail of its log) and the others go on."""
    try:
        return job(size, name, data, args)
    except RuntimeError as err:
        log = Path(args.out) / "runs" / f"{size}-{name}.log"
        tail = log.read_text().strip().splitlines()[-1:] if log.exists() else []
        print(f"{err}\n  {' '.join(tail)}", flush=True)
        return None


def table(rows: list[dict]) -> str:
    lines = ["| images | model | steps | FD-domain [95% CI] | precision | recall | memorised share |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        low, high = r["fd_ci"]
        lines.append(f"| {r['size']:,} | {r['config']} | {r['steps']:,} | {r['fd']:.4g} "
                     f"[{low:.4g}, {high:.4g}] | {r['precision']:.3f} | {r['recall']:.3f} | "
                     f"{r['memorised_share']:.4f} |")
    lines.append("")
    for size in sorted({r["size"] for r in rows}):
        by = {r["config"]: r for r in rows if r["size"] == size}
        for plain, augmented in (("gan", "gan-ada"), ("diffusion", "diffusion-aug")):
            if plain in by and augmented in by:
                gain = 1 - by[augmented]["fd"] / by[plain]["fd"]
                lines.append(f"{size:,} images, {augmented} vs {plain}: FD-domain "
                             f"{by[plain]['fd']:.4g} -> {by[augmented]['fd']:.4g} "
                             f"({gain:+.1%} improvement)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/bench-small-data")
    parser.add_argument("--minutes", type=float, default=8.0, help="training time per model")
    parser.add_argument("--steps", type=int, default=None, help="also stop at this many steps")
    parser.add_argument("--sizes", default="1000,60000")
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--preset", default="cpu-small")
    parser.add_argument("--samples", type=int, default=5000, help="generated samples per evaluation")
    parser.add_argument("--encoder", default=None,
                        help="domain encoder (default: train one with genforge features train)")
    parser.add_argument("--threads", type=int, default=2, help="threads per job")
    parser.add_argument("--parallel", type=int, default=1, help="jobs at once")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.encoder is None:
        args.encoder = str(out / "fashion-mnist-encoder.safetensors")
        if not Path(args.encoder).exists():
            run(["features", "train", "fashion-mnist", "--out", args.encoder], args.threads,
                out / "encoder.log")
    jobs = []
    for size in (int(s) for s in args.sizes.split(",")):
        data = "fashion-mnist" if size == 60_000 else str(balanced_subset_folder(out / "data", size // 10))
        jobs += [(size, name, data) for name in args.configs.split(",")]
    started = time.perf_counter()
    with ThreadPoolExecutor(args.parallel) as pool:
        rows = [row for row in pool.map(lambda j: attempt(*j, args), jobs) if row is not None]
    if not rows:
        raise SystemExit("every job failed")
    text = table(rows)
    header = (f"{args.minutes} training minutes per model, {args.threads} threads, preset "
              f"{args.preset}, device {args.device}; {args.samples} samples vs the 10,000-image "
              f"test split; extractor {rows[0]['extractor']}; total {time.perf_counter() - started:.0f} s")
    print(header + "\n\n" + text)
    (out / "results.json").write_text(json.dumps({"header": header, "rows": rows}, indent=2))
    (out / "results.md").write_text(header + "\n\n" + text + "\n")


if __name__ == "__main__":
    main()
