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

import numpy as np
import torch

from . import keys, signing, watermark
from .keys import LoadedSigner

OPTED_OUT = "opted out (--no-watermark)"


def payload_for(model_sha256: str) -> int:
    """The 32-bit watermark payload naming a model: the first 8 hex digits of its weights sha256."""
    return int(model_sha256[:watermark.PAYLOAD_BITS // 4], 16)


def payload_hex(payload: int) -> str:
    return f"{payload:0{watermark.PAYLOAD_BITS // 4}x}"


def mark_images(items: torch.Tensor, model_sha256: str | None, *,
                enabled: bool = True) -> tuple[torch.Tensor, dict]:
    """Watermark uint8 images [N, C, H, W]: the marked items and the record of what was done."""
    if not enabled:
        return items, {"applied": False, "reason": OPTED_OUT}
    if not model_sha256:
        return items, {"applied": False, "reason": "the model has no weights hash to carry"}
    h, w = items.shape[-2:]
    if not watermark.fits(h, w):
        low_h, low_w = watermark.min_size()
        return items, {"applied": False,
                       "reason": f"{h}x{w} images are below the watermark's minimum of "
                                 f"{low_h}x{low_w}; provenance rests on the C2PA manifest and "
                                 "the generation log"}
    payload = payload_for(model_sha256)
    marked = torch.stack([_mark_one(item, payload) for item in items]) if len(items) else items
    return marked, {"applied": True, "method": watermark.METHOD, "version": watermark.VERSION,
                    "payload": payload_hex(payload), "key": "default"}


def _mark_one(item: torch.Tensor, payload: int) -> torch.Tensor:
    """One [C, H, W] uint8 image through watermark.embed, which takes HxW or HxWxC arrays."""
    array = item.numpy()
    array = array[0] if array.shape[0] == 1 else np.ascontiguousarray(array.transpose(1, 2, 0))
    marked = watermark.embed(array, payload)
    marked = marked[None] if marked.ndim == 2 else marked.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(marked))


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
                 data_fingerprint: str | None, extra: list[Path] = ()) -> list[Path]:
    """Sign every file written for the items: formats C2PA covers in place, the others (MIDI,
    level text) in one signed zip pack, pack-<first stem>.zip. extra (a grid, a GIF) is signed
    with the first item's claims. Returns the pack, or nothing when none was needed."""
    covered = set(signing.supported_formats())
    unsigned: list[Path] = []
    for stem, record in zip(stems, records):
        claims = signing.from_record(record, data_fingerprint)
        for path in companions(folder, stem):
            if path.suffix.lower().lstrip(".") in covered:
                signing.sign_file(path, claims, signer)
            else:
                unsigned.append(path)
    # a file made of several items (a grid, a pack) claims all their seeds
    batch = signing.from_record({**records[0], "seed": None, "file": None,
                                 "seeds": [r["seed"] for r in records]}, data_fingerprint)
    for path in extra:
        signing.sign_file(path, batch, signer)
    if not unsigned:
        return []
    return [signing.sign_pack(unsigned, folder / f"pack-{stems[0]}.zip", batch, signer)]
