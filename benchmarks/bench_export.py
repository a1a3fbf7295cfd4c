"""ONNX export: eager PyTorch against onnxruntime (CPU) in the same run, per family.

For the cpu-small networks of each family (weights random: speed does not depend on them):
  - one network evaluation, per sample, at batch 1 and 64: PyTorch as genforge samples (eval,
    channels-last, no grad) against onnxruntime with all cores and with one thread;
  - a whole generation per sample (the family's default sampler and steps) at batch 1 and 64:
    genforge's PyTorch path against genforge.runtime (its loop in numpy);
  - the runtime's import time and installed size (numpy, onnxruntime, Pillow and what they
    pull in, in a venv without torch) against PyTorch's (torch and its dependencies).
Prints the CPU model and a table. Run: PYTHONPATH=src:tests python benchmarks/bench_export.py
[--quick] [--out DIR]  (--quick: fewer repetitions and items).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))

import torch  # noqa: E402

from _cli import cpu_model  # noqa: E402

from genforge import runtime  # noqa: E402
from genforge.export import load_module  # noqa: E402
from genforge.export_onnx import export_onnx, graph_for  # noqa: E402
from genforge.families import ModelSpec  # noqa: E402
from genforge.generation import load as load_torch  # noqa: E402
from genforge.generation.sampling import generate_items  # noqa: E402
from genforge.presets import PRESETS  # noqa: E402
from onnx_models import build_model, runtime_venv, sokoban_spec  # noqa: E402

SMALL = PRESETS["cpu-small"]
FASHION = ModelSpec("image", (1, 28, 28), tuple(str(i) for i in range(10)))
CASES = {
    "diffusion (Fashion-MNIST 28x28)": ("diffusion", FASHION, {"network": SMALL["diffusion"]["network"]}),
    "gan stylegan2 (28x28)": ("gan", FASHION, {"gan": SMALL["gan"]["gan"]}),
    "discrete (Sokoban 10x10)": ("discrete", sokoban_spec((10, 10)),
                                 {"network": SMALL["discrete"]["network"]}),
    "discrete (chorale 4x64)": ("discrete", ModelSpec("music", (4, 64), (), (8, 64, 48)),
                                {"network": SMALL["discrete"]["network"]}),
}


def best_time(fn, repeats: int) -> float:
    """Median wall time of fn() over repeats, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def batch_of(example: dict, b: int) -> dict:
    return {k: v[:1].repeat(b, *[1] * (v.dim() - 1)) for k, v in example.items()}


def evaluation(model: Path, folder: Path, b: int, repeats: int) -> dict[str, float]:
    """Seconds per sample of one network evaluation: torch, ORT (all cores), ORT (1 thread)."""
    module, spec, config, _ = load_module(model)
    wrapper, example, _ = graph_for(config.family, module, spec)
    inputs = batch_of(example, b)
    arrays = {k: v.numpy() for k, v in inputs.items()}
    threads = torch.get_num_threads()
    with torch.no_grad():
        eager = best_time(lambda: wrapper(*inputs.values()), repeats)
        torch.set_num_threads(1)
        eager_one = best_time(lambda: wrapper(*inputs.values()), repeats)
        torch.set_num_threads(threads)
    cores = runtime.load(folder, threads=os.cpu_count())
    one = runtime.load(folder, threads=1)
    return {"torch": eager / b, "torch-1t": eager_one / b,
            "ort": best_time(lambda: cores.run(**arrays), repeats) / b,
            "ort-1t": best_time(lambda: one.run(**arrays), repeats) / b}


def generation(model: Path, folder: Path, b: int, n: int) -> dict[str, float]:
    """Seconds per sample of a whole generation with the default sampling options, PyTorch on
    one thread (faster than two in 7 of the 8 evaluation rows on the 2 shared cores measured; the
    table above has both), the runtime with the threads it measures; one warm-up item each."""
    tm, rt = load_torch(model, device="cpu"), runtime.load(folder)
    labels = tm.class_labels(n, None, list(range(n)))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)

    def eager(count):
        generate_items(tm.family, tm.module, tm.spec, tm.config, count, seed=0,
                       labels=labels[:count] if labels is not None else None,
                       batch_size=min(b, count), device="cpu")

    def timed(fn):
        fn(1)
        start = time.perf_counter()
        fn(n)
        return (time.perf_counter() - start) / n

    torch_s = timed(eager)
    torch.set_num_threads(threads)
    runtime_s = timed(lambda count: rt.generate(count, batch_size=min(b, count)))
    return {"torch": torch_s, "runtime": runtime_s, "threads": rt.threads}


SIZE_SCRIPT = """
import importlib.metadata as md, json, re, sys
seen, total = set(), 0
todo = sys.argv[1:]
while todo:
    name = re.split(r"[ ;<>=!\\[~(]", todo.pop())[0].lower().replace("_", "-")
    if not name or name in seen:
        continue
    seen.add(name)
    try:
        dist = md.distribution(name)
    except md.PackageNotFoundError:
        continue
    total += sum(f.locate().stat().st_size for f in dist.files or [] if f.locate().exists())
    todo += [r for r in dist.requires or [] if "extra ==" not in r]
print(json.dumps({"bytes": total, "packages": sorted(seen)}))
"""


def import_seconds(python: str, statement: str, env: dict) -> float:
    """Best of 3 fresh interpreters running the import, minus an empty interpreter's start."""
    def run(code):
        start = time.perf_counter()
        subprocess.run([python, "-c", code], check=True, env=env, capture_output=True)
        return time.perf_counter() - start
    return min(run(statement) for _ in range(3)) - min(run("pass") for _ in range(3))


def footprint() -> dict:
    src = str(Path(__file__).parent.parent / "src")
    venv_python = str(runtime_venv())
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    size = lambda py, *names: json.loads(subprocess.run(  # noqa: E731
        [py, "-c", SIZE_SCRIPT, *names], check=True, capture_output=True, text=True, env=clean
    ).stdout)
    return {"runtime_import_s": import_seconds(venv_python, "import genforge.runtime",
                                               {**clean, "PYTHONPATH": src}),
            "torch_import_s": import_seconds(sys.executable, "import torch", clean),
            "genforge_import_s": import_seconds(sys.executable, "import genforge.api",
                                                {**clean, "PYTHONPATH": src}),
            "runtime_size": size(venv_python, "numpy", "onnxruntime", "pillow"),
            "torch_size": size(sys.executable, "torch")}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default="/tmp/bench-export", help="model folders go here")
    args = parser.parse_args()
    repeats, n64 = (3, 64) if args.quick else (10, 128)
    out = Path(args.out)
    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores; torch {torch.__version__} with "
          f"{torch.get_num_threads()} threads; {runtime.load.__module__} on onnxruntime"
          f"{' (quick run)' if args.quick else ''}")
    print("\nOne network evaluation, ms per sample, all cores and 1 thread (ratio: the faster "
          "PyTorch / the faster onnxruntime)")
    print(f"{'model':34} {'batch':>5} {'PyTorch':>9} {'1 thread':>9} {'ORT':>9} {'1 thread':>9} "
          f"{'ratio':>6}")
    rows = []
    for index, (name, case) in enumerate(CASES.items()):
        slug = f"{index}-{name.split()[0]}"
        model = build_model(out / slug, case)
        folder = export_onnx(model, out / f"{slug}-onnx")
        for b in (1, 64):
            t = evaluation(model, folder, b, repeats)
            rows.append((name, b, t))
            ratio = min(t["torch"], t["torch-1t"]) / min(t["ort"], t["ort-1t"])
            print(f"{name:34} {b:>5} {t['torch'] * 1e3:>9.3f} {t['torch-1t'] * 1e3:>9.3f} "
                  f"{t['ort'] * 1e3:>9.3f} {t['ort-1t'] * 1e3:>9.3f} {ratio:>6.2f}", flush=True)
        CASES[name] = (model, folder)
    print("\nWhole generation (default sampler and steps), ms per sample: genforge's PyTorch path "
          "(1 thread) against genforge.runtime (threads measured on its first evaluation)")
    print(f"{'model':34} {'batch':>5} {'PyTorch':>9} {'runtime':>9} {'ratio':>6}  runtime threads")
    for name, (model, folder) in CASES.items():
        for b, n in ((1, 2 if args.quick else 4), (64, n64)):
            t = generation(model, folder, b, n)
            print(f"{name:34} {b:>5} {t['torch'] * 1e3:>9.1f} {t['runtime'] * 1e3:>9.1f} "
                  f"{t['torch'] / t['runtime']:>6.2f}  {t['threads']}", flush=True)
    f = footprint()
    print(f"\nimport: genforge.runtime {f['runtime_import_s']:.2f} s (venv without torch), "
          f"torch {f['torch_import_s']:.2f} s, genforge.api {f['genforge_import_s']:.2f} s")
    print(f"installed: runtime {f['runtime_size']['bytes'] / 2**20:.0f} MiB "
          f"({', '.join(f['runtime_size']['packages'])}); torch "
          f"{f['torch_size']['bytes'] / 2**20:.0f} MiB ({', '.join(f['torch_size']['packages'])})")


if __name__ == "__main__":
    main()
