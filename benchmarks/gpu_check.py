"""One prepared pass over genforge's CUDA paths, for a machine with a GPU (run by hand).

    python benchmarks/gpu_check.py [--quick] [--out DIR]

1. trains the diffusion model on the bundled Fashion-MNIST sample on the GPU (preset cpu-small,
   then gpu with bf16) for a fixed time and reports images/s;
2. trains the domain encoder on the GPU, then evaluates the trained model on the GPU;
3. checks that the metric maths gives the same numbers on the GPU as on the CPU for the same
   features;
4. times FD + KID + precision/recall (+ density/coverage) on 50,000 x 2,048 features on the GPU,
   beside torch-fidelity's implementation of the same metrics on the same features.
Everything printed is also written to DIR/gpu_check.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]
import genforge  # noqa: E402
from genforge import api  # noqa: E402
from genforge.metrics import maths  # noqa: E402
from peers import import_torch_fidelity  # noqa: E402  (torchvision stubbed where absent)

RESULTS: dict = {}


def say(key: str, value) -> None:
    RESULTS[key] = value
    print(f"{key}: {value}", flush=True)


def timed(fn):
    torch.cuda.synchronize() if torch.cuda.is_available() else None
    start = time.perf_counter()
    out = fn()
    torch.cuda.synchronize() if torch.cuda.is_available() else None
    return out, time.perf_counter() - start


def train_and_evaluate(out: Path, quick: bool, device: str) -> None:
    minutes = 0.1 if quick else 1.0
    presets = ("cpu-small",) if quick else ("cpu-small", "gpu")
    for preset in presets:
        summary = api.train("fashion-mnist-sample", out / f"run-{preset}", preset=preset,
                            minutes=minutes, device=device, sample_every=10**9)
        say(f"train[{preset}]", {k: summary[k] for k in ("device", "precision", "steps",
                                                            "images_per_second", "final_loss",
                                                            "parameters")})
    info, seconds = timed(lambda: api.train_features(
        "fashion-mnist-sample", out / "encoder.safetensors", steps=100 if quick else 1500,
        device=device))
    say("encoder", {"seconds": round(seconds, 1), "mode": info["mode"],
                    "validation": info.get("validation")})
    for preset in presets:
        result, seconds = timed(lambda: api.evaluate(
            out / f"run-{preset}" / "model", "fashion-mnist-sample", n=500 if quick else 4000,
            extractor=str(out / "encoder.safetensors"), device=device,
            out=out / f"evaluation-{preset}"))
        say(f"evaluate[{preset}]", {"seconds": round(seconds, 1), **{
            r["label"]: round(r["value"], 5) for r in result["records"]}})


def same_on_gpu_and_cpu(device: str) -> None:
    g = torch.Generator().manual_seed(0)
    ref = torch.randn(3000, 128, generator=g)
    gen = torch.randn(3000, 128, generator=g) * 1.1 + 0.05

    def all_metrics(dev):
        a, b = gen.to(dev), ref.to(dev)
        fd = maths.frechet_distance(maths.feature_statistics(a), maths.feature_statistics(b))
        kid = float(maths.kernel_inception_distance(a, b, subsets=10, subset_size=1000).mean())
        m = maths.manifold_indicators(a, b)
        near = maths.nearest_training_items(a[:500], b)
        return [fd, kid] + [float(getattr(m, k).mean()) for k in
                            ("precision", "recall", "density", "coverage")] + [
            float(near.ratio.mean()), int(near.index.sum())]

    cpu, gpu = all_metrics("cpu"), all_metrics(device)
    say("cpu_vs_gpu", {"cpu": cpu, "gpu": gpu,
                       "max_rel_diff": max(abs(x - y) / max(abs(x), 1e-12) for x, y in zip(cpu, gpu))})


def metrics_benchmark(quick: bool, device: str) -> None:
    n, dim = (5000, 256) if quick else (50_000, 2048)
    g = torch.Generator().manual_seed(0)
    mix = torch.randn(dim, dim, generator=g) / dim ** 0.5
    ref = (torch.randn(n, dim, generator=g) @ mix).to(device)
    gen = (torch.randn(n, dim, generator=g) @ mix * 1.05 + 0.01).to(device)
    torch.cuda.reset_peak_memory_stats() if device.startswith("cuda") else None

    def ours():
        fd = maths.frechet_distance(maths.feature_statistics(gen), maths.feature_statistics(ref))
        kid = maths.kernel_inception_distance(gen, ref, subsets=100, subset_size=1000)
        m = maths.manifold_indicators(gen, ref)
        return fd, float(kid.mean()), float(m.precision.mean()), float(m.recall.mean())

    values, seconds = timed(ours)
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else None
    say("genforge_metrics", {"n": n, "dim": dim, "seconds": round(seconds, 2),
                             "peak_gpu_mib": peak, "fd,kid,precision,recall": values})
    tf = import_torch_fidelity()
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
    from torch_fidelity.metric_kid import kid_features_to_metric
    from torch_fidelity.metric_prc import calculate_precision_recall_part
    torch.cuda.reset_peak_memory_stats() if device.startswith("cuda") else None

    def theirs():
        fid = fid_statistics_to_metric(fid_features_to_statistics(gen.cpu()),
                                       fid_features_to_statistics(ref.cpu()), verbose=False)
        kid = kid_features_to_metric(gen.cpu(), ref.cpu(), kid_subsets=100, kid_subset_size=1000,
                                     kid_degree=3, kid_gamma=None, kid_coef0=1, verbose=False,
                                     kid_kernel="poly", kid_kernel_poly_degree=3,
                                     kid_kernel_poly_gamma=None, kid_kernel_poly_coef0=1,
                                     rng_seed=2020)
        p, r = calculate_precision_recall_part(gen, ref, neighborhood=3, batch_size=10000)
        return (fid[tf.KEY_METRIC_FID], kid[tf.KEY_METRIC_KID_MEAN], p, r)

    values, their_seconds = timed(theirs)
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else None
    say("torch_fidelity_metrics", {"seconds": round(their_seconds, 2), "peak_gpu_mib": peak,
                                   "fd,kid,precision,recall": values,
                                   "note": "FD and KID in numpy on the CPU, PR on the GPU (its design)"})
    say("ratio_time_genforge_over_torch_fidelity", round(seconds / their_seconds, 3))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check the script")
    parser.add_argument("--out", default="gpu-check")
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: train,same,bench")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    say("environment", {"torch": torch.__version__, "genforge": genforge.__version__,
                        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu"})
    skip = set(args.skip.split(","))
    parts = [("train", lambda: train_and_evaluate(out, args.quick, device)),
             ("same", lambda: same_on_gpu_and_cpu(device)),
             ("bench", lambda: metrics_benchmark(args.quick, device))]
    for name, part in parts:
        if name in skip:
            continue
        try:
            part()
        except Exception as err:  # report and go on: one prepared pass must say all it can
            say(f"{name}_failed", f"{type(err).__name__}: {err}")
        (out / "gpu_check.json").write_text(json.dumps(RESULTS, indent=2, default=str))


if __name__ == "__main__":
    main()
