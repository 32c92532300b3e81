"""Sealing keys vouched for by the federation CA: read from party certificates, checked.

A key table handed out with the route table is only as good as whoever hands
it out. When parties have certificates, the CA can vouch for the sealing key
too: ``issue_party_cert(..., sealing_key=...)`` puts the party's X25519 public
key in its certificate, and a peer accepts it only from a certificate that
chains to the CA, is within its validity dates and names exactly one party.
An exchange (or anyone else on the path) that swaps a certificate in transit
cannot produce one the CA signed for that party with another key, so the trust
assumption shrinks to the one mTLS already makes: the CA key is safe.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from cryptography import x509

from fedspark.federation._certs import SEALING_KEY_OID
from fedspark.federation._errors import SealingKeyError
from fedspark.federation._tls import PARTY_URI_PREFIX, TlsConfig, own_certificate_problem


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
