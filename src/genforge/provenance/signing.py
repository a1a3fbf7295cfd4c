"""Signed C2PA provenance for generated files: the manifest, signing, and verification.

Every signed file carries one manifest: a `c2pa.actions.v2` assertion whose `c2pa.created` action
has digitalSourceType trainedAlgorithmicMedia (IPTC), the `org.genforge.generation` assertion
(model name and hash, training-data fingerprint, seed, sampler, generation parameters, watermark
record), and, when the invisible watermark was applied, a `c2pa.soft-binding` assertion naming it.

What the installed SDK covers (c2pa-python 0.38.1 on c2pa-rs 0.91.3, from
Builder.get_supported_mime_types()): images PNG, JPEG, GIF, WebP, TIFF, AVIF, HEIC/HEIF, JPEG XL,
DNG, SVG; audio WAV, MP3, FLAC, M4A; video MP4, MOV, AVI; PDF; ZIP and the ZIP-based office and
EPUB formats. Not MIDI and not plain text, so music and level files are signed as a zip pack
(sign_pack: the manifest goes into META-INF/content_credential.c2pa and a collection hash covers
every member; members are stored uncompressed, as the SDK cannot parse deflated zips) or as a
WAV render (sign_file). The SDK recognises a zip only when told "zip": "application/zip", which
Python's mimetypes gives, is refused and detection from the bytes fails, so formats are named
here by file extension.

Soft binding: the SDK writes and reads back a `c2pa.soft-binding` assertion ({alg, blocks:
[{scope, value}], pad}) without checking alg against the C2PA soft-binding algorithm list.
genforge's watermark is not on that list, so its alg is in genforge's namespace
(org.genforge.watermark.v1) and the value is the watermark's payload as text ("0x1234abcd"). The
CDDL wants a byte string there, which no JSON input to the 0.38 Builder produces (c2pa-rs#2689: a
list of byte values becomes a CBOR array, no closer); the genforge assertion repeats the record.

Numbers in lists: the SDK's JSON report turns a list of numbers in a custom assertion into a
base64 string, and a list of floats into "" (c2pa-rs#2570), so the generation parameters, which
hold such lists, are stored as one canonical JSON string (params_json) and decoded on reading.

Offline: no remote manifests, no OCSP, no time-stamp authority unless a tsa_url is given. Without
one the signature has no trusted time, so verifiers judge the certificate at the time they read
the file: once a development leaf expires its files verify as expired. Use a TSA (or a long-lived
certificate) for files meant to outlive the certificate.
"""
from __future__ import annotations

import io as _io
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from .. import io
from ..errors import ConfigError, DataError
from ..version import __version__
from . import ingredients as ingredients_mod
from .ingredients import Ingredient
from .keys import LoadedSigner, default_keys_dir, key_paths, offline_context

TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
GENERATION_LABEL = "org.genforge.generation"
SOFT_BINDING_LABEL = "c2pa.soft-binding"
ACTIONS_LABELS = ("c2pa.actions.v2", "c2pa.actions")
WATERMARK_ALG = "org.genforge.watermark.v{version}"
NO_MANIFEST = "no manifest"
_STATES = {"Trusted": "trusted", "Valid": "valid", "Invalid": "invalid"}
# The codes a user meets most, in words; the SDK's own explanation follows each.
_MEANINGS = {
    "assertion.dataHash.mismatch": "the content changed after it was signed",
    "assertion.boxesHash.mismatch": "the content changed after it was signed",
    "assertion.collectionHash.mismatch": "a file in the pack changed after it was signed",
    "assertion.hashedURI.mismatch": "an assertion changed after it was signed",
    "claimSignature.mismatch": "the manifest changed after it was signed",
    "signingCredential.untrusted": "the signer's certificate does not lead to a trusted root",
    "signingCredential.expired": "the signer's certificate has expired",
    "signingCredential.invalid": "the signer's certificate is unsuitable for C2PA",
}
_RECORD_KEYS = ("model", "model_name", "model_sha256", "model_hash", "data_fingerprint", "seed", "c2pa",
                "sampler", "watermark", "created", "file", "genforge_version", "ingredients")


@dataclass(frozen=True)
class Generation:
    """What a generated file claims about its making: the genforge assertion's content."""
    model_name: str
    model_hash: str
    data_fingerprint: str | None = None
    seed: int | None = None
    sampler: str | None = None
    params: dict = field(default_factory=dict)
    watermark: dict | None = None   # the record generation wrote (applied, method, payload, ...)
    created: str | None = None      # claimed, not attested: only a TSA gives a trusted time


def from_record(record: dict, data_fingerprint: str | None = None) -> Generation:
    """A Generation from one generations.jsonl record (and the model's dataset fingerprint)."""
    # records name the model; older ones held its folder's path: its last part then
    model = record.get("model_name") or Path(str(record.get("model") or "model")).name
    params = {k: v for k, v in record.items() if k not in _RECORD_KEYS}
    return Generation(model_name=model,
                      model_hash=str(record.get("model_sha256") or record.get("model_hash") or ""),
                      data_fingerprint=data_fingerprint or record.get("data_fingerprint"),
                      seed=record.get("seed"), sampler=record.get("sampler"), params=params,
                      watermark=record.get("watermark"), created=record.get("created"))


def _json_safe(value: Any) -> Any:
    """value as plain JSON types (tuples become lists, other objects their str)."""
    return json.loads(json.dumps(value, default=str))


def soft_binding(watermark: dict | None) -> dict | None:
    """The c2pa.soft-binding assertion data for an applied watermark record, else None."""
    if not watermark or not watermark.get("applied"):
        return None
    return {"alg": WATERMARK_ALG.format(version=watermark.get("version", 1)),
            "name": f"genforge invisible watermark ({watermark.get('method', 'unknown')}, "
                    f"key {watermark.get('key', 'default')})",
            "blocks": [{"scope": {}, "value": str(watermark.get("payload"))}],
            "pad": []}


def manifest_definition(claims: Generation, title: str, ingredients: list[Ingredient] = (),
                        edits: tuple[str, ...] = ()) -> dict:
    """The manifest JSON the SDK's Builder takes for one generated file: created (pointing at
    the user's inputs among the ingredients), or opened from a parent ingredient and then
    edited (edits: c2pa action names, e.g. c2pa.resized for a display copy)."""
    agent = {"name": "genforge", "version": __version__}
    created = {"action": "c2pa.created", "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
               "softwareAgent": agent,
               "description": f"generated by model {claims.model_name}"}
    generation = {"model": {"name": claims.model_name, "hash": claims.model_hash},
                  "training_data": {"fingerprint": claims.data_fingerprint},
                  "seed": claims.seed, "sampler": claims.sampler,
                  "params_json": json.dumps(_json_safe(claims.params), sort_keys=True),
                  "watermark": claims.watermark, "created": claims.created,
                  "ingredients": [i.record() for i in ingredients],
                  "genforge_version": __version__}
    assertions = [{"label": "c2pa.actions.v2",
                   "data": {"actions": ingredients_mod.actions(list(ingredients), created, edits)}},
                  {"label": GENERATION_LABEL, "data": _json_safe(generation)}]
    binding = soft_binding(claims.watermark)
    if binding is not None:
        assertions.append({"label": SOFT_BINDING_LABEL, "data": binding})
    return {"claim_generator_info": [agent], "title": title, "assertions": assertions}


# ----- formats ------------------------------------------------------------------------------------

def supported_formats(reading: bool = False) -> list[str]:
    """The formats (MIME types and extensions) the installed SDK can sign (or read)."""
    import c2pa
    cls = c2pa.Reader if reading else c2pa.Builder
    return sorted(cls.get_supported_mime_types())


def sdk_format(path: Path, reading: bool = False) -> str:
    """The SDK's name for path's format (its extension), or DataError when C2PA lacks it."""
    ext = Path(path).suffix.lower().lstrip(".")
    if ext and ext in supported_formats(reading):
        return ext
    hint = ("sign music and level files as a zip pack (sign_pack) or a WAV render"
            if not reading else "C2PA manifests live only in formats the SDK covers")
    raise DataError(f"{path}: C2PA does not cover {'.' + ext if ext else 'extensionless'} "
                    f"files; {hint}")


def _one_line(err: Exception) -> str:
    return " ".join(str(err).split())[:300]


def _sdk_signer(signer: LoadedSigner | Any):
    return signer.signer if isinstance(signer, LoadedSigner) else signer


# ----- signing ------------------------------------------------------------------------------------

def _sign_stream(source, fmt: str, dest: Path, claims: Generation, signer, title: str,
                 mode: int, ingredients: list[Ingredient] = (), edits: tuple[str, ...] = ()) -> Path:
    """Sign the bytes in source (a binary stream) into dest atomically, with file mode mode."""
    import c2pa

    def write(tmp: str) -> None:
        os.chmod(tmp, mode)  # mkstemp made it 0600; keep the original file's mode
        definition = manifest_definition(claims, title, ingredients, edits)
        with c2pa.Builder(definition, offline_context()) as builder, open(tmp, "w+b") as out:
            ingredients_mod.add(builder, list(ingredients), set(supported_formats(reading=True)))
            builder.sign(_sdk_signer(signer), fmt, source, out)

    try:
        return io.write_with(dest, write)
    except c2pa.C2paError as err:
        raise DataError(f"{dest}: C2PA signing failed ({_one_line(err)})") from None


def sign_file(path: Path | str, claims: Generation, signer: LoadedSigner,
              out: Path | str | None = None, ingredients: list[Ingredient] = (),
              edits: tuple[str, ...] = ()) -> Path:
    """Embed a signed manifest in a file the SDK covers (PNG, JPEG, WAV, ZIP, ...); in place
    unless out is given; ingredients: the files it was made from (see provenance.ingredients).
    Returns the signed file."""
    path = Path(path)
    dest = Path(out) if out is not None else path
    if not path.is_file():
        raise DataError(f"{path}: not found")
    fmt = sdk_format(path)
    if out is not None and dest.suffix.lower() != path.suffix.lower():
        raise ConfigError(f"{dest}: the signed copy must keep the extension {path.suffix}")
    mode = path.stat().st_mode & 0o777
    with open(path, "rb") as source:
        return _sign_stream(source, fmt, dest, claims, signer, dest.name, mode, ingredients,
                            edits)


def pack_bytes(files: Iterable[Path | str]) -> bytes:
    """A zip of the files under their own names, byte-for-byte the same for the same files."""
    buffer = _io.BytesIO()
    names: set[str] = set()
    # stored, not deflated: the SDK's zip reader (c2pa-rs 0.91) refuses compression method 8
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as pack:
        for file in map(Path, files):
            if not file.is_file():
                raise DataError(f"{file}: not found")
            if file.name in names:
                raise DataError(f"{file}: a pack cannot hold two files named {file.name}")
            names.add(file.name)
            # a fixed date: the same files give the same pack, so its hash means the content
            info = zipfile.ZipInfo(file.name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            pack.writestr(info, file.read_bytes())
    if not names:
        raise DataError("a pack needs at least one file")
    return buffer.getvalue()


def sign_pack(files: Iterable[Path | str], out_zip: Path | str, claims: Generation,
              signer: LoadedSigner, ingredients: list[Ingredient] = ()) -> Path:
    """Zip the files (MIDI, level text, ...) and sign the zip: C2PA covers zip, not those."""
    out_zip = Path(out_zip)
    if out_zip.suffix.lower() != ".zip":
        raise ConfigError(f"{out_zip}: a signed pack must be a .zip file")
    data = pack_bytes(files)
    return _sign_stream(_io.BytesIO(data), "zip", out_zip, claims, signer, out_zip.name, 0o644,
                        ingredients)


# ----- verification -------------------------------------------------------------------------------

@dataclass
class VerifyReport:
    """What verify_file found: the SDK's validation state, its reasons, and the claims."""
    path: str
    state: str                        # "trusted" | "valid" | "invalid" | "no manifest"
    failures: list[dict] = field(default_factory=list)   # {code, explanation} from the SDK
    title: str | None = None
    claim_generator: str | None = None
    actions: list[dict] = field(default_factory=list)
    digital_source_type: str | None = None
    generation: dict | None = None
    soft_binding: dict | None = None
    signer: str | None = None         # the signing certificate's common name
    issuer: str | None = None         # its issuer's organisation, as the SDK reports it
    alg: str | None = None
    signed_at: str | None = None      # trusted time from a TSA; None when signed offline
    trust_anchors: str | None = None  # the root file trust was judged against
    ingredients: list[dict] = field(default_factory=list)  # provenance.ingredients.listed

    @property
    def ok(self) -> bool:
        """Intact and signed (trusted or not)."""
        return self.state in ("trusted", "valid")

    def codes(self) -> list[str]:
        """The failure codes alone."""
        return [f["code"] for f in self.failures]

    def lines(self) -> list[str]:
        """The human-readable report, one line each."""
        return report_lines(self)


def _active(store: dict) -> dict:
    return (store.get("manifests") or {}).get(store.get("active_manifest") or "", {})


def _assertion(manifest: dict, labels: tuple[str, ...]) -> dict | None:
    for assertion in manifest.get("assertions") or []:
        if str(assertion.get("label", "")).split("__")[0] in labels:  # "__N" numbers repeats
            return assertion.get("data")
    return None


def _generation(data: dict | None) -> dict | None:
    """The genforge assertion with its params_json decoded into params."""
    if data is None or "params_json" not in data:
        return data
    data = dict(data)
    try:
        data["params"] = json.loads(data.pop("params_json"))
    except (TypeError, ValueError):
        data["params"] = None  # written by something else: the report says unknown
    return data


def _failures(store: dict) -> list[dict]:
    """Failure statuses of the active manifest and its ingredients, as the SDK reports them."""
    results = store.get("validation_results") or {}
    found = list((results.get("activeManifest") or {}).get("failure") or [])
    for delta in results.get("ingredientDeltas") or []:
        found += (delta.get("validationDeltas") or {}).get("failure") or []
    if not results:
        found = list(store.get("validation_status") or [])  # older stores: one flat list
    return [{"code": f.get("code", ""), "explanation": f.get("explanation", "")} for f in found]


def report_from_store(path: str, store: dict, trust_anchors: str | None = None) -> VerifyReport:
    """A VerifyReport from a manifest store as Reader.json() gives it."""
    manifest = _active(store)
    failures = _failures(store)
    state = _STATES.get(store.get("validation_state") or "")
    if state is None:  # no state from the SDK: any failure besides trust invalidates
        state = "invalid" if any(f["code"] != "signingCredential.untrusted" for f in failures) \
            else "valid"
    actions = (_assertion(manifest, ACTIONS_LABELS) or {}).get("actions") or []
    # created, or opened from a parent (a display copy): the first action that says its source
    created = next((a for a in actions if a.get("digitalSourceType")), {})
    info = manifest.get("signature_info") or {}
    generator = manifest.get("claim_generator_info") or [{}]
    return VerifyReport(
        path=path, state=state, failures=failures, title=manifest.get("title"),
        claim_generator=" ".join(str(generator[0].get(k, "")) for k in ("name", "version")).strip()
        or manifest.get("claim_generator"),
        actions=actions, digital_source_type=created.get("digitalSourceType"),
        generation=_generation(_assertion(manifest, (GENERATION_LABEL,))),
        soft_binding=_assertion(manifest, (SOFT_BINDING_LABEL,)),
        signer=info.get("common_name"), issuer=info.get("issuer"), alg=info.get("alg"),
        signed_at=info.get("time"), trust_anchors=trust_anchors,
        ingredients=ingredients_mod.listed(manifest, store))


def _trust_pem(trust_anchors: Path | str | None) -> tuple[str | None, str | None]:
    """(PEM text, its file) of the roots to trust: the named file, else the local root if any."""
    if trust_anchors is None:
        root = key_paths(default_keys_dir()).root
        if not root.is_file():
            return None, None
        trust_anchors = root
    trust_anchors = Path(trust_anchors)
    try:
        text = trust_anchors.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{trust_anchors}: cannot read the trust anchors "
                          f"({getattr(err, 'strerror', None) or err})") from None
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise ConfigError(f"{trust_anchors}: trust anchors must be PEM certificates")
    return text, str(trust_anchors)


def verify_file(path: Path | str, trust_anchors: Path | str | None = None) -> VerifyReport:
    """Validate a file's C2PA manifest; trusted when its chain leads to trust_anchors (a PEM
    file; default: root-ca.pem in default_keys_dir(), when there) or the SDK's own list."""
    import c2pa
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: not found")
    fmt = sdk_format(path, reading=True)
    pem_text, anchors = _trust_pem(trust_anchors)
    try:
        with open(path, "rb") as stream:
            reader = c2pa.Reader.try_create(fmt, stream, None, offline_context(pem_text))
            if reader is None:
                return VerifyReport(str(path), NO_MANIFEST, trust_anchors=anchors)
            with reader:
                store = json.loads(reader.json())
    except c2pa.C2paError as err:
        raise DataError(f"{path}: not a readable .{fmt} file with C2PA data "
                        f"({_one_line(err)})") from None
    return report_from_store(str(path), store, anchors)


def report_lines(report: VerifyReport) -> list[str]:
    """The text `genforge verify` prints for one file."""
    if report.state == NO_MANIFEST:
        return [f"{report.path}: no C2PA manifest (unsigned, or stripped by re-encoding)"]
    verdict = {"trusted": "valid and trusted: intact, signed by a certificate leading to "
                          + (report.trust_anchors or "a trusted root"),
               "valid": "valid but not trusted: intact and signed, by a certificate that does "
                        "not lead to a trusted root",
               "invalid": "INVALID: do not rely on these claims"}[report.state]
    lines = [f"{report.path}: {verdict}"]
    for f in report.failures:
        meaning = _MEANINGS.get(f["code"])
        lines.append(f"  {f['code']}: " + (f"{meaning} ({f['explanation']})" if meaning
                                           else f["explanation"]))
    signed = report.signed_at or "no trusted time (signed offline, without a time-stamp authority)"
    lines.append(f"  signer: {report.signer or '?'} (issuer {report.issuer or '?'}, "
                 f"{report.alg or '?'}); signed: {signed}")
    if report.claim_generator:
        lines.append(f"  claim generator: {report.claim_generator}")
    for action in report.actions:
        source = action.get("digitalSourceType", "")
        lines.append(f"  action: {action.get('action')}"
                     + (f" ({source.rsplit('/', 1)[-1]})" if source else ""))
    gen = report.generation
    if gen:
        model = gen.get("model") or {}
        lines.append(f"  model: {model.get('name')} {model.get('hash')}")
        lines.append(f"  training data: {(gen.get('training_data') or {}).get('fingerprint')}")
        lines.append(f"  seed {gen.get('seed')}, sampler {gen.get('sampler')}, params "
                     + json.dumps(gen.get("params") or {}, sort_keys=True))
    for ingredient in report.ingredients:
        own = ingredient["manifest"]
        lines.append(f"  ingredient ({ingredient['relationship']}): {ingredient['title']}, "
                     f"{ingredient['format']}; "
                     + (f"its own manifest kept, signed by {own['signer'] or '?'}" if own
                        else "no manifest of its own")
                     + (f"; {ingredient['description']}" if ingredient["description"] else ""))
    if report.soft_binding:
        values = ", ".join(b.get("value", "") for b in report.soft_binding.get("blocks") or [])
        lines.append(f"  watermark (soft binding): {report.soft_binding.get('alg')} {values}")
    elif gen and gen.get("watermark") and not gen["watermark"].get("applied"):
        lines.append(f"  watermark: none ({gen['watermark'].get('reason', 'not applied')})")
    return lines
