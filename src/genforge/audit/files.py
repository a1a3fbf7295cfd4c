"""What the files behind a dataset say: C2PA training permissions, the originals' sizes and
modes, byte-identical files, and the dataset's licence/source/consent manifest."""
from __future__ import annotations

import hashlib
import io as _io
import json
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

from PIL import Image

from .. import io
from ..errors import ConfigError, DataError
from .hashes import exact_groups

MANIFEST_NAME = "genforge-dataset.json"
MANIFEST_FIELDS = ("licence", "source", "consent")
_FASHION = {"licence": "MIT (Copyright (c) 2017 Zalando SE)",
            "source": "Fashion-MNIST, Zalando Research (Xiao, Rasul, Vollgraf 2017), "
                      "https://github.com/zalandoresearch/fashion-mnist",
            "consent": "released for any use under the MIT licence by the rights holder, Zalando SE"}
_FASHION_NAMES = ("fashion-mnist", "fashion-mnist-test", "fashion-mnist-sample")
# The other named datasets, as their distributors state their terms (genforge copies none of them:
# they are read from the user's installed packages).
BUILT_IN_MANIFESTS = {
    **{name: _FASHION for name in _FASHION_NAMES},
    "bach-chorales": {
        "licence": "the compositions are in the public domain (J. S. Bach, 1685-1750); the "
                   "encodings come with music21's corpus, whose corpus/license.txt says some "
                   "encodings may restrict commercial use",
        "source": "music21 corpus, bach/ (installed with the music21 package)",
        "consent": "not applicable to the compositions (public domain); the encodings are "
                   "distributed with the encoders' permission (music21 corpus/license.txt)"},
    "sokoban": {
        "licence": "by default the public-domain sets (xsokoban, gri) and Martin Gerhardy's CC0 "
                   "set, as cavepacker's README.maps states; --level-sets all adds GPL sets",
        "source": "Debian package cavepacker-data (read from the installed package)",
        "consent": "released by their authors under those terms"},
    "lode-runner": {
        "licence": "GPL-2.0-or-later (KGoldrunner's levels; a model trained on them may be a "
                   "derivative work: check before you publish it)",
        "source": "Debian package kgoldrunner (read from the installed package)",
        "consent": "released by the KGoldrunner authors under the GPL"},
}
STORED_SHAPES = {name: {"width": 28, "height": 28, "mode": "L"} for name in _FASHION_NAMES}

# C2PA: a "training and data mining" assertion saying notAllowed to either entry excludes the file.
MINING_LABELS = ("c2pa.training-mining", "cawg.training-mining")
TRAINING_ENTRIES = ("c2pa.ai_generative_training", "c2pa.ai_training",
                    "cawg.ai_generative_training", "cawg.ai_training")
C2PA_MARKER = b"c2pa"  # the JUMBF label every embedded manifest store carries



def training_permission(store: dict) -> tuple[str | None, str]:
    """('notAllowed' | 'constrained' | 'allowed' | None, detail) from a C2PA manifest store (as
    Reader.json() gives it). Any manifest in the store counts, the active one's or an ingredient's:
    a refusal anywhere in a file's history is respected. None: no training-mining assertion."""
    rank = {"allowed": 1, "constrained": 2, "notAllowed": 3}
    verdict, detail = None, ""
    for manifest in (store.get("manifests") or {}).values():
        for assertion in manifest.get("assertions") or []:
            label = str(assertion.get("label", "")).split("__")[0]  # "__N" numbers repeats
            if not label.startswith(MINING_LABELS):
                continue
            entries = (assertion.get("data") or {}).get("entries") or {}
            for entry in TRAINING_ENTRIES:
                use = (entries.get(entry) or {}).get("use")
                if use in rank and rank[use] > rank.get(verdict, 0):
                    verdict, detail = use, f"{label}: {entry} is {use}"
    return verdict, detail


class C2paUnavailable(DataError):
    """A file carries C2PA data and c2pa-python cannot be imported to read it."""


def read_c2pa(path: Path, data: bytes) -> dict | None:
    """The file's C2PA manifest store (Reader.json() as a dict), None without one.

    Files without the marker every embedded store carries never reach the reader (or its import),
    so data without C2PA costs one byte search per file. Raises C2paUnavailable when the package
    is missing and ValueError for a store the reader rejects.
    """
    if C2PA_MARKER not in data:
        return None
    try:
        import c2pa
    except (ImportError, OSError) as err:  # OSError: its native library failed to load
        raise C2paUnavailable(f"c2pa-python is not usable ({type(err).__name__}: {err}); "
                              "install it with 'pip install c2pa-python'") from None
    try:
        reader = c2pa.Reader.try_create(str(path))
        if reader is None:
            return None
        with reader:
            return json.loads(reader.json())
    except Exception as err:  # c2pa raises its own error family for malformed stores
        raise ValueError("unreadable C2PA manifest: " + " ".join(str(err).split())[:200]) from None


def _header(data: bytes) -> dict:
    """Format, width, height and mode from an image file's header (EXIF rotation applied)."""
    try:
        with Image.open(_io.BytesIO(data)) as img:
            w, h = img.size
            if img.getexif().get(0x0112) in (5, 6, 7, 8):  # rotated a quarter turn on display
                w, h = h, w
            return {"format": img.format, "width": w, "height": h, "mode": img.mode}
    except Exception:  # unreadable files are reported from the load report
        return {}


def scan_files(root: Path, paths: list[Path], index: dict[str, int]) -> dict:
    """Read every file once: header, sha256 of the bytes, C2PA permissions."""
    headers, digests = [], []
    c2pa: dict[str, Any] = {"manifests": 0, "not_allowed": [], "constrained": [], "unreadable": [],
                            "unchecked": []}
    for path in paths:
        data = path.read_bytes()
        record = {"path": path.relative_to(root).as_posix(), "index": index.get(str(path))}
        headers.append(_header(data))
        digests.append(hashlib.sha256(data).hexdigest())
        try:
            store = read_c2pa(path, data)
        except C2paUnavailable as err:
            c2pa["unchecked"].append({**record, "reason": str(err)})
            continue
        except ValueError as err:
            c2pa["unreadable"].append({**record, "reason": str(err)})
            continue
        if store is None:
            continue
        c2pa["manifests"] += 1
        verdict, detail = training_permission(store)
        if verdict in ("notAllowed", "constrained"):
            c2pa["not_allowed" if verdict == "notAllowed" else "constrained"].append(
                {**record, "assertion": detail})
    rels = [p.relative_to(root).as_posix() for p in paths]
    return {"originals": originals([h for h in headers if h], "file headers"),
            "file_duplicates": [[rels[i] for i in g] for g in exact_groups(digests)],
            "c2pa": c2pa}


def _spread(values: list[float]) -> dict:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def originals(headers: list[dict], where: str) -> dict:
    """Width, height and aspect-ratio spread, modes and formats of the original files."""
    if not headers:
        return {"from": where}
    widths, heights = [h["width"] for h in headers], [h["height"] for h in headers]
    return {"from": where, "width": _spread(widths), "height": _spread(heights),
            "aspect": {k: round(v, 4) for k, v in
                       _spread([w / max(h, 1) for w, h in zip(widths, heights)]).items()},
            "modes": dict(Counter(h["mode"] for h in headers).most_common()),
            "formats": dict(Counter(str(h.get("format")) for h in headers).most_common())}


def read_manifest(source: str) -> dict:
    """Licence, source and consent: built in for named datasets, else DATA/genforge-dataset.json."""
    if source in BUILT_IN_MANIFESTS:
        return {**BUILT_IN_MANIFESTS[source], "file": "built in"}
    path = Path(source).expanduser() / MANIFEST_NAME
    if not path.is_file():
        return {"file": None}
    fields = io.read_json(path, "dataset manifest", max_bytes=1 << 20, error=DataError)
    if not isinstance(fields, dict):
        raise DataError(f"{path}: a dataset manifest is a JSON object, got {type(fields).__name__}")
    return {**fields, "file": str(path)}


def write_manifest(data: str, **fields: str | None) -> Path:
    """Set fields (licence, source, consent) in DATA/genforge-dataset.json, keeping the others."""
    if data in BUILT_IN_MANIFESTS:
        raise ConfigError(f"{data} is a named dataset; its licence and source are built in")
    folder = Path(data).expanduser()
    if not folder.is_dir():
        raise DataError(f"{data} is not a folder: the manifest lives in the data folder")
    unknown = set(fields) - set(MANIFEST_FIELDS)
    if unknown:
        raise ConfigError(f"unknown manifest field {sorted(unknown)[0]!r} (known: "
                          f"{', '.join(MANIFEST_FIELDS)})")
    current = read_manifest(data)
    current.pop("file")
    current.update({k: v for k, v in fields.items() if v is not None})
    return io.write_json(folder / MANIFEST_NAME, current)


