"""genforge's metric maths against torch-fidelity's on the same features, measured in the same run.

For each size it writes a generated and a reference set of synthetic float32 features (correlated
Gaussians from a fixed seed, the generated set slightly wider and shifted, so every metric has a
non-trivial value) to temporary .npy files. Each metric group of each library then runs in a fresh
subprocess that loads them: time (median of --repeats runs in each of --rounds processes, which
alternate which library goes first) and peak resident memory (the kernel's high-water mark VmHWM,
reset once the imports and the features are loaded, minus the resident size then: the group's own
peak, not the import-time one). Printed: times, peaks and genforge/torch-fidelity ratios, then
the metric values side by side, and KID recomputed by genforge on torch-fidelity's own subsets.

Metric groups, same settings on both sides:
  fd   genforge feature_statistics x2 + frechet_distance;
       torch-fidelity fid_features_to_statistics x2 + fid_statistics_to_metric
  kid  100 subsets of 1,000, cubic kernel; genforge kernel_inception_distance,
       torch-fidelity kid_features_to_metric (rng_seed 2020, its default)
  pr   precision/recall at k=3; genforge manifold_indicators(k_pr=3, k_dc=5), which also gives
       density/coverage (k=5) from the same pass (torch-fidelity has no density/coverage);
       torch-fidelity prc_features_to_metric, in full mode (N x N distance matrices in memory)
       where 8 N^2 bytes fit in 80% of the available memory, else save_cpu_ram (part) mode

Run by hand:  python benchmarks/bench_metrics.py [--sizes tiny|small|large|both] [--threads 2]
              [--repeats 3] [--rounds 2] [--genforge-rev HEAD] [--groups fd,kid,pr] [--profile]
torch-fidelity is imported with torchvision stubbed (its metric code never uses torchvision).
"""
from __future__ import annotations

import argparse
import atexit
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

# name: (items per set, feature dimensions)
SIZES = {"tiny": (2000, 64), "small": (10000, 512), "large": (50000, 2048)}
GROUPS = ("fd", "kid", "pr")
KID_SUBSETS, KID_SUBSET_SIZE, KID_SEED = 100, 1000, 2020  # torch-fidelity's defaults
K_PR, K_DC = 3, 5
WIDER, SHIFT = 1.02, 0.05  # generated set: 2% wider, mean moved by 5% of the typical radius


# ----- features ----------------------------------------------------------------------------------

def write_features(n: int, dim: int, folder: str, seed: int = 0) -> tuple[str, str]:
    """Correlated Gaussian features (variance of the j-th mixed component ~ 1/j) as gen.npy and
    ref.npy: the generated set shares the mixing, WIDER times wider and moved by SHIFT."""
    import numpy as np
    import torch
    g = torch.Generator().manual_seed(seed)
    mixing = (torch.randn(dim, dim, generator=g) / dim ** 0.5
              * torch.arange(1, dim + 1).pow(-0.5)[:, None])
    mean = torch.rand(dim, generator=g)
    ref = torch.randn(n, dim, generator=g) @ mixing + mean
    direction = torch.randn(dim, generator=g)
    direction /= direction.norm()
    gen = (WIDER * (torch.randn(n, dim, generator=g) @ mixing) + mean
           + SHIFT * float(ref.std(0).mean()) * dim ** 0.5 * direction)
    paths = os.path.join(folder, "gen.npy"), os.path.join(folder, "ref.npy")
    for path, features in zip(paths, (gen, ref)):
        np.save(path, features.numpy().astype(np.float32))
    return paths


# ----- the two peers -----------------------------------------------------------------------------

def export_revision(rev: str, folder: str) -> str:
    """Extract src/ of a git revision of this checkout into folder; returns the src path (so a
    run measures a committed revision, not whatever the working tree holds at that moment)."""
    import io
    import tarfile
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    tar = subprocess.run(["git", "-C", repo, "archive", rev, "src"], capture_output=True,
                         check=True)
    with tarfile.open(fileobj=io.BytesIO(tar.stdout)) as archive:
        archive.extractall(folder, filter="data")
    return os.path.join(folder, "src")


def describe_genforge() -> str:
    """Which genforge the workers import: its path, and its git revision when it is a checkout."""
    import importlib.util
    path = os.path.dirname(importlib.util.find_spec("genforge").origin)
    git = ["git", "-C", path]
    head = subprocess.run(git + ["rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    if head.returncode:
        return path
    dirty = subprocess.run(git + ["status", "--porcelain", "--", "metrics"], capture_output=True,
                           text=True).stdout.strip()
    return f"{path} (checkout at {head.stdout.strip()}{', metrics/ modified' if dirty else ''})"


def import_torch_fidelity():
    """torch_fidelity and its metric modules, torchvision stubbed where absent (the one stub,
    in tests/peers.py: its package __init__ imports torchvision for helpers the metrics never call)."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                    "tests"))
    from peers import import_torch_fidelity as load
    torch_fidelity = load()
    import torch_fidelity.metric_fid  # noqa: F401
    import torch_fidelity.metric_kid  # noqa: F401
    import torch_fidelity.metric_prc  # noqa: F401
    return torch_fidelity


def genforge_group(group: str, gen, ref) -> dict:
    """One metric group through genforge's maths; returns its values."""
    from genforge.metrics import maths
    if group == "fd":
        return {"fd": maths.frechet_distance(maths.feature_statistics(gen),
                                             maths.feature_statistics(ref))}
    if group == "kid":
        mmd = maths.kernel_inception_distance(gen, ref, subsets=KID_SUBSETS,
                                              subset_size=KID_SUBSET_SIZE)
        return {"kid": float(mmd.mean()), "kid std": float(mmd.std(unbiased=False))}
    m = maths.manifold_indicators(gen, ref, k_pr=K_PR, k_dc=K_DC)
    return {name: float(getattr(m, name).mean())
            for name in ("precision", "recall", "density", "coverage")}


def torch_fidelity_group(group: str, gen, ref, prc_mode: str) -> dict:
    """One metric group through torch-fidelity's functions (its defaults); returns its values."""
    tf = sys.modules["torch_fidelity"]
    if group == "fd":
        fid = tf.metric_fid
        return {"fd": fid.fid_statistics_to_metric(fid.fid_features_to_statistics(gen),
                                                   fid.fid_features_to_statistics(ref),
                                                   verbose=False)[fid.KEY_METRIC_FID]}
    if group == "kid":
        kid = tf.metric_kid
        out = kid.kid_features_to_metric(gen, ref, kid_subsets=KID_SUBSETS, verbose=False,
                                         kid_subset_size=KID_SUBSET_SIZE, rng_seed=KID_SEED)
        return {"kid": out[kid.KEY_METRIC_KID_MEAN], "kid std": out[kid.KEY_METRIC_KID_STD]}
    out = tf.metric_prc.prc_features_to_metric(gen, ref, prc_neighborhood=K_PR, verbose=False,
                                               save_cpu_ram=prc_mode == "part")
    return {"precision": out["precision"], "recall": out["recall"]}


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def reset_peak_memory() -> int:
    """Reset this process's resident high-water mark to its current resident size (Linux >= 4.0:
    importing torch peaks above what it keeps, and ru_maxrss would hide smaller later peaks);
    returns that size in KiB. Without clear_refs, falls back to ru_maxrss (KiB on Linux)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return _status_kib("VmRSS")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def peak_memory() -> int:
    """This process's resident high-water mark in KiB."""
    try:
        return _status_kib("VmHWM")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def worker(job: dict) -> dict:
    """One metric group of one library in this (fresh) process."""
    import numpy as np
    import torch
    torch.set_num_threads(job["threads"])
    if job["peer"] == "genforge":
        from genforge.metrics import maths  # noqa: F401
    else:
        import_torch_fidelity()
    gen, ref = (torch.from_numpy(np.load(path)) for path in (job["gen"], job["ref"]))
    baseline = reset_peak_memory()
    times = []
    for _ in range(job["repeats"]):
        start = time.perf_counter()
        values = (genforge_group(job["group"], gen, ref) if job["peer"] == "genforge" else
                  torch_fidelity_group(job["group"], gen, ref, job["prc_mode"]))
        times.append(time.perf_counter() - start)
    result = {"times": times, "values": values,
              "peak_mib": (peak_memory() - baseline) / 1024}
    if job["profile"]:
        result["profile"] = profile_group(job, gen, ref)
    return result


def profile_group(job: dict, gen, ref) -> str:
    """Where one more run of the group spends its time: torch.profiler's top operators for
    genforge (all torch), cProfile's top functions for torch-fidelity (numpy and torch)."""
    if job["peer"] == "genforge":
        from torch.profiler import profile
        with profile() as prof:
            genforge_group(job["group"], gen, ref)
        return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15)
    import cProfile
    import io
    import pstats
    profiler = cProfile.Profile()
    profiler.runcall(torch_fidelity_group, job["group"], gen, ref, job["prc_mode"])
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(15)
    return text.getvalue()


def measure(job: dict) -> dict:
    """Run one job in a fresh interpreter, so its memory high-water mark is its own; BLAS
    thread counts are fixed in its environment, before numpy loads OpenBLAS."""
    threads = str(job["threads"])
    env = dict(os.environ, OMP_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads,
               MKL_NUM_THREADS=threads)
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", json.dumps(job)],
                         capture_output=True, text=True, env=env)
    if out.returncode:
        # A run killed for memory (SIGKILL from the OOM killer) is reported, not fatal.
        why = "killed (out of memory?)" if out.returncode == -9 else f"exit {out.returncode}"
        return {"failed": f"failed, {why}: {(out.stderr.strip().splitlines() or [''])[-1]}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


# ----- checks outside the timed runs ------------------------------------------------------------

def reference_checks(gen_path: str, ref_path: str, kid: bool) -> dict:
    """Where the two disagree, which is right: torch-fidelity's FD on float64 inputs (it keeps
    the means in the input's dtype), and KID over torch-fidelity's own subset draws
    (RandomState(2020).choice, as it draws them) three ways: its kernel on float32 (what it
    computes), the same on float64 inputs, and genforge's mmd2_unbiased in float64."""
    import numpy as np
    import torch
    from genforge.metrics import maths
    tf = import_torch_fidelity()
    gen, ref = np.load(gen_path), np.load(ref_path)
    fid = tf.metric_fid
    stats64 = [fid.fid_features_to_statistics(torch.from_numpy(f.astype(np.float64)))
               for f in (gen, ref)]
    out = {"fd64": fid.fid_statistics_to_metric(*stats64, verbose=False)[fid.KEY_METRIC_FID]}
    if not kid:
        return out
    kwargs = dict(kid_subsets=KID_SUBSETS, kid_subset_size=KID_SUBSET_SIZE, rng_seed=KID_SEED)
    rng = np.random.RandomState(KID_SEED)
    tf32, tf64, ours = [], [], []
    for _ in range(KID_SUBSETS):
        g = gen[rng.choice(len(gen), KID_SUBSET_SIZE, replace=False)]
        r = ref[rng.choice(len(ref), KID_SUBSET_SIZE, replace=False)]
        tf32.append(tf.metric_kid.kernel_mmd(g, r, **kwargs))
        g, r = g.astype(np.float64), r.astype(np.float64)
        tf64.append(tf.metric_kid.kernel_mmd(g, r, **kwargs))
        ours.append(maths.mmd2_unbiased(torch.from_numpy(g), torch.from_numpy(r)))
    tf32, tf64, ours = (np.array(v, dtype=np.float64) for v in (tf32, tf64, ours))
    scale = np.abs(tf64).max()
    return {**out, "kid tf32": tf32.mean(), "kid tf64": tf64.mean(), "kid genforge": ours.mean(),
            "gap genforge-tf64": np.abs(ours - tf64).max() / scale,
            "gap tf32-tf64": np.abs(tf32 - tf64).max() / scale}


# ----- report -------------------------------------------------------------------------------------

def combine(rounds: list[dict]) -> dict:
    """One figure from several processes: median of all their runs' times, largest peak (empty:
    not run)."""
    ok = [res for res in rounds if "failed" not in res]
    if not ok:
        return rounds[0] if rounds else {}
    return {"seconds": statistics.median(t for res in ok for t in res["times"]),
            "values": ok[0]["values"],
            "peak_mib": max(res["peak_mib"] for res in ok)}


def prc_mode_for(n: int, choice: str) -> str:
    """torch-fidelity's full precision/recall keeps about two N x N float32 matrices at once."""
    if choice != "auto":
        return choice
    with open("/proc/meminfo") as f:
        available = next(int(line.split()[1]) * 1024 for line in f
                         if line.startswith("MemAvailable"))
    return "full" if 8 * n * n < 0.8 * available else "part"


def print_size(label: str, runs: dict, prc_mode: str, repeats: int, rounds: int) -> None:
    """Times and peaks with ratios, then the metric values side by side."""
    def fig(peer, group, key):
        return runs[peer, group].get(key)

    def cell(v, fmt, peer=None, group=None):
        if v is not None:
            return f"{fmt.format(v):>14}"
        return f"{'failed' if 'failed' in runs.get((peer, group), {}) else '-':>14}"

    header = f"{'figure':<34}{'genforge':>14}{'torch-fidelity':>16}{'gf/tf':>8}"
    print(f"\n{label}  (torch-fidelity precision/recall: {prc_mode} mode; time: median of "
          f"{repeats} run(s) x {rounds} process(es))\n{header}\n{'-' * len(header)}")
    names = {"fd": "FD", "kid": "KID", "pr": "P/R (+D/C for genforge)"}
    seconds = "{:.3f}" if runs["n"] < 5000 else "{:.2f}"  # tiny runs take milliseconds
    for key, unit, fmt in (("seconds", "s", seconds), ("peak_mib", "peak MiB", "{:.0f}")):
        for group in GROUPS:
            ours, theirs = fig("genforge", group, key), fig("torch-fidelity", group, key)
            ratio = f"{ours / theirs:>8.2f}" if ours is not None and theirs else f"{'':>8}"
            print(f"{names[group] + ' ' + unit:<34}{cell(ours, fmt, 'genforge', group)}  "
                  f"{cell(theirs, fmt, 'torch-fidelity', group)}{ratio}")
        both = []
        for peer in ("genforge", "torch-fidelity"):
            values = [fig(peer, g, key) for g in GROUPS]
            both.append(None if None in values else
                        (sum(values) if key == "seconds" else max(values)))
        what = "total s" if key == "seconds" else "peak MiB, max over groups"
        ratio = f"{both[0] / both[1]:>8.2f}" if None not in both else ""
        print(f"{what:<34}{cell(both[0], fmt)}  {cell(both[1], fmt)}{ratio}")
    print("(genforge's density/coverage come out of the same pass as its precision/recall, so "
          "its time without them is not separable)")

    print(f"\n{'value':<14}{'genforge':>16}{'torch-fidelity':>16}  agreement")
    for group in GROUPS:
        ours = runs["genforge", group].get("values", {})
        theirs = runs["torch-fidelity", group].get("values", {})
        for name, value in ours.items():
            other = theirs.get(name)
            if name == "fd" and other is not None:
                note = (f"relative difference {abs(value - other) / abs(other):.1e} "
                        f"(torch-fidelity's means stay float32: see the float64 check below)")
            elif name == "kid" and other is not None:
                error = theirs["kid std"] / KID_SUBSETS ** 0.5
                note = (f"{abs(value - other) / error:.1f} standard errors apart (different "
                        f"random subsets)")
            elif name in ("precision", "recall") and other is not None:
                note = (f"differ by {round(abs(value - other) * runs['n']):d} items of "
                        f"{runs['n']:,} (torch-fidelity: float32 distances, <=; genforge: "
                        f"float64-checked, <)")
            elif other is None and name in ("density", "coverage"):
                note = "torch-fidelity has no density/coverage"
            else:
                note = ""
            print(f"{name:<14}{value:>16.8g}{'' if other is None else format(other, '.8g'):>16}  "
                  f"{note}")


def run_size(size: str, args: argparse.Namespace) -> None:
    """Every selected group of both libraries on one size's features, then the report."""
    n, dim = SIZES[size]
    label = f"{size}: {n:,} x {dim:,} generated and reference"
    groups = args.groups.split(",")
    with tempfile.TemporaryDirectory(prefix="bench_metrics_") as folder:
        gen_path, ref_path = write_features(n, dim, folder)
        prc_mode = prc_mode_for(n, args.tf_prc)
        runs = {"n": n}
        for group in GROUPS:
            results = {"genforge": [], "torch-fidelity": []}
            for r in range(args.rounds if group in groups else 0):
                for peer in list(results)[::1 if r % 2 == 0 else -1]:
                    start = time.perf_counter()
                    res = measure(dict(
                        peer=peer, group=group, gen=gen_path, ref=ref_path, threads=args.threads,
                        repeats=args.repeats, prc_mode=prc_mode, profile=args.profile and r == 0))
                    results[peer].append(res)
                    print(f"  {size} {group} {peer}: {res.get('failed', 'done')}, after "
                          f"{time.perf_counter() - start:.0f} s (load average "
                          f"{os.getloadavg()[0]:.2f})", flush=True)
                    if "profile" in res:
                        print(f"\n--- {peer} {group} ({label}) ---\n{res['profile']}")
            for peer, rounds in results.items():
                runs[peer, group] = combine(rounds)
        print_size(label, runs, prc_mode, args.repeats, args.rounds)
        if not args.no_checks:
            print_checks(reference_checks(gen_path, ref_path, "kid" in groups),
                         runs["genforge", "fd"].get("values", {}).get("fd"))


def print_checks(c: dict, fd: float | None) -> None:
    """The float64 references: FD, and KID on torch-fidelity's own subsets."""
    print(f"\nFD by torch-fidelity on float64 inputs: {c['fd64']:.10g}"
          + ("" if fd is None else f" (genforge's relative difference from it: "
                                   f"{abs(fd - c['fd64']) / abs(c['fd64']):.1e})"))
    if "kid tf32" in c:
        print(f"KID on torch-fidelity's own {KID_SUBSETS} subsets: torch-fidelity (float32 "
              f"kernels) {c['kid tf32']:.8g}, torch-fidelity on float64 inputs "
              f"{c['kid tf64']:.8g}, "
              f"genforge {c['kid genforge']:.8g}; largest per-subset gap relative to the largest "
              f"MMD^2: genforge vs float64 torch-fidelity {c['gap genforge-tf64']:.1e}, float32 vs "
              f"float64 torch-fidelity {c['gap tf32-tf64']:.1e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="both", choices=[*SIZES, "both"],
                        help="both = small then large; tiny (2,000 x 64) is a quick check")
    parser.add_argument("--threads", type=int, default=2, help="torch and BLAS threads for both")
    parser.add_argument("--repeats", type=int, default=1,
                        help="runs of each group per process (median reported)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="processes per group and library, alternating which goes first")
    parser.add_argument("--groups", default=",".join(GROUPS), help="comma-separated, of: "
                        + ", ".join(GROUPS))
    parser.add_argument("--tf-prc", default="auto", choices=("auto", "full", "part"),
                        help="torch-fidelity precision/recall mode (auto: full where it fits)")
    parser.add_argument("--no-checks", action="store_true",
                        help="skip the float64 FD and the KID on torch-fidelity's subset draws")
    parser.add_argument("--profile", action="store_true",
                        help="profile one more run of each group (torch.profiler / cProfile)")
    parser.add_argument("--genforge-rev", metavar="REV",
                        help="measure this git revision's genforge (e.g. HEAD), not the "
                        "working tree")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    if args.genforge_rev:
        folder = tempfile.mkdtemp(prefix="bench_metrics_src_")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        src = export_revision(args.genforge_rev, folder)
        sys.path.insert(0, src)  # this process (the checks) and, through PYTHONPATH, the workers
        os.environ["PYTHONPATH"] = os.pathsep.join(
            filter(None, (src, os.environ.get("PYTHONPATH"))))

    import torch
    import_torch_fidelity()
    revision = (f"revision {args.genforge_rev} = " + subprocess.run(
        ["git", "rev-parse", "--short", args.genforge_rev], capture_output=True, text=True,
        cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip() + ", exported to "
        if args.genforge_rev else "")
    print(f"genforge: {revision}{describe_genforge()}")
    print(f"torch {torch.__version__}, torch-fidelity {sys.modules['torch_fidelity'].__version__}, "
          f"{os.cpu_count()} CPUs, threads {args.threads}")
    print(f"load average before: {os.getloadavg()[0]:.2f} (figures are unreliable when it "
          f"exceeds the CPU count)")
    sizes = ["small", "large"] if args.sizes == "both" else [args.sizes]
    for size in sizes:
        run_size(size, args)
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
