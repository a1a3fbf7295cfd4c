"""What generation stamps on its output: the invisible watermark and the signed C2PA manifest.

The watermark's payload is the first 32 bits of the model's weights sha256, so `genforge detect`
names the model that made an image. Every generated image is marked unless the caller opts out;
images below the watermark's minimum size are left as they are, and the record says why (their
provenance rests on the C2PA manifest and the generation log). Every written file is then signed
(formats C2PA does not cover go into a signed zip pack), unless the caller opts out.
"""
from __future__ import annotations

import warnings
from pathlib import Path


from . import ingredients, keys, signing
from .ingredients import Ingredient
from .keys import LoadedSigner
from .marking import OPTED_OUT, mark_images, payload_for, payload_hex  # noqa: F401 (re-exported)


# ----- C2PA signing -------------------------------------------------------------------------------

NOT_SIGNED = {"signed": False, "reason": "opted out (--no-sign)"}


def default_signer(keys_dir: str | Path | None = None, *, cert: str | Path | None = None,
                   key: str | Path | None = None, tsa_url: str | None = None) -> LoadedSigner:
    """The signer generation uses: a given certificate and key, else the keys folder's, where a
    local development PKI is created on first use (so output is signed by default) with a
    warning that readers elsewhere will not trust it."""
    if cert is None and key is None:
        paths = keys.key_paths(Path(keys_dir) if keys_dir is not None else keys.default_keys_dir())
        if not (paths.chain.exists() or paths.key.exists()):
            keys.init_keys(paths.folder)
            warnings.warn(f"created a local development signing key in {paths.folder} "
                          "(genforge keys init): C2PA readers elsewhere will call its signatures "
                          "untrusted; sign with your own certificate with --cert and --key")
    return keys.load_signer(keys_dir, cert=cert, key=key, tsa_url=tsa_url)


def signing_record(signer: LoadedSigner | None) -> dict:
    """What the generation log says about the C2PA signature its files carry."""
    if signer is None:
        return dict(NOT_SIGNED)
    return {"signed": True, "signer": signer.subject, "issuer": signer.issuer, "alg": signer.alg,
            "certificate_expires": signer.not_after.strftime("%Y-%m-%d")}


def companions(folder: Path, stem: str) -> list[Path]:
    """The files generation wrote for one item: every file in folder named stem.<extension>
    (or <prefix>_stem.<extension>, as a KGoldrunner game file is)."""
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and (p.stem == stem or p.stem.endswith("_" + stem)))


def sign_outputs(folder: Path, stems: list[str], records: list[dict], signer: LoadedSigner,
                 data_fingerprint: str | None, extra: list[Path] = (),
                 ingredients: list[Ingredient] = ()) -> list[Path]:
    """Sign every file written for the items: formats C2PA covers in place, the others (MIDI,
    level text) in one signed zip pack, pack-<first stem>.zip. extra (a grid, a GIF) is signed
    with the first item's claims; ingredients (a user's input file) go into every manifest.
    Returns the pack, or nothing when none was needed."""
    covered = set(signing.supported_formats())
    unsigned: list[Path] = []
    for stem, record in zip(stems, records):
        claims = signing.from_record(record, data_fingerprint)
        for path in companions(folder, stem):
            if path.suffix.lower().lstrip(".") in covered:
                signing.sign_file(path, claims, signer, ingredients=ingredients)
            else:
                unsigned.append(path)
    # a file made of several items (a grid, a pack) claims all their seeds
    batch = signing.from_record({**records[0], "seed": None, "file": None,
                                 "seeds": [r["seed"] for r in records]}, data_fingerprint)
    for path in extra:
        signing.sign_file(path, batch, signer, ingredients=ingredients)
    if not unsigned:
        return []
    return [signing.sign_pack(unsigned, folder / f"pack-{stems[0]}.zip", batch, signer,
                              ingredients)]


def sign_display_copy(path: Path, native: Path, record: dict, signer: LoadedSigner,
                      data_fingerprint: str | None) -> Path:
    """Sign a display copy: opened from its native-size image (its parent ingredient, whose
    own manifest the store keeps), resized, and watermarked when the mark went in."""
    claims = signing.from_record(record, data_fingerprint)
    marked = bool((record.get("watermark") or {}).get("applied"))
    parent = ingredients.of_file(native, ingredients.PARENT, "native-size image")
    edits = ("c2pa.resized", "c2pa.watermarked") if marked else ("c2pa.resized",)
    return signing.sign_file(path, claims, signer, ingredients=[parent], edits=edits)
