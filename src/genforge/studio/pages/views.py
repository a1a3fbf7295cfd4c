"""What each page shows, gathered from the job store and the studio home: plain dicts for the
templates (pages.routes renders them). Listings are paginated so a page stays quick with
thousands of jobs or generated files."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

from ... import api
from ..jobs import MODEL_KINDS
from ..routes.common import job_view
from ..routes.data import dataset_view
from ..state import Studio

PAGE_JOBS = 25        # runs per page on the home page
PAGE_ITEMS = 48       # generated items per page
IMAGE_EXT = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp")
SAMPLE_FILES = 24     # a dataset's files shown as thumbnails


def shown(studio: Studio, text: str | None) -> str | None:
    """Words from the library with the studio home's own path left out (a page shows no server
    paths)."""
    if text is None:
        return None
    return text.replace(str(studio.home.root) + "/", "").replace(str(studio.home.root), "HOME")


def pages(total: int, page: int, size: int) -> dict:
    count = max(1, math.ceil(total / size))
    page = min(max(1, page), count)
    return {"page": page, "count": count, "total": total, "offset": (page - 1) * size,
            "size": size}


def home(studio: Studio, page: int) -> dict:
    runs_total = studio.store.job_count(kind="train")
    paging = pages(runs_total, page, PAGE_JOBS)
    runs = [job_view(j) for j in studio.store.jobs(kind="train", limit=PAGE_JOBS,
                                                   offset=paging["offset"])]
    models = [job_view(j) for j in studio.store.jobs(kind=MODEL_KINDS, state="done", limit=12)]
    recent = [job_view(j) for j in studio.store.jobs(limit=10) if j["kind"] != "train"]
    datasets = [dataset_view(d, studio) for d in studio.store.datasets()]
    return {"runs": runs, "paging": paging, "models": models, "recent": recent,
            "datasets": datasets, "counts": studio.store.counts(),
            "names": {d["id"]: d["name"] for d in datasets}}


def audit_record(studio: Studio, audit: dict | None) -> dict | None:
    """A finished audit job's record (audit.json), its paths shown relative to the home."""
    if not audit or audit["state"] != "done":
        return None
    path = studio.home.job_folder(audit["id"]) / "audit.json"
    if not path.is_file():
        return None
    return json.loads(shown(studio, path.read_text(encoding="utf-8")))


def dataset(studio: Studio, row: dict) -> dict:
    view = dataset_view(row, studio)
    audit = studio.store.latest("audit", row["id"])
    record = audit_record(studio, audit)
    samples = []
    if not row["named"] and row["kind"] == "image":
        folder = Path(row["source"])
        for base, dirs, names in os.walk(folder):
            dirs.sort()
            samples += [Path(base, n).relative_to(folder).as_posix() for n in sorted(names)
                        if n.lower().endswith(IMAGE_EXT)]
            if len(samples) >= SAMPLE_FILES:
                break
    preview = None
    if audit and (studio.home.job_folder(audit["id"]) / "sample.png").is_file():
        preview = f"/api/jobs/{audit['id']}/files/sample.png"
    manifest = api.dataset_manifest(row["source"])
    return {"dataset": view, "row": row, "audit": audit and job_view(audit), "record": record,
            "samples": samples[:SAMPLE_FILES], "preview": preview,
            "manifest": {k: manifest.get(k) for k in api.DATASET_MANIFEST_FIELDS},
            "warnings": [shown(studio, w) for w in (record or {}).get("warnings", [])],
            "text": shown(studio, (audit and (audit["result"] or {}).get("text")))}


def _generation_items(out: Path) -> tuple[dict, list[dict]]:
    log_path = out / "generation.json"
    log = json.loads(log_path.read_text(encoding="utf-8")) if log_path.is_file() else {}
    return log, log.get("items") or []


def outputs(studio: Studio, job: dict, page: int) -> dict:
    """A generate/harmonize/complete job's items, one page of them, with each one's files."""
    folder = studio.home.job_folder(job["id"])
    out = folder / "out"
    names = set(os.listdir(out)) if out.is_dir() else set()
    log, items = _generation_items(out)
    paging = pages(len(items), page, PAGE_ITEMS)
    base = f"/api/jobs/{job['id']}/files/out"
    shown_items = []
    for item in items[paging["offset"]:paging["offset"] + PAGE_ITEMS]:
        stem = Path(item["file"]).stem
        files = {ext: f"{base}/{stem}.{ext}" for ext in ("png", "wav", "mid", "musicxml", "xsb",
                                                          "txt", "json") if f"{stem}.{ext}" in names}
        display = item.get("display_copy")  # a marked, signed copy big enough to share
        shown_items.append({**item, "stem": stem, "url": f"{base}/{item['file']}", "files": files,
                            "display": f"{base}/{display}" if display in names else None})
    gif = f"{base}/walk.gif" if "walk.gif" in names else None
    packs = [f"{base}/{p}" for p in log.get("signed_packs", []) if p in names]
    return {"job": job_view(job), "items": shown_items, "paging": paging, "log": log, "gif": gif,
            "packs": packs, "grid": f"{base}/grid.png" if "grid.png" in names else None,
            "download": f"/api/jobs/{job['id']}/download?path=out",
            "kind": _model_kind(studio, job), "report": _report(folder, job["id"])}


def _report(folder: Path, job_id: int) -> str | None:
    for base, _, names in os.walk(folder / "out"):
        if "report.html" in names:
            return f"/api/jobs/{job_id}/files/" + Path(base, "report.html").relative_to(folder).as_posix()
    return None


def _model_kind(studio: Studio, job: dict) -> str | None:
    model = job["request"].get("model")
    if model is None:
        return None
    config = studio.home.job_folder(model) / "run" / "model" / "config.json"
    try:
        return json.loads(config.read_text(encoding="utf-8"))["modality"]
    except (OSError, KeyError, ValueError):
        return None


def model_jobs(studio: Studio, model_id: int, limit: int = 200) -> list[dict]:
    """The newest jobs that used a model (generate, evaluate, harmonize, complete)."""
    return [job_view(j) for j in studio.store.jobs_of_model(model_id, limit=limit)]


def model_card(studio: Studio, model_id: int) -> str:
    path = studio.home.job_folder(model_id) / "run" / "model" / "README.md"
    return path.read_text(encoding="utf-8") if path.is_file() else ""


def losses(studio: Studio, job_id: int, limit: int = 400) -> list[tuple[int, float]]:
    """(step, loss) from a run's stats.jsonl, thinned to at most `limit` points."""
    path = studio.home.job_folder(job_id) / "run" / "stats.jsonl"
    points = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
                points.append((int(row["step"]), float(row["loss"])))
            except (ValueError, KeyError, TypeError):
                continue
    stride = max(1, len(points) // limit)
    return points[::stride]


def latest_preview(studio: Studio, job_id: int) -> str | None:
    folder = studio.home.job_folder(job_id) / "run" / "samples"
    if not folder.is_dir():
        return None
    pngs = sorted(n for n in os.listdir(folder) if n.endswith(".png"))
    return f"/api/jobs/{job_id}/files/run/samples/{pngs[-1]}" if pngs else None


def flat(value, prefix: str = "") -> dict[str, object]:
    """A nested configuration as {"train.lr": 0.001, ...}."""
    if isinstance(value, dict):
        found = {}
        for key, inner in value.items():
            found.update(flat(inner, f"{prefix}.{key}" if prefix else str(key)))
        return found
    return {prefix: value}


def compare(studio: Studio, ids: list[int]) -> dict:
    runs, configs = [], []
    for job_id in ids:
        job = studio.store.job(job_id)
        if job is None or job["kind"] != "train":
            continue
        config = flat((job["call"] or {}).get("config") or {})
        config = {k: v for k, v in config.items() if not k.startswith("data.source")}
        configs.append(config)
        runs.append({"job": job_view(job), "losses": losses(studio, job_id),
                     "preview": latest_preview(studio, job_id)})
    keys = sorted({k for c in configs for k in c})
    rows = [{"key": k, "values": [json.dumps(c.get(k)) for c in configs],
             "differs": len({json.dumps(c.get(k)) for c in configs}) > 1} for k in keys]
    rows.sort(key=lambda r: not r["differs"])  # differences first
    return {"runs": runs, "rows": rows, "chart": chart([r["losses"] for r in runs])}


def chart(series: list[list[tuple[int, float]]], width: int = 600, height: int = 220) -> dict | None:
    """SVG polyline points for curves drawn on one scale (steps across, loss up)."""
    points = [p for line in series for p in line]
    if not points:
        return None
    last = max(s for s, _ in points) or 1
    lo, hi = min(v for _, v in points), max(v for _, v in points)
    span = (hi - lo) or 1.0
    lines = [" ".join(f"{10 + (width - 20) * s / last:.1f},{height - 10 - (height - 20) * (v - lo) / span:.1f}"
                      for s, v in line) for line in series]
    return {"lines": lines, "lo": lo, "hi": hi, "last": last}
