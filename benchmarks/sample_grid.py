"""Rows of samples from several image models, the same seeds in every row (run by hand): what the
figures of a benchmark look like.

    python benchmarks/sample_grid.py OUT.png runs/old5/model:1 runs/new5/model runs/new30/model

Each argument is a model folder, optionally with ':GUIDANCE' (default: the model's own sampling
defaults). Seeds 0..columns-1, so a class-conditional model draws class s mod K in column s.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
import torch  # noqa: E402

import genforge  # noqa: E402
from genforge import io  # noqa: E402
from genforge.modalities import IMAGE  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out")
    parser.add_argument("models", nargs="+", help="MODEL or MODEL:GUIDANCE, one row each")
    parser.add_argument("--columns", type=int, default=10)
    args = parser.parse_args()
    rows = []
    for given in args.models:
        folder, _, guidance = given.partition(":")
        model = genforge.load(folder, device="cpu", precision="fp32")
        sampling = {"guidance": float(guidance)} if guidance else {}
        rows.append(model.generate(args.columns, seed=0, sign=False, watermark=False, **sampling))
        print(f"row {len(rows)}: {folder} {model.sampling(**sampling)}")
    picture = IMAGE.preview(torch.cat(rows), columns=args.columns)
    io.write_with(Path(args.out), lambda tmp: picture.save(tmp, format="PNG"))


if __name__ == "__main__":
    main()
