"""Writing what generation made: the files (the kind's own formats), a preview grid, and the
generation record (in each file where the format allows, generation.json, generations.jsonl),
signed with C2PA unless the caller opts out. Everything needed to regenerate and trace a file."""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import torch

from .. import io
from ..errors import GenforgeError
from ..provenance import stamp
from ..provenance.ingredients import Ingredient
from .display import DisplayCopies
from ..version import __version__


class OutputError(GenforgeError):
    """Generated files could not be written where asked."""

ITEM_KEYS = ("file", "seed", "class", "playable", "status", "solution_moves", "repaired", "noisy",
             "display_copy")


# Room asked for per item beside its own size: metadata, a PNG render, a signed pack's share.
BYTES_PER_ITEM = 96 << 10


def check_output(out, items: int, item_shape: tuple[int, ...]) -> None:
    """Before any sampling: the output folder exists or can be made, can be written, and has
    room for about what will be written; else one line saying which and what to do."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".genforge-probe-{os.getpid()}"
        probe.write_bytes(b"genforge")
        probe.unlink()
    except OSError as err:
        raise OutputError(f"cannot write to the output folder {out} ({err.strerror or err}): "
                          "choose another with --out") from None
    size = 1
    for side in item_shape:
        size *= int(side)
    need = items * (size + BYTES_PER_ITEM) + (4 << 20)
    free = shutil.disk_usage(out).free
    if free < need:
        raise OutputError(f"{out} has {free >> 20} MiB free and {items} items need about "
                          f"{need >> 20} MiB: free some space or choose another --out")


def output_signer(sign: bool, signer, out):
    """The signer for files written to out (None when nothing is written or signing is off),
    resolved before sampling so that a certificate problem costs no time."""
    return (signer or stamp.default_signer()) if sign and out is not None else None


def write_outputs(model, items: torch.Tensor, out: Path, seeds: list[int],
                  labels: torch.Tensor | None, params: dict, *, stems: list[str] | None = None,
                  rejected: list[dict] | None = None, mark: dict | None = None, signer=None,
                  extra: list[Path] = (), audio: bool = False,
                  item_info: list[dict] | None = None, summary: dict | None = None,
                  display: DisplayCopies | None = None,
                  ingredients: list[Ingredient] = ()) -> None:
    """Files, grid and the generation record (model: the GenerativeModel that made the items):
    in each file's metadata, generation.json and an append-only generations.jsonl. display:
    marked display copies to write beside the items; ingredients: the user's files the items
    were made from (recorded by name and hash, named in every manifest).

    What leaves the machine (the files, generation.json) names the model by name and weights
    hash; only the local log, generations.jsonl, also keeps the model folder's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    modality, spec = model.modality, model.spec
    stems = stems or [f"{s:06d}" for s in seeds]
    source = {"model": model.name, "model_sha256": model.manifest.get("weights_sha256"),
              "family": model.config.family, "genforge_version": __version__}
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    inputs = {"ingredients": [i.record() for i in ingredients]} if ingredients else {}
    records = [{**source, "file": f"{stem}.png", "seed": s,
                "class": None if labels is None or labels[i] < 0 else spec.class_names[labels[i]],
                **params, **inputs, **(item_info[i] if item_info else {}), "watermark": mark,
                **({"display_copy": display.name(stem)} if display is not None else {}),
                "c2pa": stamp.signing_record(signer), "created": created}
               for i, (stem, s) in enumerate(zip(stems, seeds))]
    try:
        paths = modality.write(items, out, stems, metadata=records)
        if audio:  # before signing, so the WAVs are signed too
            params["audio"] = modality.render_audio(items, out, stems)
        for record, path in zip(records, paths):
            record["file"] = path.name
        grid = modality.preview(items)
        io.write_with(out / "grid.png", lambda tmp: grid.save(tmp, format="PNG"))
        packs = [] if signer is None else stamp.sign_outputs(
            out, stems, records, signer, model.manifest["dataset"]["fingerprint"],
            extra=[out / "grid.png", *extra], ingredients=list(ingredients))
        copies = [] if display is None else display.write(model, out, stems, records, signer)
        io.write_json(out / "generation.json", {**source, **params, **inputs, "created": created,
                                                **(summary or {}),
                                                "watermark": mark, "c2pa": records[0]["c2pa"],
                                                **({"display": display.summary()}
                                                   if display is not None else {}),
                                                "signed_packs": [p.name for p in packs],
                                                "rejected_copies": rejected or [],
                                                "items": [{k: r[k] for k in ITEM_KEYS if k in r}
                                                          for r in records]})
        local = {"model_path": str(model.folder.resolve())}
        io.append_jsonl(out / "generations.jsonl", [{**r, **local} for r in records + copies])
    except OSError as err:
        _record_what_exists(out, stems, records, err)


def write_gif(model, items: torch.Tensor, path: Path, frame_ms: int) -> None:
    """An animated GIF of the items, scaled up (nearest) to at least 256 px on the short side."""
    from PIL import Image
    pictures = [model.modality.preview(items[i:i + 1]) for i in range(len(items))]
    scale = max(1, -(-256 // min(pictures[0].size)))
    pictures = [p.convert("RGB").resize((p.width * scale, p.height * scale), Image.NEAREST)
                for p in pictures]
    io.write_with(path, lambda tmp: pictures[0].save(
        tmp, format="GIF", save_all=True, append_images=pictures[1:], duration=frame_ms, loop=0))


def _record_what_exists(out: Path, stems: list[str], records: list[dict], err: OSError) -> None:
    """After a write failed mid-way (a full disk): the records of the items whose files exist go
    to generations.jsonl where they fit, and one line says what is there and what is missing."""
    written = [r for stem, r in zip(stems, records) if any(out.glob(f"{stem}.*"))]
    try:
        io.append_jsonl(out / "generations.jsonl", written)
        logged = "their records are in generations.jsonl"
    except OSError:
        logged = "their records could not be written either"
    missing = [name for name in ("grid.png", "generation.json") if not (out / name).exists()]
    if len(written) < len(records):
        missing.append(f"{len(records) - len(written)} items")
    raise OutputError(f"writing to {out} failed ({err.strerror or err}) after {len(written)} of "
                      f"{len(records)} items ({logged}); missing: "
                      f"{', '.join(missing) or 'the signatures'}; free some space and generate "
                      "again") from None
