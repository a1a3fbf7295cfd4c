"""Writing what the runtime made, as genforge generate writes it: one file per item in the kind's
format with its generation record inside where the format allows, grid.png, generation.json and
an append-only generations.jsonl. Files are written to a temp name and renamed."""
from __future__ import annotations

import json
import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from . import decode

NOT_SIGNED = {"signed": False, "reason": "the ONNX runtime does not sign (genforge sign does)"}
NOT_MARKED = {"applied": False, "reason": "the ONNX runtime adds no watermark; provenance "
              "rests on the generation log"}


def write_bytes(path: Path, data: bytes) -> Path:
    """Write atomically: a temp file beside it, flushed, then renamed into place."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _png(picture: Image.Image, meta: dict | None) -> bytes:
    from io import BytesIO
    info = PngInfo()
    if meta is not None:
        info.add_text("Software", "genforge")
        info.add_text("genforge", json.dumps(meta, sort_keys=True))
    buffer = BytesIO()
    picture.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def picture(item: np.ndarray, d: dict) -> Image.Image:
    """One item as a picture (what its PNG and the grid show)."""
    if d["kind"] == "image":
        return decode.image_picture(item)
    if d["kind"] == "level":
        return decode.level_picture(item, d)
    return decode.music_picture(item, d)


def main_file(stem: str, d: dict) -> str:
    """The name of an item's own file."""
    ext = {"image": "png", "music": "mid"}.get(d["kind"]) or d.get("format", "txt")
    return f"{stem}.{ext}"


def write_item(item: np.ndarray, folder: Path, stem: str, d: dict, meta: dict) -> Path:
    """The item's own file (PNG, XSB/TXT level, MIDI) plus a PNG render for levels and music;
    returns the main file."""
    if d["kind"] == "image":
        return write_bytes(folder / f"{stem}.png", _png(picture(item, d), meta))
    if d["kind"] == "level":
        text, line = decode.level_text(item, d), json.dumps(meta, sort_keys=True)
        main = (folder / f"{stem}.xsb", f"{text}Title: {stem}\nGenforge: {line}\n")
        if d["format"] != "xsb":
            main = (folder / f"{stem}.txt", text)
        write_bytes(folder / f"{stem}.png", _png(picture(item, d), meta))
        return write_bytes(main[0], main[1].encode("utf-8"))
    write_bytes(folder / f"{stem}.png", _png(picture(item, d), meta))
    return write_bytes(folder / f"{stem}.mid", decode.midi_bytes(item, d, meta))


def grid(pictures: list[Image.Image]) -> Image.Image:
    """The pictures in a square-ish grid, 2 px of black between."""
    w, h = max(p.width for p in pictures), max(p.height for p in pictures)
    pad, columns = 2, math.ceil(math.sqrt(len(pictures)))
    rows = math.ceil(len(pictures) / columns)
    sheet = Image.new(pictures[0].mode, (columns * (w + pad) + pad, rows * (h + pad) + pad), 0)
    for k, p in enumerate(pictures):
        row, col = divmod(k, columns)
        sheet.paste(p, (pad + col * (w + pad), pad + row * (h + pad)))
    return sheet


def write_outputs(items: np.ndarray, out: Path, seeds: list[int], classes: list[str | None],
                  source: dict, options: dict, d: dict) -> list[dict]:
    """Files, grid.png, generation.json and generations.jsonl; returns the records."""
    out.mkdir(parents=True, exist_ok=True)
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    records = []
    for item, seed, label in zip(items, seeds, classes):
        stem = f"{seed:06d}"
        record = {**source, "file": main_file(stem, d), "seed": seed, "class": label, **options,
                  "watermark": NOT_MARKED, "c2pa": NOT_SIGNED, "created": created}
        write_item(item, out, stem, d, record)
        records.append(record)
    sheet = grid([picture(item, d) for item in items])
    write_bytes(out / "grid.png", _png(sheet, None))
    summary = {**source, **options, "created": created, "watermark": NOT_MARKED,
               "c2pa": NOT_SIGNED, "signed_packs": [], "rejected_copies": [],
               "items": [{k: r[k] for k in ("file", "seed", "class")} for r in records]}
    write_bytes(out / "generation.json", (json.dumps(summary, indent=2) + "\n").encode())
    with open(out / "generations.jsonl", "a", encoding="utf-8") as log:
        for r in records:
            log.write(json.dumps(r, sort_keys=True) + "\n")
    return records
