"""python -m genforge.runtime MODEL [-n N] [--seed S] [--class C] [--out DIR] [--option NAME=VALUE]

Generates from an ONNX export without PyTorch. The sampling options are the ones the export
lists (config.json, onnx.sampling): pass any of them as --option NAME=VALUE."""
from __future__ import annotations

import argparse
import json
import sys

from ..errors import GenforgeError
from .model import load


def _value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text  # a word: a sampler's name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m genforge.runtime", description=__doc__.split(
        "\n\n")[1])
    parser.add_argument("model", metavar="MODEL", help="an ONNX export (genforge export MODEL "
                        "--format onnx)")
    parser.add_argument("-n", type=int, default=16, help="how many items (default: 16)")
    parser.add_argument("--seed", type=int, default=0, help="first seed; item i uses seed + i")
    parser.add_argument("--class", dest="class_label", default=None,
                        help="class name or index (default: seed mod classes; none: unconditional)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--out", default="samples", help="output folder (default: samples)")
    parser.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                        help="a sampling option of the export (e.g. steps=20, sampler=heun)")
    args = parser.parse_args(argv)
    try:
        options = {}
        for pair in args.option:
            name, sep, value = pair.partition("=")
            if not sep:
                raise GenforgeError(f"--option {pair!r}: expected NAME=VALUE")
            options[name.strip()] = _value(value.strip())
        model = load(args.model)
        model.generate(args.n, seed=args.seed, class_label=args.class_label,
                       batch_size=args.batch_size, out=args.out, **options)
    except GenforgeError as err:
        print(f"genforge.runtime: error: {err}", file=sys.stderr)
        return 2
    print(f"{args.n} items from {args.model} in {args.out} (records in generation.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
