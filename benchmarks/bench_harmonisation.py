"""Harmonisation against Bach: for each held-out chorale keep the soprano, let a trained model
and the Markov baseline write alto, tenor and bass, and compare both with Bach's own voices
(run by hand; prints a markdown table and writes OUT/harmonisation.json)

    python benchmarks/bench_harmonisation.py --model runs/music-bench/run/model \\
        --out runs/harmonisation-bench --bars 8 --seed-sets 3

The excerpt of each chorale of the --split (default test) is its first --bars full bars (a
chorale shorter than that is left out). The model harmonises through the family's inpainting
with the kind's measured sampling defaults (genforge.generation.inpaint.inpaint_items; --rules
adds the re-pitching of parallels; --sampler, --steps and --temperature override the defaults,
to choose them on --split validation); the baseline is music.baseline.harmonize_markov, an order-2
chain over SATB chords fitted on the training split's crops (transposed as the model's training
data), drawing at each step only chords that keep the given soprano. Each seed set k draws every
piece again with seeds k * 100,000 + i (model) and [k, i] (baseline). Figures per voice: the
share of 16th steps where Bach's voice sounds at which the harmonisation sounds the same pitch,
and the same pitch class; then parallel fifths and octaves per bar, crossings and range errors
(metrics.harmonisation). Each row gives the mean over the seed sets and a 95% t interval; a
verdict "model better" needs the interval of the per-set differences to exclude zero.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cli import interval, sampling_given  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

HIGHER_BETTER = ("pitch", "pitch_class")


def excerpts(split: str, bars: int):
    """(name, SATB codes [4, bars * 16]) of the first `bars` full bars of each piece in split."""
    from genforge.music import corpus, dataset
    from genforge.music import representation as rep
    out = []
    for piece in dataset.select_split(corpus.read_corpus(corpus.BACH).pieces, split):
        starts = dataset.crop_starts(piece, bars)
        if starts:
            crop = piece.grid[:, starts[0]:starts[0] + bars * rep.STEPS_PER_BAR]
            out.append((piece.name, rep.canonical_satb(crop)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a trained four-part music model folder")
    parser.add_argument("--out", default="runs/harmonisation-bench")
    parser.add_argument("--split", default="test", choices=("test", "validation"))
    parser.add_argument("--bars", type=int, default=8)
    parser.add_argument("--pieces", type=int, default=0, help="at most this many (0: all)")
    parser.add_argument("--seed-sets", type=int, default=3)
    parser.add_argument("--transpose", type=int, default=6, help="the baseline's training data")
    parser.add_argument("--rules", action="store_true", default=None,
                        help="the model re-pitches parallels")
    parser.add_argument("--sampler", default=None, help="inpainting sampler (default: the kind's)")
    parser.add_argument("--steps", type=int, default=None, help="sampler steps (default: the kind's)")
    parser.add_argument("--temperature", type=float, default=None,
                        help="discrete models (default: the kind's)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch
    torch.set_num_threads(args.threads)
    import genforge
    from genforge.generation.inpaint import inpaint_items
    from genforge.metrics.harmonisation import harmonisation_scores
    from genforge.music import baseline, corpus, dataset

    started = time.perf_counter()
    pieces = excerpts(args.split, args.bars)[:args.pieces or None]
    bach = np.stack([grid for _, grid in pieces])
    mask = np.zeros(bach.shape, dtype=bool)
    mask[:, 0] = True  # the soprano is given
    melody = np.where(mask, bach, 0).astype(np.uint8)
    train = dataset.crop_pieces(dataset.select_split(corpus.read_corpus(corpus.BACH).pieces,
                                                     "train"), 4)
    chain = baseline.fit_markov(dataset.transpose_crops(train, args.transpose).items, order=2)
    model = genforge.load(args.model, device="cpu")
    sampling = sampling_given(args)
    per_set: dict[str, list[dict]] = {"model": [], "baseline": [], "bach": []}
    options = {}
    for k in range(args.seed_sets):
        seeds = [k * 100_000 + i for i in range(len(pieces))]
        ours, options = inpaint_items(model, torch.from_numpy(melody), torch.from_numpy(mask),
                                      seeds, sampling)
        markov = [baseline.harmonize_markov(chain, m, g, seed=k * 100_000 + i)
                  for i, (m, g) in enumerate(zip(melody, mask))]
        assert (ours.numpy()[:, 0] == bach[:, 0]).all()  # the melody comes back exactly
        per_set["model"].append(harmonisation_scores(list(ours.numpy()), list(bach)))
        per_set["baseline"].append(harmonisation_scores(markov, list(bach)))
        print(f"seed set {k}: model {per_set['model'][-1]}", flush=True)
    per_set["bach"] = [harmonisation_scores(list(bach), list(bach))]
    names = list(per_set["model"][0])
    lines = [f"Harmonisation of {len(pieces)} {args.split} chorales ({args.bars}-bar excerpts, "
             f"soprano given) by {args.model} ({model.config.family}; inpainting "
             f"{json.dumps(options, sort_keys=True)}) and the order-2 Markov harmoniser; "
             f"{args.seed_sets} seed sets, mean [95% t interval]; "
             f"{time.perf_counter() - started:.0f} s", "",
             "| measure | model | Markov baseline | Bach | model better? |", "|---|---|---|---|---|"]
    verdicts = {}
    for name in names:
        scale = 1 / args.bars if name.startswith("parallel") else 1  # per bar
        m = interval([s[name] * scale for s in per_set["model"]])
        b = interval([s[name] * scale for s in per_set["baseline"]])
        diff = interval([(x[name] - y[name]) * scale
                         for x, y in zip(per_set["model"], per_set["baseline"])])
        higher = name.endswith(HIGHER_BETTER)
        better = diff[1] > 0 if higher else diff[2] < 0
        worse = diff[2] < 0 if higher else diff[1] > 0
        verdicts[name] = "yes" if better else "no (worse)" if worse else "not shown"
        lines.append(f"| {name.replace('_', ' ')}{' per bar' if scale != 1 else ''} | "
                     f"{m[0]:.3f} [{m[1]:.3f}, {m[2]:.3f}] | {b[0]:.3f} [{b[1]:.3f}, {b[2]:.3f}] | "
                     f"{per_set['bach'][0][name] * scale:.3f} | {verdicts[name]} |")
    text = "\n".join(lines)
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "harmonisation.json").write_text(json.dumps(
        {"pieces": [n for n, _ in pieces], "per_set": per_set, "verdicts": verdicts,
         "options": options}, indent=2, default=float))
    (out / "harmonisation.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
