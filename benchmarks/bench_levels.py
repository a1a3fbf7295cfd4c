"""Game levels: playable, novel, varied? Diffusion and a GAN against simple baselines
(run by hand; prints markdown tables and writes OUT/GAME-rows.jsonl and OUT/GAME-results.md)

    python benchmarks/bench_levels.py --game sokoban --minutes 30 --out runs/levels-bench
    GENFORGE_DATA=/opt/genforge-data python benchmarks/bench_levels.py --game lode-runner \\
        --minutes 15 --out runs/levels-bench
    python benchmarks/bench_levels.py --minutes 0.3 --samples 20 --out /tmp/levels-smoke

Trains through the CLI a user would run, each job on its own thread(s), jobs side by side:

    diffusion   genforge train sokoban --max-size 10 --level-sets all --minutes M
    gan         genforge train sokoban --max-size 10 --level-sets all --minutes M --family gan

(Lode Runner: `genforge train lode-runner`, KGoldrunner's 28x20 levels.) Each model then draws
--samples levels (seeds 0..n-1), as do the baselines, fit on the same training levels:

    markov      levels.baseline.MarkovLevels (tile given its left, top and top-left neighbours)
    random      levels.baseline.random_sokoban (walls at 20%, 2 boxes; Sokoban only)
    training    the training levels themselves: what the checks make of real levels

(with --rules, "discrete+rules" is the discrete model again, its samples mended by the
sampler's rule moves: levels.rules) and every set is judged with the pure functions of
genforge.metrics.levels: playable share without repair and with levels.repair.repair applied to
each level (and the share repair changed); levels the solver gives up on (its node budget,
20,000 states, spent) count as not playable and are counted apart; novelty (share that is not an
exact copy of a training level), diversity (mean pairwise normalised Hamming distance),
tile-pattern KL(training || generated) of 2x2 and 3x3 windows (with, for reference, the KL of
copies of training levels and of one half of them against the other), tile-frequency error, boxes or
gold per level (what rules and repair may take away), and the median solution length (LURD
moves) of the solvable levels. Novelty, diversity and the pattern figures are of the levels as
generated.
A Sokoban level with every box already on a goal passes the solver with no moves: such levels are
counted ("solved at start") and each playable share is also given without them ("with moves").
--reference validation judges against the validation split instead of test (choose sampling
settings there, then judge test once). --stages train or evaluate runs one half (rerunning train
resumes each run, so a finished one adds no steps); --eval-workers spreads the solver over
processes.
A 16-level preview per generator goes to OUT/previews/, every level (.xsb or .txt, plus .png)
to OUT/GAME-NAME/levels/ and all of them as uint8 [N, H, W] to OUT/GAME-NAME/levels.npy.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cli import interval, run_genforge as run  # noqa: E402

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

# the tile type counted per level (rules and repair may take some away), and its column's name
PIECES = {"sokoban": ("box", "boxes"), "lode-runner": ("gold", "gold")}
GAMES = {  # CLI data arguments; the shape the baselines draw (height, width)
    "sokoban": (["sokoban", "--max-size", "10", "--level-sets", "all"], (10, 10)),
    "lode-runner": (["lode-runner"], (20, 28)),
}
FAMILIES = {"discrete": ["--family", "discrete"], "diffusion": [], "gan": ["--family", "gan"]}
RULED = "discrete+rules"  # the discrete model sampled with --rules: a row of its own
SOLVER = "pi-corrals, A* then weighted 3"  # in the training row's cache key: a new solver judges anew




def train(family: str, args: argparse.Namespace) -> dict:
    """Train (or resume: the same command in the same folder) one model; its training figures."""
    folder = Path(args.out) / f"{args.game}-{family}"
    extra = list(FAMILIES[family])
    if family == "gan" and args.gan_architecture != "stylegan2":
        extra += ["--architecture", args.gan_architecture]
    command = ["train", *GAMES[args.game][0], "--run", str(folder), "--preset", args.preset,
               "--minutes", str(args.minutes), "--progress", "none", "--device", "cpu", *extra,
               *args.train_args.split()]
    wall = run(command, args.threads, Path(args.out) / f"{args.game}-{family}.log")
    s = json.loads((folder / "summary.json").read_text())
    print(f"trained {args.game} {family}: {s['steps']} steps in {s['training_seconds']} s",
          flush=True)
    return {"command": "genforge " + " ".join(command), "steps": s["steps"],
            "training_s": s["training_seconds"], "wall_s": round(wall, 1),
            "steps_per_s": round(s["steps"] / max(1e-9, s["training_seconds"]), 2),
            "parameters": s["parameters"], "images_seen": s["images_seen"],
            "final_loss": s["final_loss"]}


def training_levels(game: str, split: str = "train"):
    """The training levels exactly as `genforge train` reads them (its default: the train split;
    "test": the held-out levels judged against), and their legend."""
    from genforge.config import DataConfig
    from genforge.modalities import MODALITIES
    options = {"max_size": "10", "level_sets": "all"} if game == "sokoban" else {}
    data = MODALITIES["level"].open(DataConfig(source=game, kind="level", split=split, **options))
    modality = MODALITIES["level"].bind(data.vocabulary)
    return data.items.numpy(), modality.legend, modality


def sample_model(folder: Path, n: int, threads: int, options: dict | None = None,
                 seed: int = 0) -> np.ndarray:
    """n levels from an exported model, seeds seed..seed+n-1, the family's default sampling
    unless options (sampler, steps, temperature) say otherwise."""
    import torch

    import genforge
    from genforge.generation import generate_items
    torch.set_num_threads(threads)
    model = genforge.load(folder / "model", device="cpu")
    with torch.no_grad():
        items = generate_items(model.family, model.module, model.spec, model.config, n, seed=seed,
                               labels=None, batch_size=100, device="cpu", **(options or {}))
    return items.numpy().astype(np.uint8)


def _checks(grids: np.ndarray, legend_dict: dict) -> list[dict]:
    from genforge.levels.formats import Legend
    from genforge.metrics.levels import playability
    return playability(grids, Legend.from_dict(legend_dict))


def checks(grids: np.ndarray, legend, workers: int) -> list[dict]:
    """metrics.levels.playability per level, split over worker processes (the solver is Python)."""
    if workers <= 1 or len(grids) < 2 * workers:
        return _checks(grids, legend.to_dict())
    parts = np.array_split(grids, workers * 4)
    with ProcessPoolExecutor(workers) as pool:
        done = pool.map(_checks, parts, [legend.to_dict()] * len(parts))
    return [r for part in done for r in part]


def solved_at_start(result: dict, game: str) -> bool:
    """A Sokoban level that counts as playable though there is nothing to do (no moves)."""
    return game == "sokoban" and result["playable"] and result["length"] is None


def pieces_per_level(grids: np.ndarray, legend, game: str) -> float:
    """Mean count per level of the game's counted tile (PIECES): boxes or gold."""
    return float(np.isin(grids, legend.tiles_with(PIECES[game][0])).sum((1, 2)).mean())


def judge(name: str, grids: np.ndarray, train_grids: np.ndarray, legend,
          args: argparse.Namespace, test_grids: np.ndarray | None = None) -> dict:
    """Every figure of one set of levels."""
    from genforge.levels.repair import repair
    from genforge.metrics import levels as lm
    started = time.perf_counter()
    raw = checks(grids, legend, args.eval_workers)
    fixed = [repair(g, legend) for g in grids]
    changed = [c for _, c in fixed]
    # an unchanged level has the same check; only the changed ones go to the solver again
    redo = [i for i, c in enumerate(changed) if c]
    again = checks(np.stack([fixed[i][0] for i in redo]), legend, args.eval_workers) if redo else []
    repaired = list(raw)
    for i, r in zip(redo, again):
        repaired[i] = r
    n = len(grids)
    share = lambda rows, key, value: sum(r[key] == value for r in rows) / n  # noqa: E731
    lengths = [r["length"] for r in raw if r["playable"] and r["length"] is not None]
    lengths_fixed = [r["length"] for r in repaired if r["playable"] and r["length"] is not None]
    novelty = lm.novelty(grids, train_grids)
    row = {
        "game": args.game, "generator": name, "n": n,
        "playable": share(raw, "playable", True),
        "playable_repaired": share(repaired, "playable", True),
        "repair_changed": sum(changed) / n,
        "statuses": dict(Counter(r["status"] for r in raw)),
        "statuses_repaired": dict(Counter(r["status"] for r in repaired)),
        "unknown": share(raw, "status", "unknown"),
        "unknown_repaired": share(repaired, "status", "unknown"),
        "malformed": share(raw, "status", "malformed"),
        # Sokoban levels with every box already on a goal pass the solver with no moves
        "solved_at_start": sum(solved_at_start(r, args.game) for r in raw),
        "solved_at_start_repaired": sum(solved_at_start(r, args.game) for r in repaired),
        "novel": novelty["novel_share"], "copies": novelty["copies"],
        "nn_hamming": novelty["nn_distance"],
        "diversity": lm.diversity(grids),
        "kl_2x2": lm.pattern_kl(grids, train_grids, 2),
        "kl_3x3": lm.pattern_kl(grids, train_grids, 3),
        # against the held-out test levels: the judgement that does not reward copying
        **({f"kl_{k}x{k}_test": lm.pattern_kl(grids, test_grids, k) for k in (2, 3)}
           if test_grids is not None else {}),
        "tile_error": lm.tile_distribution_error(grids, train_grids, legend.size),
        "pieces": pieces_per_level(grids, legend, args.game),
        "median_moves": float(statistics.median(lengths)) if lengths else None,
        "median_moves_repaired": float(statistics.median(lengths_fixed)) if lengths_fixed else None,
        "node_budget": lm.NODE_BUDGET, "judge_s": round(time.perf_counter() - started, 1),
    }
    print(f"judged {args.game} {name}: playable {row['playable']:.3f} / repaired "
          f"{row['playable_repaired']:.3f} ({row['judge_s']} s)", flush=True)
    return row


def judged(name: str, grids: np.ndarray, train_grids: np.ndarray, legend,
           args: argparse.Namespace, test_grids: np.ndarray | None = None) -> dict:
    """judge(), with the training levels' row cached under a hash of the levels (the solver
    needs minutes for them: real levels often spend its whole budget)."""
    if name != "training":
        return judge(name, grids, train_grids, legend, args, test_grids)
    from genforge.metrics.levels import NODE_BUDGET
    key = hashlib.sha256(grids.tobytes() + str((grids.shape, NODE_BUDGET, SOLVER)).encode()
                         + (b"" if test_grids is None else test_grids.tobytes())).hexdigest()
    cache = Path(args.out) / "cache" / f"{args.game}-training-{key[:16]}.json"
    if cache.exists():
        row = json.loads(cache.read_text())  # (rows cached before the pieces column lack it)
        return {"pieces": pieces_per_level(grids, legend, args.game), **row}
    row = judge(name, grids, train_grids, legend, args, test_grids)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(row))
    return row


def save(name: str, grids: np.ndarray, modality, args: argparse.Namespace) -> str:
    """The 16-level preview (returned) and every level as the game's files."""
    import torch
    out = Path(args.out)
    (out / "previews").mkdir(parents=True, exist_ok=True)
    preview = out / "previews" / f"{args.game}-{name}.png"
    modality.preview(torch.from_numpy(grids[:16]), columns=8).save(preview)
    if name != "training":
        folder = out / f"{args.game}-{name}" / "levels"
        modality.write(torch.from_numpy(grids), folder, [f"{i:04d}" for i in range(len(grids))])
        np.save(folder.parent / "levels.npy", grids)  # uint8 [N, H, W], as judged
    return str(preview)


def table(rows: list[dict], training: dict, held_out: str = "test") -> str:
    """The markdown tables of one game."""
    sokoban = rows[0]["game"] == "sokoban"
    pct = lambda v: f"{100 * v:.1f}%"  # noqa: E731
    moves = lambda v: "–" if v is None else f"{v:g}"  # noqa: E731

    def both(r: dict, suffix: str) -> str:  # Sokoban: and without the levels solved at start
        playable = r["playable" + suffix]
        if not sokoban:
            return pct(playable)
        return f"{pct(playable)} ({pct(playable - r.get('solved_at_start' + suffix, 0) / r['n'])})"
    lines = ["| generator | steps (steps/s) | playable" + (" (with moves)" if sokoban else "")
             + " | gave up | playable, repaired" + (" (with moves)" if sokoban else "") + " | "
             f"changed by repair | novel | diversity | KL 2x2 / 3x3 to {held_out} | KL 2x2 / 3x3 to "
             f"train | tile error | "
             f"{PIECES[rows[0]['game']][1]} per level |"
             + (" median moves (repaired) |" if sokoban else ""),
             "|---|---|---|---|---|---|---|---|---|---|---|---|" + ("---|" if sokoban else "")]
    test_kl = lambda r: (f"{r['kl_2x2_test']:.3f} / {r['kl_3x3_test']:.3f}"  # noqa: E731
                         if "kl_2x2_test" in r else "–")
    for r in rows:
        t = training.get(r["generator"])
        steps = f"{t['steps']:,} ({t['steps_per_s']:.2f})" if t else "–"
        lines.append(
            f"| {r['generator']} | {steps} | {both(r, '')} | {pct(r['unknown'])} | "
            f"{both(r, '_repaired')} | {pct(r['repair_changed'])} | {pct(r['novel'])} | "
            f"{r['diversity']:.3f} | {test_kl(r)} | {r['kl_2x2']:.3f} / {r['kl_3x3']:.3f} | "
            f"{r['tile_error']:.3f} | {r['pieces']:.1f} |"
            + (f" {moves(r['median_moves'])} ({moves(r['median_moves_repaired'])}) |"
               if sokoban else ""))
    lines += ["", "| generator | statuses as generated | statuses after repair |"
              + (" solved at start (as generated / repaired) |" if sokoban else ""),
              "|---|---|---|" + ("---|" if sokoban else "")]
    for r in rows:
        fmt = lambda s: ", ".join(f"{k} {v}" for k, v in sorted(s.items()))  # noqa: E731
        lines.append(f"| {r['generator']} | {fmt(r['statuses'])} | {fmt(r['statuses_repaired'])} |"
                     + (f" {r.get('solved_at_start', 0)} / {r.get('solved_at_start_repaired', 0)} |"
                        if sokoban else ""))
    return "\n".join(lines)


def verdicts(rows: list[dict], held_out: str = "test") -> str:
    """The issue's targets, per trained model: >= 50% playable as generated, >= 90% repaired,
    >= 95% novel, lower 2x2 and 3x3 pattern KL than every baseline."""
    by = {r["generator"]: r for r in rows}
    baselines = [by[b] for b in ("markov", "random") if b in by]
    lines = []
    for name in (*FAMILIES, RULED):
        if name not in by:
            continue
        r = by[name]
        kl = "_test" if "kl_2x2_test" in r else ""  # held-out levels when judged against them
        kl_ok = all(r[f"kl_2x2{kl}"] < b[f"kl_2x2{kl}"] and r[f"kl_3x3{kl}"] < b[f"kl_3x3{kl}"]
                    for b in baselines)
        def share(suffix: str) -> str:  # Sokoban: and without the levels solved at start
            text = f"{100 * r['playable' + suffix]:.1f}%"
            if r["game"] == "sokoban":
                moved = r["playable" + suffix] - r.get("solved_at_start" + suffix, 0) / r["n"]
                text += f"; with moves {100 * moved:.1f}%"
            return text
        tests = [("playable >= 50%", r["playable"] >= 0.5, share("")),
                 ("playable, repaired >= 90%", r["playable_repaired"] >= 0.9, share("_repaired")),
                 ("novel >= 95%", r["novel"] >= 0.95, f"{100 * r['novel']:.1f}%"),
                 (f"pattern KL{f' to the {held_out} levels' if kl else ''} below the baselines'", kl_ok,
                  f"{r[f'kl_2x2{kl}']:.3f}/{r[f'kl_3x3{kl}']:.3f} vs "
                  + ", ".join(f"{b['generator']} {b[f'kl_2x2{kl}']:.3f}/{b[f'kl_3x3{kl}']:.3f}"
                              for b in baselines))]
        if name == RULED and r["game"] == "sokoban":  # issue 25: difficulty that survives rules
            tests += [("median moves >= 40", (r["median_moves"] or 0) >= 40,
                       f"{r['median_moves']}"),
                      ("boxes >= 4 a level", r["pieces"] >= 4, f"{r['pieces']:.1f}")]
        lines.append(f"- {name}: " + "; ".join(f"{what}: {'met' if ok else 'NOT met'} ({value})"
                                               for what, ok, value in tests))
    return "\n".join(lines)


SPREAD = (("playable", "playable", 100), ("novel", "novel", 100),  # labels name the held-out split
          ("KL 2x2 to {held_out}", "kl_2x2_test", 1), ("KL 3x3 to {held_out}", "kl_3x3_test", 1),
          ("pieces per level", "pieces", 1), ("median moves", "median_moves", 1))


def seed_set_table(rows: list[dict], sets: int, held_out: str = "test") -> str:
    """Mean and 95% t interval over the seed sets of the figures the verdicts use."""
    lines = [f"over {sets} seed set(s), mean [95% t interval]:", "",
             "| generator | " + " | ".join(label.format(held_out=held_out) for label, _, _ in SPREAD)
             + " |",
             "|---|" + "---|" * len(SPREAD)]
    for name in dict.fromkeys(r["generator"] for r in rows if r["generator"] != "training"):
        cells = []
        for _, key, scale in SPREAD:
            v = [r[key] * scale for r in rows if r["generator"] == name and r.get(key) is not None]
            if not v:
                cells.append("–")
                continue
            mean, low, high = interval(v)
            cells.append(f"{mean:.3g} [{low:.3g}, {high:.3g}]")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def kl_references(train_grids: np.ndarray, samples: int, splits: int = 3) -> str:
    """Pattern KL of real levels, to read the generators' against: `samples` training levels
    drawn with replacement (a generator that only copies), and one random half of the training
    levels judged against the other half (new human levels; at half the size, so a little high)."""
    from genforge.metrics import levels as lm
    rng = np.random.default_rng(0)
    copies = train_grids[rng.integers(0, len(train_grids), samples)]
    halves = []
    for _ in range(splits):
        order = rng.permutation(len(train_grids))
        half, other = train_grids[order[:len(order) // 2]], train_grids[order[len(order) // 2:]]
        halves.append([lm.pattern_kl(other, half, k) for k in (2, 3)])
    low, high = np.min(halves, axis=0), np.max(halves, axis=0)
    copied = [lm.pattern_kl(copies, train_grids, k) for k in (2, 3)]
    return (f"pattern KL of real levels, for reference (2x2 / 3x3): {samples} training levels "
            f"drawn with replacement (copies) {copied[0]:.3f} / {copied[1]:.3f}; one random half "
            f"of the training levels against the other ({len(train_grids) - len(train_grids) // 2}"
            f" against {len(train_grids) // 2}, {splits} splits) {low[0]:.3f}-{high[0]:.3f} / "
            f"{low[1]:.3f}-{high[1]:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--game", choices=list(GAMES), default="sokoban")
    parser.add_argument("--out", default="runs/levels-bench")
    parser.add_argument("--minutes", type=float, default=30.0, help="training time per model")
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--gan-architecture", default="stylegan2", choices=["stylegan2", "dcgan"])
    parser.add_argument("--preset", default="cpu-small")
    parser.add_argument("--samples", type=int, default=500, help="levels per generator")
    parser.add_argument("--threads", type=int, default=1, help="threads per training job")
    parser.add_argument("--parallel", type=int, default=2, help="training jobs at once")
    parser.add_argument("--eval-workers", type=int, default=1, help="solver processes")
    parser.add_argument("--seed-sets", type=int, default=3, help="every generator drawn this "
                        "many times (seeds k*samples..); the verdict figures get a mean and a "
                        "95%% t interval over them")
    parser.add_argument("--stages", default="train,evaluate", help="train, evaluate or both")
    parser.add_argument("--reference", default="test", choices=("test", "validation"),
                        help="the held-out split judged against: choose sampling settings with "
                        "validation, then judge test once")
    parser.add_argument("--discrete-sampling", default="", help="SAMPLER:STEPS:TEMPERATURE for "
                        "the discrete family (default: its own defaults)")
    parser.add_argument("--rules", action="store_true", help="also judge the discrete model's "
                        "samples with --rules (the model mends Sokoban's border, boxes, goals and "
                        "deadlocks, Lode Runner's gold out of reach)")
    parser.add_argument("--train-args", default="", help="extra genforge train options for every "
                        "family, e.g. '--batch-size 32' (after the defaults, so they win)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    families = [f for f in args.families.split(",") if f]
    stages = set(args.stages.split(","))
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    training: dict = {}
    summary_path = out / f"{args.game}-training.json"
    if "train" in stages:
        with ThreadPoolExecutor(args.parallel) as pool:
            training = dict(zip(families, pool.map(lambda f: train(f, args), families)))
        summary_path.write_text(json.dumps(training, indent=2))
    elif summary_path.exists():
        training = json.loads(summary_path.read_text())
    if "evaluate" not in stages:
        return
    import torch
    torch.set_num_threads(args.threads)
    from genforge.levels.baseline import MarkovLevels, random_sokoban
    train_grids, legend, modality = training_levels(args.game)
    test_grids = training_levels(args.game, args.reference)[0]
    shape = GAMES[args.game][1]
    discrete = dict(zip(("sampler", "steps", "temperature"), args.discrete_sampling.split(":")))
    discrete = {k: (v if k == "sampler" else int(v) if k == "steps" else float(v))
                for k, v in discrete.items() if v}
    rows, previews, spread = [], {}, []
    for k in range(args.seed_sets):  # seed set k: seeds k*n..(k+1)*n-1 for every generator
        first = k * args.samples
        sets = {f: sample_model(out / f"{args.game}-{f}", args.samples, args.threads,
                                discrete if f == "discrete" else None, first) for f in families}
        if args.rules and "discrete" in families:  # the same model, mended by --rules
            sets[RULED] = sample_model(out / f"{args.game}-discrete", args.samples,
                                       args.threads, {**discrete, "rules": True}, first)
            training[RULED] = training.get("discrete")
        sets["markov"] = MarkovLevels.fit(train_grids, legend.size).sample(args.samples, k, shape)
        if args.game == "sokoban":
            sets["random"] = random_sokoban(args.samples, shape, seed=k)
        if k == 0:
            sets["training"] = train_grids
        for name, grids in sets.items():
            row = judged(name, grids, train_grids, legend, args, test_grids)
            row["seed_set"] = k
            row["reference"] = args.reference  # the split the kl_*_test keys were judged on
            if k == 0:
                row["preview"] = previews[name] = save(name, grids, modality, args)
                if name in training:
                    row["training"] = training[name]
                rows.append(row)
            spread.append(row)
            with open(out / f"{args.game}-rows.jsonl", "a") as f:  # each row as it comes
                f.write(json.dumps(row) + "\n")
    header = (f"{args.game}: {len(train_grids)} training levels (train split) of "
              f"{shape[0]}x{shape[1]}, {len(test_grids)} held-out {args.reference} levels; "
              f"{args.minutes:g} training minutes per model, {args.threads} thread(s) each, "
              f"{args.parallel} jobs at once, preset {args.preset}"
              f"{' ' + args.train_args if args.train_args else ''}, discrete sampling "
              f"{args.discrete_sampling or 'default'}, GAN "
              f"{args.gan_architecture}; {args.samples} levels per generator (training: all "
              f"{len(train_grids)}); solver budget {rows[0]['node_budget']:,} states; load "
              f"average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after; total "
              f"{time.perf_counter() - started:.0f} s")
    text = "\n\n".join([header, table(rows, training, args.reference),
                         verdicts(rows, args.reference),
                         seed_set_table(spread, args.seed_sets, args.reference),
                        kl_references(train_grids, args.samples),
                        "previews:\n" + "\n".join(f"- {k}: {v}" for k, v in previews.items())])
    print(text)
    (out / f"{args.game}-results.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
