"""Dataset audit: what a model is about to learn from, before it learns it.

Sizes and modes of the originals, exact duplicates (decoded pixels; file bytes for folders), near
duplicates (perceptual hash, confirmed by correlation), neighbours in a domain encoder's feature
space, unreadable files, class balance, the dataset's licence/source/consent manifest, and C2PA
training-and-mining assertions. Pure functions over a Dataset plus the files behind it (hashes.py: duplicates; files.py: C2PA,
originals, manifest; features.py: encoder neighbours); data.audit and training call them, the
CLI formats the result.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np

from .. import io
from ..modalities.base import Dataset
from .features import FEATURE_RATIO, feature_neighbours
from .files import (MANIFEST_FIELDS, MANIFEST_NAME, STORED_SHAPES, read_manifest, scan_files,
                    training_permission, write_manifest)
from .hashes import (NEAR_CORRELATION, NEAR_HAMMING, components, copies_of, duplicate_drops,
                     exact_groups, hamming_pairs, near_pairs, perceptual_hashes, pixel_hashes,
                     popcount)

FORMAT_VERSION = 1
# Class balance: warn when one class holds more than half the items, or is more than 5 times the
# smallest (a conditional model then sees too few of the small class to learn it).
DOMINANT_SHARE = 0.5
IMBALANCE_RATIO = 5.0
# Training warns above this share of items that --dedup would drop.
DUPLICATE_WARN_SHARE = 0.01
LISTED_GROUPS = 1000  # groups listed in the report; the counts cover all of them


def cache_dir() -> Path:
    """Where audit hashes are cached ($GENFORGE_CACHE/audit), keyed by fingerprint and file stats."""
    return io.cache_dir("audit")


def cache_key(dataset: Dataset) -> str:
    """What the heavy part of an audit depends on: the items, and each file's path, size and time."""
    digest = hashlib.sha256(f"genforge-audit-{FORMAT_VERSION}:{dataset.fingerprint}".encode())
    for path in dataset.files or []:
        st = os.stat(path)
        digest.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    digest.update(f"{NEAR_HAMMING}:{NEAR_CORRELATION}".encode())
    return digest.hexdigest()


def heavy_part(dataset: Dataset) -> dict:
    """Hashes, duplicate groups, originals and C2PA: the part of the audit worth caching. The
    files are the ones the loader read (Dataset.files): the folder is not walked again."""
    started = time.perf_counter()
    items = dataset.items.numpy()
    if dataset.files is None:
        scanned = {"originals": {"from": "stored shape", **STORED_SHAPES.get(dataset.source, {})},
                   "file_duplicates": [], "c2pa": None}
    else:
        root = Path(dataset.source).expanduser()
        scanned = scan_files(root, dataset.files,
                             {str(root / n): i for i, n in enumerate(dataset.names or [])})
    read = time.perf_counter()
    exact = exact_groups(pixel_hashes(items))
    firsts = sorted({g[0] for g in exact} | (set(range(len(items))) - {i for g in exact for i in g}))
    hashed = time.perf_counter()
    near = near_pairs(items, firsts) if items.ndim == 4 else np.zeros((0, 2), np.int64)
    done = time.perf_counter()
    return {**scanned, "exact": exact, "near": near.tolist(),
            "seconds": {"files": round(read - started, 3), "exact": round(hashed - read, 3),
                        "near": round(done - hashed, 3)}}


def class_balance(dataset: Dataset) -> dict | None:
    """Items per class, the largest share and the largest/smallest ratio; None without labels."""
    if dataset.labels is None:
        return None
    counts = np.bincount(dataset.labels.numpy(), minlength=len(dataset.class_names))
    largest, smallest = int(counts.max()), int(counts.min())
    share = largest / max(int(counts.sum()), 1)
    ratio = largest / smallest if smallest else float("inf")
    big = dataset.class_names[int(counts.argmax())]
    warning = None
    if len(counts) > 1 and (share > DOMINANT_SHARE or ratio > IMBALANCE_RATIO):
        warning = (f"classes are unbalanced: {big!r} holds {largest} of {int(counts.sum())} items "
                   f"({share:.0%}), {ratio:.1f}x the smallest class ({smallest}); a conditional "
                   "model learns the small classes poorly: add items or merge classes")
    return {"counts": dict(zip(dataset.class_names, map(int, counts))), "largest_share": round(share, 4),
            "ratio": round(ratio, 2) if smallest else None, "warning": warning}


def _named(groups: list[list[int]], names: list[str] | None) -> list[list]:
    return [[names[i] if names else i for i in g] for g in groups[:LISTED_GROUPS]]


def report(dataset: Dataset, heavy: dict, *, manifest: dict, features: dict,
           max_bad_fraction: float = 1.0, dedup: bool = False) -> dict:
    """The audit record (what RUN/audit.json and 'genforge audit --json' hold)."""
    n, source, names = len(dataset), dataset.source, dataset.names
    exact, near = heavy["exact"], heavy["near"]
    near_groups = components(near)
    c2pa = heavy["c2pa"]
    forbidden = {r["index"] for r in (c2pa or {}).get("not_allowed", []) if r["index"] is not None}
    excluded = sorted(copies_of(forbidden, exact, near))
    drops = duplicate_drops(exact, near)
    balance = class_balance(dataset)
    unknown = [f for f in MANIFEST_FIELDS if not manifest.get(f)]
    warnings = []
    if drops and len(drops) / n > DUPLICATE_WARN_SHARE and not dedup:
        warnings.append(f"{len(drops)} of {n} items ({len(drops) / n:.1%}) are exact or near "
                        "duplicates: they drive memorisation; --dedup keeps the first of each "
                        "group (audit.json lists them)")
    if balance and balance["warning"]:
        warnings.append(balance["warning"])
    if unknown:
        warnings.append(f"{', '.join(unknown)} of {source} unknown: record them with 'genforge "
                        f"audit {source} --licence ... --source ... --consent ...'")
    if c2pa and c2pa["not_allowed"]:
        warnings.append(f"{len(c2pa['not_allowed'])} file(s) forbid AI training in their C2PA "
                        f"manifest (first: {c2pa['not_allowed'][0]['path']}); they and their copies "
                        f"({len(excluded)} items) are left out of training")
    for key, what in (("unchecked", "could not be checked"), ("unreadable", "is unreadable")):
        if c2pa and c2pa[key]:
            first = c2pa[key][0]
            warnings.append(f"{len(c2pa[key])} file(s) carry C2PA data that {what}; their training "
                            f"permissions are unknown (first: {first['path']}: {first['reason']})")
    bad = dataset.report.bad_fraction
    if bad > max_bad_fraction:
        warnings.append(f"{dataset.report.broken} of {dataset.report.found} files are "
                        f"unreadable ({bad:.0%}): training refuses above "
                        f"{max_bad_fraction:.0%} (--max-bad-fraction)")
    return {
        "format": "genforge-audit", "format_version": FORMAT_VERSION, "data": source,
        "kind": dataset.kind, "items": n, "item_shape": list(dataset.item_shape),
        "fingerprint": dataset.fingerprint, "originals": heavy["originals"],
        "unreadable": dataset.report.to_dict()["skipped"], "found": dataset.report.found,
        "loaded": dataset.report.loaded,
        "unreadable_count": dataset.report.broken,  # the rest were left out by design
        "exact_duplicates": {
            "pixels": {"groups": len(exact), "items": sum(len(g) for g in exact),
                       "listed": _named(exact, names), "indices": exact},
            "files": {"groups": len(heavy["file_duplicates"]),
                      "listed": heavy["file_duplicates"][:LISTED_GROUPS]}},
        "near_duplicates": {
            "method": f"pHash (64-bit DCT) within {NEAR_HAMMING} bits and 32x32 grey thumbnails "
                      f"correlating >= {NEAR_CORRELATION}",
            "hamming_max": NEAR_HAMMING, "correlation_min": NEAR_CORRELATION,
            "pairs": len(near), "groups": len(near_groups), "listed": _named(near_groups, names),
            "pair_indices": near},
        "duplicates": {"items": len(drops), "share": round(len(drops) / n, 6), "drop": drops,
                       "warn_above": DUPLICATE_WARN_SHARE},
        "features": features, "classes": balance,
        "manifest": {**{f: manifest.get(f) or "unknown" for f in MANIFEST_FIELDS},
                     **{k: v for k, v in manifest.items() if k not in MANIFEST_FIELDS},
                     "unknown": unknown},
        "c2pa": c2pa, "excluded": excluded, "warnings": warnings,
        "seconds": heavy["seconds"],
    }


def training_drops(record: dict, dedup: bool) -> list[int]:
    """Items left out of training: files that forbid it (and their copies), plus duplicates with dedup."""
    excluded = set(record["excluded"])
    if not dedup:
        return sorted(excluded)
    near = record["near_duplicates"]["pair_indices"]
    return sorted(excluded | set(duplicate_drops(record["exact_duplicates"]["pixels"]["indices"],
                                                 near, excluded)))


def load_cached(path: Path) -> dict | None:
    """A cached heavy part, or None when missing or unreadable (it is then recomputed)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def short_line(record: dict) -> str:
    """One line for run summaries."""
    d, near = record["duplicates"], record["near_duplicates"]
    exact = record["exact_duplicates"]["pixels"]
    dropped = "dropped (--dedup)" if record.get("training", {}).get("dedup") else "--dedup would drop"
    parts = [f"{exact['items'] - exact['groups']} exact copies, {near['pairs']} near-duplicate "
             f"pair(s): {d['items']} items ({d['share']:.1%}) {dropped}"]
    if record["excluded"]:
        parts.append(f"{len(record['excluded'])} left out (C2PA: training notAllowed)")
    parts.append(f"{record.get('unreadable_count', len(record['unreadable']))} unreadable")
    parts.append(f"licence {record['manifest']['licence']}")
    return "; ".join(parts)


def text(record: dict) -> str:
    """A short human summary of an audit record."""
    o = record["originals"]
    loaded = record.get("loaded", record["items"])
    made = (f"{record['items']} items from {loaded} of {record['found']} files"
            if loaded != record["items"] else f"{record['items']} items of {record['found']} found")
    lines = [f"{record['data']}: {made}, shape {record['item_shape']}, fingerprint "
             f"{record['fingerprint'][:12]}"]
    if "width" in o and isinstance(o["width"], dict):
        lines.append(f"  originals ({o['from']}): width {o['width']['min']}-{o['width']['max']} "
                     f"(median {o['width']['median']}), height {o['height']['min']}-"
                     f"{o['height']['max']} (median {o['height']['median']}), aspect "
                     f"{o['aspect']['min']}-{o['aspect']['max']}; modes "
                     f"{', '.join(f'{k} {v}' for k, v in o['modes'].items())}")
    elif "width" in o:
        lines.append(f"  originals ({o['from']}): {o['width']}x{o['height']} {o['mode']}")
    ex, near, d = record["exact_duplicates"], record["near_duplicates"], record["duplicates"]
    by = "pixels" if record.get("kind", "image") == "image" else "content"
    lines.append(f"  exact duplicates: {ex['pixels']['groups']} group(s) by {by}, "
                 f"{ex['files']['groups']} by file bytes")
    lines.append(f"  near duplicates: {near['pairs']} pair(s) in {near['groups']} group(s) "
                 f"({near['method']})" if by == "pixels" else
                 "  near duplicates: looked for in images only (perceptual hashes)")
    lines.append(f"  --dedup would drop {d['items']} items ({d['share']:.1%})")
    f = record["features"]
    lines.append(f"  feature neighbours: {f['pairs']} pair(s) closer than 1/3 of the median "
                 f"nearest-neighbour angle ({f['name']}: {f['extractor']})" if f.get("status") == "done"
                 else f"  feature neighbours: skipped ({f.get('reason')})")
    broken = record.get("unreadable_count", len(record["unreadable"]))
    by_design = len(record["unreadable"]) - broken
    lines.append(f"  unreadable files: {broken}" + (
        f"; {by_design} more left out by design (--json lists each with its reason)"
        if by_design else ""))
    if record["classes"]:
        c = record["classes"]
        lines.append(f"  classes: {len(c['counts'])}, largest share {c['largest_share']:.0%}, "
                     f"largest/smallest {c['ratio']}")
    m = record["manifest"]
    lines.append(f"  licence: {m['licence']}; source: {m['source']}; consent: {m['consent']}")
    if record["c2pa"] is not None:
        c = record["c2pa"]
        lines.append(f"  C2PA: {c['manifests']} file(s) with manifests, {len(c['not_allowed'])} "
                     f"forbid training, {len(c['constrained'])} constrain it; "
                     f"{len(record['excluded'])} items left out of training")
    return "\n".join(lines) + "\n"


__all__ = ["report", "training_drops", "text", "short_line", "heavy_part", "cache_dir",
           "cache_key", "load_cached", "class_balance", "FEATURE_RATIO", "feature_neighbours",
           "MANIFEST_FIELDS", "MANIFEST_NAME", "read_manifest", "training_permission",
           "write_manifest", "NEAR_CORRELATION", "NEAR_HAMMING", "duplicate_drops", "hamming_pairs",
           "near_pairs", "perceptual_hashes", "popcount"]
