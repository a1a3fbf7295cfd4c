"""Make the bundled Fashion-MNIST sample in src/genforge/data/ (reproducible byte for byte).

    python scripts/make_fashion_sample.py [--source /usr/share/datasets/fashion-mnist]

Takes a class-balanced sample of the training set (400 images per class, chosen with a seeded
numpy Generator and kept in their original order), writes it as two gzipped IDX files (mtime 0 and
no file name in the gzip header, so reruns give identical bytes), and writes the licence and
attribution next to them.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
from pathlib import Path

import numpy as np

from genforge.modalities import fashion_mnist as fm

LICENSE = """\
The MIT License (MIT) Copyright © 2017 Zalando SE, https://tech.zalando.com

Permission is hereby granted, free of charge, to any person obtaining a copy of this software and associated documentation files (the “Software”), to deal in the Software without restriction, including without limitation the rights to use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies of the Software, and to permit persons to whom the Software is furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED “AS IS”, WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
"""

README = """\
# Bundled data

## Fashion-MNIST sample

`{images}` and
`{labels}` hold {total:,} of the 60,000 Fashion-MNIST
training images ({per_class} per class, 28x28 grey) with their labels, as gzipped IDX files.
genforge opens them as the data source `fashion-mnist-sample`, so demos and tests need no download.

- Dataset: Fashion-MNIST by Han Xiao, Kashif Rasul and Roland Vollgraf, Zalando Research.
  "Fashion-MNIST: a Novel Image Dataset for Benchmarking Machine Learning Algorithms",
  arXiv:1708.07747, 2017. https://github.com/zalandoresearch/fashion-mnist
- Licence: MIT, Copyright (c) 2017 Zalando SE; the full text is in `FASHION-MNIST-LICENSE`.
- Source files: `train-images-idx3-ubyte.gz` and `train-labels-idx1-ubyte.gz` as shipped by
  Debian's `dataset-fashion-mnist` package (identical content to the official files: the sha256 of
  their decompressed content matches the table in `genforge/modalities/fashion_mnist.py`).
- How the sample was made: for each class, `numpy.random.default_rng({seed})` chose
  {per_class} training indices without replacement (classes in label order, one generator);
  the chosen images keep their original order. Made by

      python scripts/make_fashion_sample.py --per-class {per_class} --seed {seed}

  which rewrites these files byte for byte.
- sha256 of the decompressed content:
  - images: `{images_sha}`
  - labels: `{labels_sha}`

Classes: {classes}.
"""


def sample_indices(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """per_class indices of each class, chosen with one seeded generator, in ascending order."""
    rng = np.random.default_rng(seed)
    chosen = [rng.choice(np.flatnonzero(labels == c), per_class, replace=False)
              for c in range(len(fm.CLASS_NAMES))]
    return np.sort(np.concatenate(chosen))


def write_gz(path: Path, payload: bytes) -> None:
    """gzip with mtime 0 and no file name in the header, so the bytes depend only on the payload."""
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw,
                                                 compresslevel=9, mtime=0) as out:
        out.write(payload)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=str(fm.SYSTEM_DIRS[0]), help="folder with the official files")
    parser.add_argument("--out", default=str(fm.SAMPLE_DIR), help="where to write the sample")
    parser.add_argument("--per-class", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    source, out = Path(args.source), Path(args.out)
    for name in fm.SPLITS["train"]:  # only the official data may become the bundled sample
        path = fm.locate(source, name)
        actual = hashlib.sha256(gzip.decompress(path.read_bytes())).hexdigest() if path else None
        if path is None or actual != fm.SHA256[name]:
            raise SystemExit(f"{source / name} is missing or not the official Fashion-MNIST file")
    images, labels = fm.read_pair(source, *fm.SPLITS["train"])
    keep = sample_indices(labels, args.per_class, args.seed)

    payloads = (fm.encode_idx(images[keep]), fm.encode_idx(labels[keep].astype(np.uint8)))
    out.mkdir(parents=True, exist_ok=True)
    for name, payload in zip(fm.SAMPLE_FILES, payloads):
        write_gz(out / name, payload)
    (out / "FASHION-MNIST-LICENSE").write_text(LICENSE, encoding="utf-8")
    (out / "README.md").write_text(README.format(
        images=fm.SAMPLE_FILES[0], labels=fm.SAMPLE_FILES[1], total=len(keep),
        per_class=args.per_class, seed=args.seed,
        images_sha=hashlib.sha256(payloads[0]).hexdigest(),
        labels_sha=hashlib.sha256(payloads[1]).hexdigest(),
        classes=", ".join(fm.CLASS_NAMES)), encoding="utf-8")
    print(f"wrote {len(keep)} images to {out}")


if __name__ == "__main__":
    main()
