"""How good can two steps be? The second step of consistency sampling alone, started from real
held-out images: each Fashion-MNIST test image, noised to the second step's sigma, then one
evaluation of the tuned model with the image's own class. That is two-step sampling whose first
step was perfect, so its FD bounds what any first step can give at that sigma (run by hand;
issue 23).

    python benchmarks/bench_second_step.py --tuned runs/tuned-s0/model,runs/tuned-s1/model \\
        --teacher runs/fm-teacher/model --encoder runs/fashion-mnist-encoder.safetensors \\
        -n 5000 --out runs/second-step

For each tuned model and each sigma it prints FD-<encoder> of n items against n training images
(with the bootstrap interval): the second step alone, and two-step sampling at that sigma
(`--steps 2 --mid-sigma S`, the same seeds); with --teacher, the teacher's DPM-Solver++ at 35
evaluations, the peer issue 23's ratios divide by, and each FD as a multiple of it.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import genforge  # noqa: E402
from _cli import cpu_model  # noqa: E402
from genforge import io  # noqa: E402
from genforge.config import DataConfig  # noqa: E402
from genforge.metrics import registry  # noqa: E402
from genforge.metrics.encoder import load_encoder  # noqa: E402
from genforge.modalities import IMAGE  # noqa: E402
from genforge.sweep import steps_sweep  # noqa: E402


def fd(items, reference, encoder, seed: int, what: str) -> dict:
    """FD of these items against the reference, by the sweep's protocol (n against n)."""
    protocol = registry.Protocol(generated=len(items), reference_limit=len(items), seed=seed,
                                 fd_dim=None, fd_resamples=10,
                                 sampler={"family": "second-step", "what": what})
    record = registry.evaluate(lambda n: items[:n], reference, encoder, metrics=("fd",),
                               protocol=protocol, cache_dir=registry.default_cache_dir()).records[0]
    return {"label": record.label, "fd": record.value, "ci_low": record.ci_low,
            "ci_high": record.ci_high}


def second_step_alone(model, images, labels, sigma: float, seed: int, batch: int = 500):
    """Each image noised to sigma (noise from seed), then one evaluation of the model with the
    image's own class: uint8 items."""
    import torch
    noise = torch.randn(images.shape, generator=torch.Generator().manual_seed(seed))
    x = IMAGE.to_model(images)
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            part = slice(i, i + batch)
            sigmas = torch.full((len(x[part]),), sigma)
            out.append(model.module(x[part] + sigma * noise[part], sigmas, labels[part]))
    return IMAGE.from_model(torch.cat(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tuned", required=True, help="tuned model folders, comma-separated")
    parser.add_argument("--teacher", default=None, help="the teacher's model folder: its "
                        "DPM-Solver++ at 35 evaluations, the peer the ratios divide by")
    parser.add_argument("--encoder", required=True, help="a Fashion-MNIST encoder file")
    parser.add_argument("--sigmas", default="0.8,1.6,3.2,5,10")
    parser.add_argument("-n", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", 2)))
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    import torch
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    reference = IMAGE.open(DataConfig(source="fashion-mnist"))
    test = IMAGE.open(DataConfig(source="fashion-mnist-test"))
    if test.labels is None or len(test) < args.n:
        parser.error(f"-n {args.n}: fashion-mnist-test has {len(test)} labelled images")
    images, labels = test.items[:args.n], test.labels[:args.n]
    encoder = load_encoder(args.encoder)
    sigmas = [float(s) for s in args.sigmas.split(",")]
    floor = fd(images, reference, encoder, args.seed, "test images")
    peer = None
    if args.teacher:
        teacher = genforge.load(args.teacher, device="cpu")
        peer = steps_sweep(teacher, (35,), reference=reference, extractor=encoder, n=args.n,
                           seed=args.seed, fd_dim=None, device="cpu", samplers=("dpmpp-2m",),
                           guidance=1.0)[0]
    times = (lambda v: f" ({v / peer['fd']:.2f}x)") if peer else (lambda v: "")
    rows = []
    for folder in args.tuned.split(","):
        model = genforge.load(folder, device="cpu")
        for sigma in sigmas:
            alone = fd(second_step_alone(model, images, labels, sigma, args.seed), reference,
                       encoder, args.seed, f"{folder} at {sigma}")
            sampled = steps_sweep(model, (2,), reference=reference, extractor=encoder, n=args.n,
                                  seed=args.seed, fd_dim=None, device="cpu", mid_sigma=sigma)[0]
            rows.append({"model": folder, "sigma": sigma, "alone": alone,
                         "two_steps": {k: sampled[k] for k in ("fd", "ci_low", "ci_high")}})
            print(f"{folder} sigma {sigma}: alone {alone['fd']:.3f}{times(alone['fd'])}, "
                  f"two steps {sampled['fd']:.3f}{times(sampled['fd'])}", flush=True)
    label = floor["label"]
    lines = [f"CPU: {cpu_model()}, {args.threads} thread(s); {args.n} items vs {args.n} training "
             f"images, seed {args.seed}; {label} ({args.encoder})",
             f"the test images themselves: {floor['fd']:.3f}" + (
                 f"; the teacher ({args.teacher}), DPM-Solver++ at 35 evaluations: "
                 f"{peer['fd']:.3f} [{peer['ci_low']:.3f}, {peer['ci_high']:.3f}]" if peer else ""),
             "", f"| tuned model | sigma | second step alone, from test images | two steps |",
             "|---|---|---|---|"]
    for r in rows:
        a, s = r["alone"], r["two_steps"]
        lines.append(f"| {r['model']} | {r['sigma']:g} | {a['fd']:.3f} [{a['ci_low']:.3f}, "
                     f"{a['ci_high']:.3f}]{times(a['fd'])} | {s['fd']:.3f} [{s['ci_low']:.3f}, "
                     f"{s['ci_high']:.3f}]{times(s['fd'])} |")
    print("\n".join(lines))
    io.write_text(out / "second_step.md", "\n".join(lines) + "\n")
    io.write_json(out / "second_step.json", {"rows": rows, "floor": floor, "teacher": peer,
                                             "cpu": cpu_model(), "n": args.n, "seed": args.seed})


if __name__ == "__main__":
    main()
