"""Signing keys for C2PA: a local development PKI, and checks on any certificate before it signs.

`init_keys` writes a two-level PKI, because the C2PA SDK rejects a self-signed signing
certificate: a root CA (CA:true, keyCertSign) and a leaf issued by it (CA:false,
digitalSignature, extendedKeyUsage emailProtection). Of the purposes the C2PA 2.x trust model
names, the SDK's default configuration (c2pa-rs 0.91) accepts emailProtection, timeStamping and
OCSPSigning; it refuses documentSigning (1.3.6.1.5.5.7.3.36) and the C2PA claim-signing OID at
signing time ("certificate missing required EKU"), so the development leaf uses emailProtection.

`load_signer` checks a chain and key (genforge's own, or a production certificate the user
names) with `cryptography` first, so each common mistake gets a one-line message, then signs a
one-pixel PNG in memory: whatever else the SDK would refuse is refused before a file is touched.
Nothing here uses the network; a time-stamp authority is used only when a tsa_url is given.
"""
from __future__ import annotations

import datetime
import io as _io
import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .. import io
from ..errors import ConfigError

CHAIN_FILE = "chain.pem"          # leaf first, then the root: the order the SDK expects
KEY_FILE = "signing-key.pem"
ROOT_FILE = "root-ca.pem"
INFO_FILE = "keys.json"
FORMAT_VERSION = 1
DEFAULT_NAME = "genforge local signer"
DEFAULT_DAYS = 365
ROOT_DAYS = 3650                  # roots are long-lived by convention; `days` bounds the leaf
ORGANIZATION = "genforge development PKI"  # the SDK reports the issuer by its organisation
ALGORITHMS = ("ES256", "ES384", "ES512", "PS256", "Ed25519")
_CURVES = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
_DIGITAL_CREATION = "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCreation"
_KEY_USAGES = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
               "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")


@dataclass(frozen=True)
class KeyPaths:
    """Where init_keys put the files."""
    folder: Path
    chain: Path
    key: Path
    root: Path
    info: Path


@dataclass
class LoadedSigner:
    """A checked C2PA signer and what it was made from (signer is a c2pa.Signer)."""
    signer: object
    alg: str
    chain: Path
    key: Path
    subject: str
    issuer: str
    not_after: datetime.datetime
    tsa_url: str | None = None


def default_keys_dir() -> Path:
    """$GENFORGE_KEYS, else $XDG_CONFIG_HOME/genforge/keys (~/.config/genforge/keys)."""
    if os.environ.get("GENFORGE_KEYS"):
        return Path(os.environ["GENFORGE_KEYS"]).expanduser()
    config = os.environ.get("XDG_CONFIG_HOME") or "~/.config"
    return Path(config).expanduser() / "genforge" / "keys"


def key_paths(folder: Path) -> KeyPaths:
    """The file names a keys folder holds."""
    folder = Path(folder)
    return KeyPaths(folder, folder / CHAIN_FILE, folder / KEY_FILE, folder / ROOT_FILE,
                    folder / INFO_FILE)


# ----- making keys and certificates ---------------------------------------------------------------

def new_key(alg: str = "ES256"):
    """A private key for one of ALGORITHMS."""
    if alg == "Ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if alg == "PS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    curves = {"ES256": ec.SECP256R1, "ES384": ec.SECP384R1, "ES512": ec.SECP521R1}
    if alg not in curves:
        raise ConfigError(f"signing algorithm {alg!r} is not one of {', '.join(ALGORITHMS)}")
    return ec.generate_private_key(curves[alg]())


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION)])


def _usage(**on: bool) -> x509.KeyUsage:
    return x509.KeyUsage(**{flag: on.get(flag, False) for flag in _KEY_USAGES})


def _digest(key):
    """The hash a certificate signature by this key uses (Ed25519 hashes internally)."""
    return None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()


def make_certificate(key, common_name: str, *, not_before: datetime.datetime,
                     not_after: datetime.datetime, ca: bool = False,
                     issuer: x509.Certificate | None = None, issuer_key=None,
                     usage: bool = True) -> x509.Certificate:
    """A CA or leaf certificate for key, issued by issuer/issuer_key (None: self-signed).

    A leaf gets digitalSignature and emailProtection unless usage is False (tests use that to
    make an unsuitable one); a CA gets keyCertSign and cRLSign.
    """
    signing_key = issuer_key if issuer_key is not None else key
    builder = (x509.CertificateBuilder().subject_name(_name(common_name))
               .issuer_name(issuer.subject if issuer is not None else _name(common_name))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(not_before).not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None),
                              critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                              critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                   signing_key.public_key()), critical=False))
    if ca:
        builder = builder.add_extension(_usage(key_cert_sign=True, crl_sign=True), critical=True)
    elif usage:
        builder = (builder.add_extension(_usage(digital_signature=True), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]),
                                  critical=False))
    return builder.sign(signing_key, _digest(signing_key))


def pem(cert: x509.Certificate) -> bytes:
    """A certificate as PEM."""
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key) -> bytes:
    """A private key as unencrypted PKCS#8 PEM."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def dev_chain(common_name: str = DEFAULT_NAME, days: int = DEFAULT_DAYS, alg: str = "ES256",
              now: datetime.datetime | None = None) -> tuple[bytes, bytes, bytes]:
    """(chain PEM leaf+root, leaf key PEM, root PEM) of a fresh development PKI."""
    if days < 1:
        raise ConfigError(f"certificate lifetime must be at least 1 day, got {days}")
    now = now or datetime.datetime.now(datetime.timezone.utc)
    start = now - datetime.timedelta(minutes=5)  # tolerate a verifier's clock a little behind
    root_key, leaf_key = new_key(alg), new_key(alg)
    root = make_certificate(root_key, f"{common_name} root CA", not_before=start, ca=True,
                            not_after=now + datetime.timedelta(days=max(days, ROOT_DAYS)))
    leaf = make_certificate(leaf_key, common_name, not_before=start,
                            not_after=now + datetime.timedelta(days=days),
                            issuer=root, issuer_key=root_key)
    return pem(leaf) + pem(root), key_pem(leaf_key), pem(root)


def _fingerprint(cert: x509.Certificate) -> str:
    return "sha256:" + cert.fingerprint(hashes.SHA256()).hex()


def _describe(cert: x509.Certificate) -> dict:
    return {"subject": cert.subject.rfc4514_string(), "issuer": cert.issuer.rfc4514_string(),
            "not_before": cert.not_valid_before_utc.isoformat(),
            "not_after": cert.not_valid_after_utc.isoformat(), "fingerprint": _fingerprint(cert)}


def init_keys(folder: Path | str | None = None, *, common_name: str = DEFAULT_NAME,
              days: int = DEFAULT_DAYS, alg: str = "ES256", force: bool = False) -> KeyPaths:
    """Write a development root CA, a signing chain and key, and keys.json into folder."""
    paths = key_paths(Path(folder) if folder is not None else default_keys_dir())
    existing = [p.name for p in (paths.chain, paths.key, paths.root) if p.exists()]
    if existing and not force:
        raise ConfigError(f"{paths.folder}: signing keys already exist ({', '.join(existing)}); "
                          "pass --force to replace them (files signed before stay verifiable "
                          "only with the old root-ca.pem)")
    chain, key, root = dev_chain(common_name, days, alg)
    paths.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    io.write_with(paths.key, lambda tmp: _write_private(tmp, key))
    for path, data in ((paths.root, root), (paths.chain, chain)):
        io.write_with(path, lambda tmp, data=data: _write_public(tmp, data))
    leaf, root_cert = x509.load_pem_x509_certificates(chain)
    info = json.dumps({
        "format": FORMAT_VERSION, "purpose": "development: trusted only where root-ca.pem is",
        "algorithm": alg, "chain": CHAIN_FILE, "key": KEY_FILE, "root": ROOT_FILE,
        "signer": _describe(leaf), "root_ca": _describe(root_cert)}, indent=2, sort_keys=True)
    io.write_with(paths.info, lambda tmp: _write_public(tmp, info.encode() + b"\n"))
    return paths


def _write_private(tmp: str, data: bytes) -> None:
    os.chmod(tmp, 0o600)  # owner only, before the key is in it; os.replace keeps the mode
    Path(tmp).write_bytes(data)


def _write_public(tmp: str, data: bytes) -> None:
    Path(tmp).write_bytes(data)
    os.chmod(tmp, 0o644)  # certificates are public; mkstemp's 0600 would hide them


# ----- checking and loading -----------------------------------------------------------------------

def algorithm_for(key, where: Path | str = "signing key") -> str:
    """The C2PA signing algorithm for a private key, or ConfigError for key types C2PA lacks."""
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name in _CURVES:
        return _CURVES[key.curve.name]
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size >= 2048:
        return "PS256"  # C2PA allows RSA only with PSS padding
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "Ed25519"
    size = getattr(key, "key_size", "")
    kind = getattr(getattr(key, "curve", None), "name", None) or f"{type(key).__name__} {size}"
    raise ConfigError(f"{where}: unsupported signing key type ({kind}); C2PA signs with EC "
                      "P-256/P-384/P-521, RSA of 2048 bits or more (PSS) or Ed25519")


def _self_signed(cert: x509.Certificate) -> bool:
    """True when cert's own key verifies its signature (subject == issuer alone can lie)."""
    if cert.subject != cert.issuer:
        return False
    try:
        cert.verify_directly_issued_by(cert)
        return True
    except (ValueError, TypeError, InvalidSignature):
        return False


def check_certificate(cert: x509.Certificate, key, where: Path,
                      now: datetime.datetime | None = None) -> None:
    """ConfigError (one line) when cert cannot sign C2PA manifests with key at time now."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    public = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if cert.public_key().public_bytes(*public) != key.public_key().public_bytes(*public):
        raise ConfigError(f"{where}: the private key does not match the signing certificate "
                          "(the first certificate in the chain)")
    if now < cert.not_valid_before_utc:
        raise ConfigError(f"{where}: the signing certificate is not valid yet (valid from "
                          f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC)")
    if now > cert.not_valid_after_utc:
        raise ConfigError(f"{where}: the signing certificate expired on "
                          f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC; run 'genforge keys "
                          "init --force' or renew it")
    constraints = _extension(cert, x509.BasicConstraints)
    if constraints is not None and constraints.ca:
        raise ConfigError(f"{where}: the first certificate is a CA; C2PA signs with an "
                          "end-entity certificate, listed first in the chain")
    if _self_signed(cert):
        raise ConfigError(f"{where}: the signing certificate is self-signed, which C2PA rejects; "
                          "use one issued by a CA ('genforge keys init' makes such a pair)")
    usage = _extension(cert, x509.KeyUsage)
    if usage is None or not usage.digital_signature:
        raise ConfigError(f"{where}: the signing certificate lacks the digitalSignature key "
                          "usage that C2PA requires")
    if _extension(cert, x509.ExtendedKeyUsage) is None:
        raise ConfigError(f"{where}: the signing certificate has no extended key usage; C2PA "
                          "needs one, such as emailProtection")


def _extension(cert: x509.Certificate, kind):
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _read(path: Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the {what} ({err.strerror})") from None


def load_credentials(chain_path: Path, key_path: Path):
    """(certificates, private key) from PEM files, with one-line errors for unusable files."""
    try:
        certs = x509.load_pem_x509_certificates(_read(chain_path, "certificate chain"))
    except ValueError:
        raise ConfigError(f"{chain_path}: not a PEM certificate chain") from None
    try:
        key = serialization.load_pem_private_key(_read(key_path, "signing key"), password=None)
    except TypeError:
        raise ConfigError(f"{key_path}: the signing key is password-protected; genforge needs "
                          "an unencrypted PEM key (keep the file mode 0600)") from None
    except (ValueError, UnsupportedAlgorithm):
        raise ConfigError(f"{key_path}: not a PEM private key") from None
    return certs, key


def load_signer(keys_dir: Path | str | None = None, *, cert: Path | str | None = None,
                key: Path | str | None = None, tsa_url: str | None = None,
                now: datetime.datetime | None = None) -> LoadedSigner:
    """A checked signer from keys_dir (default_keys_dir()) or an explicit chain and key."""
    if (cert is None) != (key is None):
        raise ConfigError("a production certificate needs both --cert (chain PEM, signing "
                          "certificate first) and --key (its private key PEM)")
    if cert is None:
        paths = key_paths(Path(keys_dir) if keys_dir is not None else default_keys_dir())
        if not paths.chain.exists() or not paths.key.exists():
            raise ConfigError(f"no signing keys in {paths.folder}: run 'genforge keys init' or "
                              "pass --cert and --key")
        cert, key = paths.chain, paths.key
    cert, key = Path(cert), Path(key)
    certs, private = load_credentials(cert, key)
    alg = algorithm_for(private, key)
    check_certificate(certs[0], private, cert, now)
    chain_pem = b"".join(pem(c) for c in certs)
    signer = _sdk_signer(alg, chain_pem, key_pem(private), tsa_url, cert)
    leaf = certs[0]
    return LoadedSigner(signer, alg, cert, key, leaf.subject.rfc4514_string(),
                        leaf.issuer.rfc4514_string(), leaf.not_valid_after_utc, tsa_url)


def _sdk_signer(alg: str, chain: bytes, key: bytes, tsa_url: str | None, where: Path):
    """A c2pa.Signer, proven by signing a one-pixel PNG: the SDK's own checks run now."""
    import c2pa
    from PIL import Image
    try:
        signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(alg.lower(), chain, key, tsa_url))
    except c2pa.C2paError as err:
        raise ConfigError(f"{where}: the C2PA SDK rejects this certificate or key "
                          f"({_one_line(err)})") from None
    if tsa_url:
        return signer  # a probe would call the time-stamp authority; signing will report it
    pixel = _io.BytesIO()
    Image.new("L", (1, 1)).save(pixel, format="PNG")
    pixel.seek(0)
    manifest = {"claim_generator_info": [{"name": "genforge-key-check"}],
                "assertions": [{"label": "c2pa.actions.v2", "data": {"actions": [
                    {"action": "c2pa.created", "digitalSourceType": _DIGITAL_CREATION}]}}]}
    try:
        with c2pa.Builder(manifest, offline_context()) as builder:
            builder.sign(signer, "image/png", pixel, _io.BytesIO())
    except c2pa.C2paError as err:
        raise ConfigError(f"{where}: the C2PA SDK rejects this certificate "
                          f"({_one_line(err)})") from None
    return signer


def offline_context(trust_pem: str | None = None, thumbnail: bool = False):
    """A c2pa.Context that fetches nothing (no remote manifests, no OCSP) and, given
    trust_pem, trusts chains leading to those roots besides the SDK's own list."""
    import c2pa
    settings: dict = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False},
                      "builder": {"thumbnail": {"enabled": thumbnail}}}
    if trust_pem:
        settings["trust"] = {"user_anchors": trust_pem}
    return c2pa.Context.from_dict(settings)


def _one_line(err: Exception) -> str:
    return " ".join(str(err).split())[:300]


def describe_keys(folder: Path | str | None = None) -> dict:
    """keys.json of a keys folder ({} when absent), for `genforge keys show`."""
    paths = key_paths(Path(folder) if folder is not None else default_keys_dir())
    return json.loads(paths.info.read_text()) if paths.info.exists() else {}
