"""Ingredients: the files an output was made from, as its C2PA manifest names them.

Two relationships (C2PA 2.x, ingredient v3): `parentOf`, the file this one is a changed copy of
(a display copy's native-size image), and `inputTo`, a user's file generation started from (the
melody harmonize sets, the partial level complete fills in). Each ingredient is named by its
file name only (never its folder), its format and, in its description and in genforge's own
assertion, the sha256 of its bytes as they were read.

Where the ingredient has a manifest of its own, the SDK copies it into the new file's manifest
store, so the chain survives: a signed native image inside its display copy's store. Music and
level files cannot hold a manifest; when one sits in a signed genforge pack beside it (the
pack-*.zip generation wrote, holding the very same bytes), that pack is the ingredient's data, so
the chain survives for them too.
"""
from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError

PARENT, INPUT = "parentOf", "inputTo"
# Formats C2PA has no reader for, by extension: the MIME type the ingredient records.
MIME = {".mid": "audio/midi", ".midi": "audio/midi", ".musicxml": "application/vnd.recordare."
        "musicxml+xml", ".xml": "application/xml", ".mxl": "application/vnd.recordare.musicxml",
        ".krn": "text/x-humdrum", ".txt": "text/plain", ".xsb": "text/plain",
        ".sok": "text/plain", ".lvl": "text/plain"}
PACK_GLOB = "pack-*.zip"


@dataclass(frozen=True)
class Ingredient:
    """A file an output was made from: where it is (never written out), how it was used, what
    it was in words, and the sha256 of its bytes when read."""

    path: Path
    relationship: str   # PARENT or INPUT
    role: str           # "native-size image", "melody", "partial level"
    sha256: str

    @property
    def name(self) -> str:
        return self.path.name

    def record(self) -> dict:
        """What generation records and genforge's assertion carry: the name, never the path."""
        return {"file": self.name, "sha256": self.sha256, "role": self.role,
                "relationship": self.relationship}


def of_file(path: str | Path, relationship: str, role: str) -> Ingredient:
    """An ingredient for a file, its bytes hashed now (one-line DataError when unreadable)."""
    path = Path(path)
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as err:
        raise DataError(f"{path}: cannot read it ({err.strerror or err})") from None
    return Ingredient(path, relationship, role, digest)


def label(index: int) -> str:
    """The id an action's parameters use to point at the index-th ingredient."""
    return f"ingredient-{index}"


def add(builder, ingredients: list[Ingredient], readable: set[str]) -> None:
    """Add each ingredient to a c2pa.Builder (readable: the extensions the SDK can read a
    manifest from), with its own manifest where it or a pack beside it has one."""
    for i, ingredient in enumerate(ingredients):
        ext = ingredient.path.suffix.lower()
        source, fmt, title = ingredient.path, ext.lstrip("."), ingredient.name
        if fmt not in readable:
            pack = signed_pack_holding(ingredient)
            if pack is not None:
                source, fmt, title = pack, "zip", f"{ingredient.name} (in {pack.name})"
            else:
                fmt = MIME.get(ext, "application/octet-stream")
        definition = {"title": title, "format": fmt, "relationship": ingredient.relationship,
                      "label": label(i),
                      "description": f"{ingredient.role}: {ingredient.name}, sha256 "
                                     f"{ingredient.sha256}"}
        with open(source, "rb") as stream:
            builder.add_ingredient(definition, fmt, stream)


def signed_pack_holding(ingredient: Ingredient) -> Path | None:
    """A genforge pack beside the file that holds a member of the same name and bytes."""
    folder = ingredient.path.parent
    try:
        packs = sorted(folder.glob(PACK_GLOB))
    except OSError:
        return None
    for pack in packs:
        try:
            with zipfile.ZipFile(pack) as z:
                info = z.getinfo(ingredient.name)
                if info.file_size > 64 << 20:
                    continue
                if hashlib.sha256(z.read(info)).hexdigest() == ingredient.sha256:
                    return pack
        except (KeyError, OSError, zipfile.BadZipFile):
            continue
    return None


def actions(ingredients: list[Ingredient], created: dict, edits: tuple[str, ...]) -> list[dict]:
    """The c2pa.actions.v2 list: a changed copy of a parent is `opened` from it (still
    trainedAlgorithmicMedia) then edited; anything else is `created`, pointing at its inputs."""
    parents = [label(i) for i, g in enumerate(ingredients) if g.relationship == PARENT]
    inputs = [label(i) for i, g in enumerate(ingredients) if g.relationship == INPUT]
    if parents:
        opened = {"action": "c2pa.opened", "digitalSourceType": created["digitalSourceType"],
                  "softwareAgent": created["softwareAgent"],
                  "parameters": {"ingredientIds": parents + inputs}}
        return [opened, *({"action": edit, "softwareAgent": created["softwareAgent"]}
                          for edit in edits)]
    if inputs:
        created = {**created, "parameters": {"ingredientIds": inputs}}
    return [created]


def listed(manifest: dict, store: dict) -> list[dict]:
    """The ingredients of a manifest as `genforge verify` lists them: name, format,
    relationship, description, and the claims of the ingredient's own manifest, if any."""
    out = []
    for ingredient in manifest.get("ingredients") or []:
        own = (store.get("manifests") or {}).get(ingredient.get("active_manifest") or "")
        info = (own or {}).get("signature_info") or {}
        out.append({"title": ingredient.get("title"), "format": ingredient.get("format"),
                    "relationship": ingredient.get("relationship"),
                    "description": ingredient.get("description"),
                    "manifest": None if own is None else {
                        "title": own.get("title"), "signer": info.get("common_name"),
                        "issuer": info.get("issuer")}})
    return out
