"""Signed C2PA provenance: the development PKI, signing, verification, and every refusal."""
from __future__ import annotations

import datetime
import json
import os
import struct
import wave
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("c2pa")
pytest.importorskip("cryptography")
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID  # noqa: E402

from genforge.errors import ConfigError, DataError  # noqa: E402
from genforge.provenance import keys, signing  # noqa: E402

NOW = datetime.datetime.now(datetime.timezone.utc)
DAY = datetime.timedelta(days=1)
MARK = {"applied": True, "method": "genforge-tile-ss", "version": 1, "payload": "0x1234abcd",
        "key": "default"}
CLAIMS = signing.Generation(
    model_name="tiny-edm", model_hash="sha256:" + "ab" * 32, data_fingerprint="fp:0123456789",
    seed=42, sampler="dpmpp-2m", params={"steps": 18, "guidance": 1.5, "sigmas": [80.0, 0.002],
                                         "class": "shirt"},
    watermark=MARK, created="2026-01-01T00:00:00Z")


@pytest.fixture(scope="module")
def keys_dir(tmp_path_factory) -> Path:
    return keys.init_keys(tmp_path_factory.mktemp("keys") / "keys", days=30).folder


@pytest.fixture(autouse=True)
def local_keys(keys_dir, monkeypatch):
    """The module's PKI is the default keys folder: its root is the default trust anchor."""
    monkeypatch.setenv("GENFORGE_KEYS", str(keys_dir))


@pytest.fixture(scope="module")
def signer(keys_dir):
    return keys.load_signer(keys_dir)


def picture(path: Path, seed: int = 0) -> Path:
    """A small random RGB picture, saved in the format path's extension names."""
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(path)
    return path


def one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message and message
    return message


def write_credentials(folder: Path, leaf_key, certs: list) -> tuple[Path, Path]:
    """chain.pem and key.pem for a hand-made (often broken) credential."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "chain.pem").write_bytes(b"".join(keys.pem(c) for c in certs))
    (folder / "key.pem").write_bytes(keys.key_pem(leaf_key))
    return folder / "chain.pem", folder / "key.pem"


def issued(alg: str = "ES256", *, start=NOW - DAY, end=NOW + 30 * DAY, usage: bool = True):
    """(leaf key, leaf, root key, root): a leaf issued by a fresh root."""
    root_key, leaf_key = keys.new_key(alg), keys.new_key(alg)
    root = keys.make_certificate(root_key, "test root", not_before=NOW - DAY,
                                 not_after=NOW + 60 * DAY, ca=True)
    leaf = keys.make_certificate(leaf_key, "test signer", not_before=start, not_after=end,
                                 issuer=root, issuer_key=root_key, usage=usage)
    return leaf_key, leaf, root_key, root


# ----- keys ---------------------------------------------------------------------------------------

def test_keys_init_writes_a_two_level_pki_the_sdk_accepts(keys_dir):
    paths = keys.key_paths(keys_dir)
    assert os.stat(paths.key).st_mode & 0o777 == 0o600
    assert os.stat(paths.chain).st_mode & 0o777 == 0o644
    leaf, root = x509.load_pem_x509_certificates(paths.chain.read_bytes())
    assert root == x509.load_pem_x509_certificate(paths.root.read_bytes())
    assert leaf.issuer == root.subject and root.issuer == root.subject
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert root.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert leaf.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.EMAIL_PROTECTION in eku
    assert isinstance(leaf.public_key(), ec.EllipticCurvePublicKey)
    assert (leaf.not_valid_after_utc - NOW).days in (29, 30)
    info = json.loads(paths.info.read_text())
    assert info["algorithm"] == "ES256" and info["chain"] == "chain.pem"
    assert info["signer"]["fingerprint"].startswith("sha256:")
    loaded = keys.load_signer()  # from $GENFORGE_KEYS; signs a probe, so the SDK accepted it
    assert loaded.alg == "ES256" and "genforge local signer" in loaded.subject


def test_keys_init_refuses_to_overwrite_without_force(tmp_path):
    first = keys.init_keys(tmp_path / "k")
    before = first.root.read_bytes()
    with pytest.raises(ConfigError) as err:
        keys.init_keys(tmp_path / "k")
    assert "already exist" in one_line(err) and "--force" in str(err.value)
    assert first.root.read_bytes() == before
    keys.init_keys(tmp_path / "k", force=True)
    assert first.root.read_bytes() != before


def test_default_keys_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("GENFORGE_KEYS", str(tmp_path / "mine"))
    assert keys.default_keys_dir() == tmp_path / "mine"
    monkeypatch.delenv("GENFORGE_KEYS")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    assert keys.default_keys_dir() == tmp_path / "cfg" / "genforge" / "keys"


# ----- signing and verifying ----------------------------------------------------------------------

@pytest.mark.parametrize("ext", ["png", "jpg"])
def test_signed_images_verify_trusted_with_every_claim(tmp_path, signer, keys_dir, ext):
    path = picture(tmp_path / f"000042.{ext}")
    pixels = np.asarray(Image.open(path))
    os.chmod(path, 0o640)
    assert signing.sign_file(path, CLAIMS, signer) == path  # in place
    assert np.array_equal(np.asarray(Image.open(path)), pixels)
    assert os.stat(path).st_mode & 0o777 == 0o640
    report = signing.verify_file(path)
    assert report.state == "trusted" and report.ok and report.failures == []
    assert report.trust_anchors == str(keys_dir / "root-ca.pem")
    assert [a["action"] for a in report.actions] == ["c2pa.created"]
    assert report.digital_source_type == signing.TRAINED_ALGORITHMIC_MEDIA
    assert report.title == path.name and report.claim_generator.startswith("genforge ")
    gen = report.generation
    assert gen["model"] == {"name": "tiny-edm", "hash": CLAIMS.model_hash}
    assert gen["training_data"] == {"fingerprint": "fp:0123456789"}
    assert gen["seed"] == 42 and gen["sampler"] == "dpmpp-2m"
    assert gen["params"] == CLAIMS.params  # a list of floats survives (c2pa-rs#2570)
    assert gen["watermark"] == MARK
    assert report.soft_binding["alg"] == "org.genforge.watermark.v1"
    assert report.soft_binding["blocks"][0]["value"] == "0x1234abcd"
    assert report.signer == "genforge local signer" and report.signed_at is None
    text = "\n".join(report.lines())
    assert "valid and trusted" in text and "trainedAlgorithmicMedia" in text
    assert "0x1234abcd" in text and "signed offline" in text


def test_without_the_root_a_signed_file_is_valid_but_untrusted(tmp_path, signer, monkeypatch):
    path = signing.sign_file(picture(tmp_path / "a.png"), CLAIMS, signer)
    monkeypatch.setenv("GENFORGE_KEYS", str(tmp_path / "none"))
    report = signing.verify_file(path)
    assert report.state == "valid" and report.codes() == ["signingCredential.untrusted"]
    assert "not trusted" in report.lines()[0]


def _flip_pixel_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    if path.suffix == ".png":
        at = data.rindex(b"IDAT") + 8   # inside the compressed pixels
    else:
        at = len(data) - 10             # inside the entropy-coded scan, before EOI
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("ext", ["png", "jpg"])
def test_a_tampered_file_is_invalid_with_the_sdks_reason(tmp_path, signer, ext):
    path = signing.sign_file(picture(tmp_path / f"a.{ext}"), CLAIMS, signer)
    _flip_pixel_byte(path)
    report = signing.verify_file(path)
    assert report.state == "invalid" and not report.ok
    assert "assertion.dataHash.mismatch" in report.codes()
    text = "\n".join(report.lines())
    assert "INVALID" in text and "changed after it was signed" in text


def test_unsigned_file_has_no_manifest(tmp_path):
    report = signing.verify_file(picture(tmp_path / "plain.png"))
    assert report.state == signing.NO_MANIFEST and not report.ok
    assert report.lines() == [f"{tmp_path / 'plain.png'}: no C2PA manifest (unsigned, or "
                              "stripped by re-encoding)"]


def test_re_signing_replaces_the_manifest(tmp_path, signer):
    path = signing.sign_file(picture(tmp_path / "a.png"), CLAIMS, signer)
    signing.sign_file(path, signing.Generation("other", "sha256:00"), signer)
    report = signing.verify_file(path)
    assert report.state == "trusted" and report.generation["model"]["name"] == "other"
    assert report.soft_binding is None  # no watermark claimed this time


def test_signed_copy_leaves_the_original(tmp_path, signer):
    original = picture(tmp_path / "a.png")
    copy = signing.sign_file(original, CLAIMS, signer, out=tmp_path / "out" / "a.png")
    assert signing.verify_file(original).state == signing.NO_MANIFEST
    assert signing.verify_file(copy).state == "trusted"


def test_a_pack_of_midi_and_level_files_signs_and_verifies(tmp_path, signer):
    midi = tmp_path / "song.mid"
    midi.write_bytes(b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x00\x60"
                     b"MTrk\x00\x00\x00\x0c\x00\x90\x3c\x40\x60\x80\x3c\x40\x00\xff\x2f\x00")
    level = tmp_path / "level.txt"
    level.write_text("----------\n--X----?--\n##########\n")
    with pytest.raises(DataError) as err:
        signing.sign_file(midi, CLAIMS, signer)
    assert "sign_pack" in one_line(err)
    pack = signing.sign_pack([midi, level], tmp_path / "pack.zip", CLAIMS, signer)
    assert signing.pack_bytes([midi, level]) == signing.pack_bytes([midi, level])
    with zipfile.ZipFile(pack) as z:
        assert z.read("song.mid") == midi.read_bytes()
        assert "META-INF/content_credential.c2pa" in z.namelist()
    report = signing.verify_file(pack)
    assert report.state == "trusted" and report.generation["model"]["name"] == "tiny-edm"
    with zipfile.ZipFile(pack) as z:  # the first byte of song.mid's compressed data
        info = z.getinfo("song.mid")
    data = bytearray(pack.read_bytes())
    name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26:][:4])
    data[info.header_offset + 30 + name_len + extra_len] ^= 0x01
    (tmp_path / "tampered.zip").write_bytes(bytes(data))
    tampered = signing.verify_file(tmp_path / "tampered.zip")
    assert tampered.state == "invalid" and any("Hash.mismatch" in c for c in tampered.codes())


def test_a_wav_render_signs_and_verifies(tmp_path, signer):
    path = tmp_path / "render.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000)
        w.writeframes(struct.pack("<400h", *(int(8000 * np.sin(i / 5)) for i in range(400))))
    signing.sign_file(path, CLAIMS, signer)
    assert signing.verify_file(path).state == "trusted"
    with wave.open(str(path)) as w:
        assert w.getnframes() == 400


@pytest.mark.parametrize("alg", ["ES384", "Ed25519", "PS256"])
def test_a_production_certificate_signs_with_the_algorithm_of_its_key(tmp_path, alg):
    leaf_key, leaf, _, root = issued(alg)
    chain, key = write_credentials(tmp_path / "prod", leaf_key, [leaf, root])
    (tmp_path / "root.pem").write_bytes(keys.pem(root))
    loaded = keys.load_signer(cert=chain, key=key)
    assert loaded.alg == alg
    path = signing.sign_file(picture(tmp_path / "a.png"), CLAIMS, loaded)
    assert signing.verify_file(path, trust_anchors=tmp_path / "root.pem").state == "trusted"
    assert signing.verify_file(path).state == "valid"  # the local root does not vouch for it


# ----- refusals -----------------------------------------------------------------------------------

def test_signing_without_keys_says_how_to_make_them(tmp_path):
    with pytest.raises(ConfigError) as err:
        keys.load_signer(tmp_path / "empty")
    assert "genforge keys init" in one_line(err) and "--cert" in str(err.value)
    with pytest.raises(ConfigError) as err:
        keys.load_signer(cert=tmp_path / "chain.pem")
    assert "--key" in one_line(err)


def _self_signed(folder: Path):
    key = keys.new_key()
    leaf = keys.make_certificate(key, "lonely", not_before=NOW - DAY, not_after=NOW + DAY)
    return write_credentials(folder, key, [leaf])


def _expired(folder: Path):
    leaf_key, leaf, _, root = issued(start=NOW - 30 * DAY, end=NOW - DAY)
    return write_credentials(folder, leaf_key, [leaf, root])


def _not_yet_valid(folder: Path):
    leaf_key, leaf, _, root = issued(start=NOW + DAY, end=NOW + 30 * DAY)
    return write_credentials(folder, leaf_key, [leaf, root])


def _mismatched(folder: Path):
    _, leaf, _, root = issued()
    return write_credentials(folder, keys.new_key(), [leaf, root])


def _ca_first(folder: Path):
    _, _, root_key, root = issued()
    return write_credentials(folder, root_key, [root])


def _no_usage(folder: Path):
    leaf_key, leaf, _, root = issued(usage=False)
    return write_credentials(folder, leaf_key, [leaf, root])


def _unsupported_key(folder: Path):
    _, leaf, _, root = issued()
    chain, key = write_credentials(folder, keys.new_key(), [leaf, root])
    key.write_bytes(keys.key_pem(ec.generate_private_key(ec.SECP256K1())))
    return chain, key


def _garbage(folder: Path):
    chain, key = _expired(folder)
    chain.write_text("not a certificate\n")
    return chain, key


@pytest.mark.parametrize("make, words", [
    (_self_signed, "self-signed"), (_expired, "expired on"), (_not_yet_valid, "not valid yet"),
    (_mismatched, "does not match"), (_ca_first, "is a CA"), (_no_usage, "digitalSignature"),
    (_unsupported_key, "unsupported signing key type (secp256k1)"),
    (_garbage, "not a PEM certificate chain")])
def test_unusable_credentials_get_one_line_errors(tmp_path, make, words):
    chain, key = make(tmp_path / "bad")
    with pytest.raises(ConfigError) as err:
        keys.load_signer(cert=chain, key=key)
    message = one_line(err)
    assert words in message and str(tmp_path / "bad") in message


def test_bad_files_to_sign_or_verify_get_one_line_errors(tmp_path, signer):
    with pytest.raises(DataError) as err:
        signing.verify_file(tmp_path / "missing.png")
    assert "not found" in one_line(err)
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"this is not a PNG file at all")
    with pytest.raises(DataError) as err:
        signing.verify_file(junk)
    assert str(junk) in one_line(err)
    with pytest.raises(DataError) as err:
        signing.sign_file(junk, CLAIMS, signer)
    assert str(junk) in one_line(err) and not list(tmp_path.glob(".junk.png.*"))  # no temp left
    with pytest.raises(ConfigError) as err:
        signing.verify_file(picture(tmp_path / "a.png"), trust_anchors=junk)
    assert "PEM" in one_line(err)


def test_a_generation_record_becomes_claims():
    record = {"model": "runs/tiny-edm", "model_sha256": "sha256:ff", "family": "edm",
              "genforge_version": "0.1.0", "file": "000001.png", "seed": 1, "class": None,
              "sampler": "heun", "steps": 18, "watermark": MARK, "created": "2026-01-01T00:00:00Z"}
    claims = signing.from_record(record, data_fingerprint="fp:1")
    assert claims.model_name == "tiny-edm" and claims.model_hash == "sha256:ff"
    assert claims.seed == 1 and claims.sampler == "heun" and claims.data_fingerprint == "fp:1"
    assert claims.params == {"family": "edm", "class": None, "steps": 18}
    definition = signing.manifest_definition(claims, "000001.png")
    labels = [a["label"] for a in definition["assertions"]]
    assert labels == ["c2pa.actions.v2", signing.GENERATION_LABEL, signing.SOFT_BINDING_LABEL]
    unmarked = signing.from_record({**record, "watermark": {"applied": False, "reason": "small"}})
    assert signing.soft_binding(unmarked.watermark) is None
