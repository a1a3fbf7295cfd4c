"""The command line: a thin shell that parses, calls genforge.api and formats the result.

Training options are generated from the config dataclasses, so each is declared once.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import MISSING, fields
from pathlib import Path

from . import api, io
from .config import PRESETS, SECTIONS
from .errors import GenforgeError
from .sampling import SAMPLERS
from .version import __version__


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    """One --option per config field (except the data source, which is positional)."""
    for section, cls in SECTIONS.items():
        group = parser.add_argument_group(f"{section} options")
        for f in fields(cls):
            if f.name == "source":
                continue
            flag = "--" + f.name.replace("_", "-")
            default = f.default if f.default is not MISSING else f.default_factory()
            shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
            help_text = f"{f.metadata['help']} (default: {shown})"
            if isinstance(default, bool):
                group.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction,
                                   default=argparse.SUPPRESS, help=help_text)
            else:
                choices = f.metadata.get("choices")
                if choices:
                    help_text += f"; one of {', '.join(str(c) for c in choices)}"
                # Values stay strings here; config.py coerces and validates them with clear errors.
                group.add_argument(flag, dest=f.name, default=argparse.SUPPRESS, metavar="VALUE",
                                   help=help_text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genforge", description="Create a generative model from your own data.",
        epilog="Example: genforge train ./my-images --minutes 30 --run runs/mine")
    parser.add_argument("--version", action="version", version=f"genforge {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train a model on a dataset (rerun the same command to resume)",
                       description="Train a model; rerunning the same command in the same --run "
                                   "folder resumes where it stopped.")
    p.add_argument("data", metavar="DATA", help="a folder of images, or a dataset name "
                   "(fashion-mnist, fashion-mnist-sample)")
    p.add_argument("--run", default="runs/genforge", help="run folder (default: runs/genforge)")
    p.add_argument("--preset", default=api.DEFAULT_PRESET, choices=list(PRESETS),
                   help=f"starting configuration (default: {api.DEFAULT_PRESET})")
    p.add_argument("--dry-run", action="store_true", help="print the resolved configuration and stop")
    _add_config_options(p)

    p = sub.add_parser("generate", help="generate samples from an exported model")
    p.add_argument("model", metavar="MODEL", help="an exported model folder (RUN/model)")
    p.add_argument("-n", type=int, default=64, help="how many samples (default: 64)")
    p.add_argument("--sampler", default="dpmpp-2m", choices=list(SAMPLERS))
    p.add_argument("--steps", type=int, default=20, help="sampler steps (default: 20)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first sample; sample i uses seed+i")
    p.add_argument("--guidance", type=float, default=1.0,
                   help="classifier-free guidance scale (1: none; 2-4 sharpen class identity)")
    p.add_argument("--class", dest="class_label", default=None,
                   help="class index or name (default: cycle through the classes; 'none': unconditional)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default="samples", help="output folder (default: samples)")

    p = sub.add_parser("info", help="describe an exported model")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("demo", help="train on the bundled Fashion-MNIST sample and draw garments")
    p.add_argument("--out", default="demo-output", help="output folder (default: demo-output)")
    p.add_argument("--minutes", type=float, default=4.0, help="training time (default: 4)")
    return parser


def _train(args: argparse.Namespace) -> int:
    skip = {"command", "data", "run", "preset", "dry_run"}
    options = {k: v for k, v in vars(args).items() if k not in skip}
    config = api.resolve_config(args.data, args.preset, **options)
    if args.dry_run:
        print(config.to_json())
        return 0
    summary = api.train(run=args.run, config=config)
    print(api.summary_markdown(summary), end="")
    if summary["status"] == "interrupted":
        print(f"stopped at step {summary['steps']}: checkpoint saved; rerun the same command to resume")
        return 130
    return 0


def _generate(args: argparse.Namespace) -> int:
    model = api.load(args.model, device=args.device)
    items = model.generate(args.n, seed=args.seed, sampler=args.sampler, steps=args.steps,
                           guidance=args.guidance, class_label=args.class_label,
                           batch_size=args.batch_size, out=args.out)
    print(f"wrote {len(items)} samples, grid.png and generation.json to {args.out}")
    return 0


def _info(args: argparse.Namespace) -> int:
    info = api.load(args.model, device="cpu").info()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    m = info["manifest"]
    print(f"{info['folder']}: {info['family']} model for {info['kind']} items of shape "
          f"{info['item_shape']}, {info['parameters']:,} parameters")
    print(f"classes: {', '.join(info['classes']) or 'none (unconditional)'}")
    print(f"trained: {m['training']['steps']} steps, {m['training']['images_seen']:,} images, "
          f"on {m['dataset']['source']} ({m['dataset']['items']} items, fingerprint "
          f"{m['dataset']['fingerprint'][:12]})")
    print(f"genforge {m['genforge_version']}, torch {m['torch_version']}, config {m['config_hash']}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    out = Path(args.out)
    summary = api.train("fashion-mnist-sample", out / "run", minutes=args.minutes,
                        sample_every=10**9, progress=sys.stderr.isatty())
    model = api.load(out / "run" / "model")
    model.generate(100, seed=0, guidance=2.0, out=out / "samples")
    lines = [
        f"genforge demo: {summary['steps']} steps in {summary['training_seconds']} s "
        f"on {summary['device']} ({summary['images_per_second']} images/s), final loss {summary['final_loss']:.4f}",
        f"sample grid (one class per column: {', '.join(model.class_names)}): {out / 'samples' / 'grid.png'}",
        f"exported model: {out / 'run' / 'model'}  (try: genforge generate {out / 'run' / 'model'} -n 16)",
    ]
    io.write_text(out / "summary.txt", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


COMMANDS = {"train": _train, "generate": _generate, "info": _info, "demo": _demo}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except GenforgeError as err:
        print(f"genforge: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("genforge: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
