"""Making a federation CA and party certificates (``fedspark certs init`` / ``certs issue``).

The federation's trust is one CA: a gateway accepts a peer only with a
certificate the CA issued, and only for messages from the party that
certificate names. So a party certificate carries its party id in a form
gateways check, and nothing else may be read as a party id:

* subject ``CN=party-<id>`` (what people read in logs),
* URI SAN ``fedspark://party/<id>`` (what gateways check, see ``_tls``),
* DNS SAN ``party-<id>`` (what a connecting gateway asks for, so a route to
  the wrong party fails in the handshake),
* DNS and IP SANs for the gateway's host names and addresses,
* optionally the party's public X25519 *sealing* key (extension
  ``SEALING_KEY_OID``), so the CA that vouches for a party's TLS identity
  also vouches for the key its peers seal payloads with (see ``_seal``).

Keys are ECDSA P-256 (fast to make and to handshake with, supported by every
gRPC TLS stack); key files are written with mode 0600 and never overwritten
by accident.

Reading those sealing keys back (:func:`certified_sealing_keys`): a key table
handed out with the route table is only as good as whoever hands it out, so a
peer accepts a sealing key only from a certificate that chains to the CA, is
within its validity dates and names exactly one party. An exchange (or anyone
else on the path) that swaps a certificate in transit cannot produce one the CA
signed for that party with another key: the trust assumption shrinks to the one
mTLS already makes, that the CA key is safe.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from fedspark.federation._errors import CertificateError, SealingKeyError
from fedspark.federation.security._tls import (
    PARTY_URI_PREFIX,
    TlsConfig,
    own_certificate_problem,
    party_dns_name,
    party_uri,
)

CA_CERT_NAME = "ca.pem"
CA_KEY_NAME = "ca.key"
DEFAULT_CA_DAYS = 3650
DEFAULT_PARTY_DAYS = 825
"""At most 825 days, the longest validity common TLS clients accept for a leaf certificate."""

_CLOCK_SKEW = datetime.timedelta(minutes=5)

SEALING_KEY_OID = x509.ObjectIdentifier("2.25.23479970438705363368834243207714616912")
"""Extension holding a party's raw 32-byte X25519 public sealing key (a UUID-based OID, X.667)."""


@dataclass(frozen=True)
class CaFiles:
    """Where ``init_ca`` wrote the CA: its certificate (share it) and key (keep it offline)."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class PartyFiles:
    """Where ``issue_party_cert`` wrote a party's material (all a gateway needs)."""

    cert: Path
    key: Path
    ca_cert: Path

    def tls_config(self) -> TlsConfig:
        """This material as the ``tls=`` option of ``GrpcTransport`` / ``create_gateway``."""
        return TlsConfig(self.ca_cert, self.cert, self.key)


def init_ca(out_dir: Path | str, *, name: str = "fedspark federation CA", days: int = DEFAULT_CA_DAYS, overwrite: bool = False) -> CaFiles:
    """Create a federation CA in ``out_dir`` (``ca.pem``, ``ca.key``).

    Refuses to replace an existing CA unless ``overwrite``: a new CA key
    silently invalidates every party certificate issued so far.
    """
    folder = Path(out_dir)
    files = CaFiles(folder / CA_CERT_NAME, folder / CA_KEY_NAME)
    _refuse_overwrite([files.cert, files.key], overwrite)
    if days < 1:
        raise CertificateError(str(files.cert), f"a CA must be valid for at least one day, not {days}")
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    _write_key(files.key, key)
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return files


def issue_party_cert(
    ca_dir: Path | str,
    out_dir: Path | str,
    party_id: str,
    *,
    hosts: Sequence[str] = ("127.0.0.1", "localhost"),
    days: int = DEFAULT_PARTY_DAYS,
    overwrite: bool = False,
    sealing_key: bytes | None = None,
    not_before: datetime.datetime | None = None,
) -> PartyFiles:
    """Issue ``party_id``'s gateway certificate from the CA in ``ca_dir`` into ``out_dir``.

    Writes ``party-<id>.pem``, ``party-<id>.key`` and a copy of ``ca.pem``,
    so ``out_dir`` alone configures the party's gateway
    (``TlsConfig.from_dir(out_dir, party_id)``). ``hosts`` are the names and
    addresses peers will dial; IP literals become IP SANs. ``sealing_key`` (a
    raw X25519 public key) is certified along with the party id. ``not_before``
    (default: now) starts the validity earlier or later, e.g. to make an expired
    certificate for a test.
    """
    party_id = str(party_id)
    if not party_id or any(ch in party_id for ch in "/:, ") or not party_id.isprintable():
        raise CertificateError(party_id, "a party id must be non-empty, printable, without '/', ':', ',' or spaces")
    ca_folder, folder = Path(ca_dir), Path(out_dir)
    ca_key, ca_cert = _load_ca(ca_folder)
    files = PartyFiles(folder / f"party-{party_id}.pem", folder / f"party-{party_id}.key", folder / CA_CERT_NAME)
    _refuse_overwrite([files.cert, files.key], overwrite)
    key = ec.generate_private_key(ec.SECP256R1())
    start = not_before if not_before is not None else _now() - _CLOCK_SKEW
    names: list[x509.GeneralName] = [
        x509.UniformResourceIdentifier(party_uri(party_id)),
        x509.DNSName(party_dns_name(party_id)),
    ]
    for host in dict.fromkeys(hosts):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host.strip("[]"))))
        except ValueError:
            names.append(x509.DNSName(host))
    if sealing_key is not None and len(sealing_key) != 32:
        raise CertificateError(party_id, f"a sealing key is a 32-byte X25519 public key, not {len(sealing_key)} bytes")
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"party-{party_id}")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        # One certificate for both directions: gateways serve and dial.
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()), critical=False)  # type: ignore[arg-type]
    )
    if sealing_key is not None:
        builder = builder.add_extension(x509.UnrecognizedExtension(SEALING_KEY_OID, sealing_key), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    folder.mkdir(parents=True, exist_ok=True)
    _write_key(files.key, key)
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if files.ca_cert.resolve() != (ca_folder / CA_CERT_NAME).resolve():
        shutil.copyfile(ca_folder / CA_CERT_NAME, files.ca_cert)
    return files


def _load_ca(folder: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    cert_path, key_path = folder / CA_CERT_NAME, folder / CA_KEY_NAME
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError) as exc:
        raise CertificateError(str(cert_path), f"cannot load the CA certificate: {exc}") from exc
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise CertificateError(str(key_path), f"cannot load the CA key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CertificateError(str(key_path), "the CA key is not an EC key made by `fedspark certs init`")
    if key.public_key().public_numbers() != cert.public_key().public_numbers():  # type: ignore[union-attr]
        raise CertificateError(str(key_path), f"this key does not belong to the CA certificate {cert_path}")
    return key, cert


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)


def _refuse_overwrite(paths: Sequence[Path], overwrite: bool) -> None:
    if overwrite:
        return
    for path in paths:
        if path.exists():
            raise CertificateError(str(path), "already exists (pass overwrite=True to replace it)")


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


# ------------------------------------------------------------ sealing keys vouched for by the CA

def certified_sealing_keys(ca_cert: Path | str, certificates: Iterable[Path | str]) -> dict[str, bytes]:
    """``{party_id: sealing key}`` from party certificates, each checked against ``ca_cert``.

    Raises ``SealingKeyError`` naming the certificate file when one is not
    issued by the CA, expired, names no single party, carries no sealing key,
    or names a party another certificate already named with another key.
    """
    keys: dict[str, bytes] = {}
    for path in certificates:
        party, key = _certified_key(Path(ca_cert), Path(path))
        if keys.get(party, key) != key:
            raise SealingKeyError(str(path), f"party {party} is named by two certificates with different sealing keys")
        keys[party] = key
    return keys


def _certified_key(ca_cert: Path, path: Path) -> tuple[str, bytes]:
    problem = own_certificate_problem(TlsConfig(ca_cert, path, path))
    if problem is not None:
        raise SealingKeyError(str(path), f"the certificate cannot vouch for a sealing key: {problem}")
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        names = x509.SubjectAlternativeName([])
    uris = names.get_values_for_type(x509.UniformResourceIdentifier)
    parties = {uri[len(PARTY_URI_PREFIX) :] for uri in uris if uri.startswith(PARTY_URI_PREFIX)}
    if len(parties) != 1:
        raise SealingKeyError(str(path), f"the certificate must name exactly one party, it names {sorted(parties)}")
    (party,) = parties
    try:
        extension = cert.extensions.get_extension_for_oid(SEALING_KEY_OID).value
    except x509.ExtensionNotFound:
        raise SealingKeyError(str(path), f"the certificate of party {party} carries no sealing key") from None
    raw = extension.value if isinstance(extension, x509.UnrecognizedExtension) else b""
    if len(raw) != 32:
        raise SealingKeyError(str(path), f"the sealing key of party {party} is not a 32-byte X25519 key")
    return party, raw
