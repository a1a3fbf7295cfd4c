"""Quality of a trained model beside the floor the data itself sets (run by hand).

    genforge train fashion-mnist --run runs/fm30 --steps 7725      # 30 minutes on 2 idle cores
    genforge features train fashion-mnist --out runs/fashion-mnist-encoder.safetensors
    python benchmarks/bench_quality.py runs/fm30/model --encoder runs/fashion-mnist-encoder.safetensors

Evaluates n samples of the model against the training split (FD-domain, KID, precision/recall,
density/coverage, memorisation), and the test split against the training split with the same
protocol: the best any model of this data can hope to score. Equal set sizes throughout, since
k-NN metrics depend on them.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
import genforge  # noqa: E402
from genforge.config import DataConfig  # noqa: E402
from genforge.metrics import registry  # noqa: E402
from genforge.metrics.encoder import load_encoder  # noqa: E402
from genforge.modalities import IMAGE  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--encoder", required=True)
    parser.add_argument("-n", type=int, default=10_000)
    parser.add_argument("--sampler", default="dpmpp-2m")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--guidance", type=float, default=None,
                        help="classifier-free guidance (default: the model's own)")
    parser.add_argument("--out", default=None, help="JSON file for the figures")
    args = parser.parse_args()

    train = IMAGE.open(DataConfig(source="fashion-mnist"))
    test = IMAGE.open(DataConfig(source="fashion-mnist-test"))
    encoder = load_encoder(args.encoder)
    model = genforge.load(args.model, device="cpu")
    sampling = model.sampling(sampler=args.sampler, steps=args.steps, guidance=args.guidance)
    protocol = registry.Protocol(generated=args.n, reference_limit=args.n, fd_resamples=10,
                                 sampler=sampling)
    rows = {}
    for name, sample_fn in (
            ("model", lambda n: model.generate(n, batch_size=250, **sampling)),
            ("test split (floor)", lambda n: test.items[:n])):
        started = time.perf_counter()
        result = registry.evaluate(sample_fn, train, encoder, protocol=protocol,
                                   cache_dir=registry.default_cache_dir())
        rows[name] = {r.label: (r.value, r.ci_low, r.ci_high) for r in result.records}
        rows[name]["seconds"] = round(time.perf_counter() - started, 1)
        print(f"{name}: {rows[name]['seconds']} s", flush=True)
    labels = [label for label in rows["model"] if label != "seconds"]
    print(f"\n{args.n} samples vs {args.n} training items; extractor {encoder.name} "
          f"({encoder.checksum[:12]}); model {args.model} "
          f"({model.manifest['training']['steps']} steps)\n")
    print(f"| metric | {' | '.join(rows)} |\n|---|" + "---|" * len(rows))
    for label in labels:
        cells = []
        for row in rows.values():
            value, low, high = row[label]
            cells.append(f"{value:.4g}" + ("" if low is None else f" [{low:.4g}, {high:.4g}]"))
        print(f"| {label} | {' | '.join(cells)} |")
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
