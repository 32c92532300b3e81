"""mTLS between gateways: configuration, gRPC credentials, and who the peer is.

Every gateway presents a certificate issued by the federation CA (see
:mod:`._certs`) naming its party (``CN=party-9999`` and the URI SAN
``fedspark://party/9999``). gRPC checks the chain and the validity dates in
the handshake; what gRPC cannot know is that a party may only speak for
itself, so the gateway compares the URI SAN with the party every message
header claims (:class:`~fedspark.federation.IdentityMismatch` otherwise).

The connecting side checks the other direction: it asks gRPC to verify the
server's certificate against the *party* it means to reach (the DNS SAN
``party-<id>``, via ``ssl_target_name_override``), so a route that points at
the wrong gateway fails in the handshake instead of delivering a value to
the wrong organisation.

When a handshake fails, gRPC tells the client little ("Socket closed" when the
server refused the client's certificate). :func:`diagnose` then looks at this
side's own certificate and probes the peer, to put a reason in the error.
"""

from __future__ import annotations

import datetime
import socket
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from fedspark.federation._errors import CertificateError

if TYPE_CHECKING:
    import grpc

PARTY_URI_PREFIX = "fedspark://party/"
"""URI SAN prefix naming the party a certificate speaks for."""


def party_uri(party_id: str) -> str:
    return f"{PARTY_URI_PREFIX}{party_id}"


def party_dns_name(party_id: str) -> str:
    """The DNS SAN every party certificate carries, so a client can ask for a party by name."""
    return f"party-{party_id}"


@dataclass(frozen=True)
class TlsConfig:
    """A party's TLS material: the federation CA, its own certificate and key (PEM files).

    Parameters
    ----------
    ca_cert
        The federation CA certificate; peers must chain to it.
    cert, key
        This party's certificate (issued by that CA, naming this party) and key.
    verify_peer_party
        When connecting, require the peer's certificate to name the party the
        route table says lives there (on by default; off only checks the chain
        and the host name).
    """

    ca_cert: Path | str
    cert: Path | str
    key: Path | str
    verify_peer_party: bool = True
    _pem: dict[str, bytes] = field(default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def from_dir(cls, folder: Path | str, party_id: str) -> TlsConfig:
        """The files ``issue_party_cert`` writes: ``ca.pem``, ``party-<id>.pem``, ``party-<id>.key``."""
        base = Path(folder)
        return cls(base / "ca.pem", base / f"party-{party_id}.pem", base / f"party-{party_id}.key")

    def pem(self, which: str) -> bytes:
        """The bytes of ``ca_cert``, ``cert`` or ``key``, read once; a missing file is a ``CertificateError``."""
        cached = self._pem.get(which)
        if cached is None:
            path = Path(getattr(self, which))
            try:
                cached = path.read_bytes()
            except OSError as exc:
                raise CertificateError(str(path), f"cannot read {which}: {exc.strerror or exc}") from exc
            if b"-----BEGIN" not in cached:
                raise CertificateError(str(path), f"{which} is not a PEM file")
            self._pem[which] = cached
        return cached

    def check(self) -> None:
        """Fail now, naming the file, if this party's own certificate cannot work.

        Reads all three files, and (when ``cryptography`` is installed)
        checks that the certificate is within its validity dates and signed by
        the CA: an expired or foreign certificate would otherwise only show up
        as a peer hanging up mid-handshake.
        """
        for which in ("ca_cert", "cert", "key"):
            self.pem(which)
        problem = own_certificate_problem(self)
        if problem is not None:
            raise CertificateError(str(self.cert), problem)


def server_credentials(tls: TlsConfig) -> grpc.ServerCredentials:
    """Require and verify client certificates against the CA (mutual TLS)."""
    import grpc

    return grpc.ssl_server_credentials(
        [(tls.pem("key"), tls.pem("cert"))], root_certificates=tls.pem("ca_cert"), require_client_auth=True
    )


def in_party_server_credentials(tls: TlsConfig) -> grpc.ServerCredentials:
    """The gateway's in-party port: it proves who it is, but asks no client certificate.

    Its callers are this party's own executors, which hold no key material;
    they are authenticated per table by a token instead (see ``star._relay``). A
    caller without a certificate can never pass as a party (``party_of_auth_context``
    gives None), so this port cannot deliver a peer's message either.
    """
    import grpc

    return grpc.ssl_server_credentials([(tls.pem("key"), tls.pem("cert"))], root_certificates=None, require_client_auth=False)


def in_party_channel_credentials(ca_pem: bytes) -> grpc.ChannelCredentials:
    """An executor's credentials towards its own gateway: the federation CA only, no key."""
    import grpc

    return grpc.ssl_channel_credentials(root_certificates=ca_pem)


def channel_credentials(tls: TlsConfig) -> grpc.ChannelCredentials:
    import grpc

    return grpc.ssl_channel_credentials(
        root_certificates=tls.pem("ca_cert"), private_key=tls.pem("key"), certificate_chain=tls.pem("cert")
    )


def channel_options(tls: TlsConfig, party_id: str) -> list[tuple[str, str]]:
    """Make the handshake check the server's certificate for ``party_id``'s name."""
    if not tls.verify_peer_party:
        return []
    return [("grpc.ssl_target_name_override", party_dns_name(party_id))]


def party_of_auth_context(auth: Mapping[str, object]) -> str | None:
    """The party a verified peer certificate speaks for, or None (plaintext, or no party named).

    Taken from the URI SAN ``fedspark://party/<id>``; a certificate naming
    several parties names none, since it could not be held to one. (gRPC's
    auth context maps each property to a list of bytes values.)
    """
    if not auth or list(_values(auth, "transport_security_type")) != [b"ssl"]:
        return None
    uris = [value.decode("utf-8", "replace") for value in _values(auth, "peer_uri")]
    parties = {uri[len(PARTY_URI_PREFIX) :] for uri in uris if uri.startswith(PARTY_URI_PREFIX)}
    if len(parties) != 1:
        return None
    (party,) = parties
    return party or None


def _parties_named(peer_cert: Mapping[str, object]) -> set[str]:
    """Party ids in the URI SANs of a certificate as ``ssl.getpeercert()`` returns it."""
    names = peer_cert.get("subjectAltName", ())
    if not isinstance(names, tuple):
        return set()
    return {
        value[len(PARTY_URI_PREFIX) :]
        for kind, value in (pair for pair in names if isinstance(pair, tuple) and len(pair) == 2)
        if kind == "URI" and isinstance(value, str) and value.startswith(PARTY_URI_PREFIX)
    }


def _values(auth: Mapping[str, object], name: str) -> Sequence[bytes]:
    values = auth.get(name, ())
    if not isinstance(values, (list, tuple)):
        return ()
    return [value for value in values if isinstance(value, bytes)]


def own_certificate_problem(tls: TlsConfig, now: datetime.datetime | None = None) -> str | None:
    """Why this party's certificate would be refused by peers, or None.

    Needs ``cryptography``; without it, nothing is checked here (the peer
    still refuses a bad certificate in the handshake).
    """
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives.asymmetric import ec, rsa
        from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
    except ImportError:  # pragma: no cover - cryptography is how certificates are made
        return None
    try:
        cert = x509.load_pem_x509_certificate(tls.pem("cert"))
        ca = x509.load_pem_x509_certificate(tls.pem("ca_cert"))
    except ValueError as exc:
        return f"cannot parse the certificate or the CA: {exc}"
    moment = now or datetime.datetime.now(datetime.UTC)
    if moment > cert.not_valid_after_utc:
        return f"expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
    if moment < cert.not_valid_before_utc:
        return f"not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
    if cert.issuer != ca.subject:
        return f"issued by '{cert.issuer.rfc4514_string()}', not by the CA '{ca.subject.rfc4514_string()}' ({tls.ca_cert})"
    public_key = ca.public_key()
    hash_algorithm = cert.signature_hash_algorithm
    try:
        if isinstance(public_key, ec.EllipticCurvePublicKey) and hash_algorithm is not None:
            public_key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(hash_algorithm))
        elif isinstance(public_key, rsa.RSAPublicKey) and hash_algorithm is not None:
            public_key.verify(cert.signature, cert.tbs_certificate_bytes, PKCS1v15(), hash_algorithm)
    except Exception:  # noqa: BLE001 - cryptography raises InvalidSignature and friends
        return f"not signed by the CA in {tls.ca_cert} (a CA of the same name, but another key)"
    return None


def diagnose(address: str, tls: TlsConfig | None, party_id: str, timeout_s: float = 2.0) -> str | None:
    """Why a connection to ``address`` fails at the TLS level, if that can be told; else None.

    Checks this side's certificate first, then probes the peer with one
    handshake (standard library ``ssl``): a plaintext peer for a TLS client, a
    TLS peer for a plaintext client, a peer certificate that does not verify,
    or a peer that completes the handshake and then hangs up (it refused our
    certificate). Never raises.
    """
    if tls is not None:
        try:
            own = own_certificate_problem(tls)
        except CertificateError as exc:
            return str(exc)
        if own is not None:
            return f"this party's certificate {tls.cert}: {own}"
    host, _, port_text = address.rpartition(":")
    host = host.strip("[]")
    try:
        port = int(port_text)
    except ValueError:
        return None
    try:
        return _probe(host, port, tls, party_id, timeout_s)
    except OSError:
        return None


def _probe(host: str, port: int, tls: TlsConfig | None, party_id: str, timeout_s: float) -> str | None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.set_alpn_protocols(["h2"])
    if tls is None:
        context.verify_mode = ssl.CERT_NONE
    else:
        context.load_verify_locations(cadata=tls.pem("ca_cert").decode("ascii"))
        context.load_cert_chain(str(tls.cert), str(tls.key))
    with socket.create_connection((host, port), timeout=timeout_s) as raw:
        try:
            with context.wrap_socket(raw, server_hostname=party_dns_name(party_id)) as wrapped:
                if tls is None:
                    return "the peer requires TLS, but this transport has no tls configured"
                named = _parties_named(wrapped.getpeercert() or {})
                if tls.verify_peer_party and named and party_id not in named:
                    return (
                        f"the gateway at this address is party {', '.join(sorted(named))}, not party {party_id} "
                        "(its certificate says so): check the route table"
                    )
                wrapped.settimeout(timeout_s)
                try:
                    first = wrapped.recv(1)
                except TimeoutError:
                    return None
                if first == b"":
                    return (
                        "the peer closed the connection after the TLS handshake: it refused this party's "
                        f"certificate ({tls.cert}); is it issued by the federation's CA and still valid?"
                    )
                return None
        except ssl.SSLCertVerificationError as exc:
            return (
                f"the peer's certificate does not verify against {tls.ca_cert if tls else 'the CA'}: "
                f"{exc.verify_message} (is it issued by another federation's CA?)"
            )
        except ssl.SSLError as exc:
            if tls is None:
                return None  # the peer does not speak TLS either: the failure is elsewhere
            if "WRONG_VERSION_NUMBER" in str(exc) or "record layer" in str(exc):
                return "the peer does not speak TLS (a plaintext gateway), but this transport requires it"
            return f"TLS handshake failed: {exc.reason or exc}"
