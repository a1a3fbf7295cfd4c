"""Provenance checks and keys: create signing keys, resolve a signer, verify C2PA manifests and
look for genforge's watermark in image files."""
from __future__ import annotations

from pathlib import Path

from .. import io
from ..errors import ConfigError, DataError
from . import stamp, watermark as watermarking


def init_keys(folder: str | Path | None = None, *, name: str | None = None, days: int | None = None,
              force: bool = False) -> dict:
    """Create a local development PKI for C2PA signing; returns its description (keys.json)."""
    from . import keys
    options = {k: v for k, v in (("common_name", name), ("days", days)) if v is not None}
    paths = keys.init_keys(folder, force=force, **options)
    return {"folder": str(paths.folder), **keys.describe_keys(paths.folder)}


def signer(keys: str | Path | None = None, *, cert: str | Path | None = None,
           key: str | Path | None = None, tsa_url: str | None = None):
    """A checked C2PA signer: cert and key, else the keys folder's (created on first use)."""
    return stamp.default_signer(keys, cert=cert, key=key, tsa_url=tsa_url)


def describe_keys(folder: str | Path | None = None) -> dict:
    """What a keys folder holds (its keys.json), or a one-line error when it holds none."""
    from . import keys
    info = keys.describe_keys(folder)
    if not info:
        raise ConfigError(f"no signing keys in {folder or keys.default_keys_dir()}: run "
                          "'genforge keys init'")
    return {"folder": str(folder or keys.default_keys_dir()), **info}


def verify(paths: list[str | Path], *, trust: str | Path | None = None) -> list:
    """Validate each file's C2PA manifest: provenance.signing.VerifyReport per file."""
    from . import signing
    return [signing.verify_file(path, trust) for path in paths]


def detect(paths: list[str | Path], *, model: str | Path | None = None) -> list[dict]:
    """Look for genforge's watermark in image files: one record per file (found, payload,
    confidence, and whether the payload names `model` when one is given)."""
    from PIL import Image, UnidentifiedImageError
    import numpy as np
    expected = None
    if model is not None:
        sha = io.read_json(Path(model) / "manifest.json", "model manifest").get("weights_sha256")
        expected = stamp.payload_hex(stamp.payload_for(sha)) if sha else None
    results = []
    for path in map(Path, paths):
        try:
            with Image.open(path) as img:
                img = img.convert("RGBA" if "A" in img.getbands() else
                                  "L" if img.mode in ("1", "L", "I", "I;16", "F") else "RGB")
                array = np.asarray(img)
        except FileNotFoundError:
            raise DataError(f"{path}: no such file") from None
        except (UnidentifiedImageError, OSError) as e:
            raise DataError(f"{path}: not an image Pillow can read ({e})") from None
        found = watermarking.detect(array)
        record = {"file": str(path), "size": list(array.shape[:2]), "found": found.found,
                  "payload": None if found.payload is None else stamp.payload_hex(found.payload),
                  "confidence": found.confidence, "p_value": found.p_value,
                  "bit_errors_corrected": found.bit_errors_corrected,
                  "method": found.method, "too_small": not watermarking.fits(*array.shape[:2])}
        if expected is not None:
            record["matches_model"] = record["payload"] == expected
        results.append(record)
    return results
