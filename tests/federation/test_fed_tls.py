"""mTLS with party identity: certificates, and every way a peer is refused.

Real TLS servers on 127.0.0.1 port 0. The refusals checked: a certificate
naming another party, a certificate from another CA, an expired certificate,
a plaintext client, a TLS client at a plaintext gateway, and a route that
leads to the wrong party.
"""

from __future__ import annotations

import datetime
import logging
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

pytest.importorskip("cryptography", reason="certificates are made with cryptography")

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from fedspark.common import PartyRef, Role
from fedspark.federation import (
    CertificateError,
    Envelope,
    Federation,
    GrpcTransport,
    HandshakeFailed,
    MessageKey,
    PayloadKind,
    RefusalReason,
    Security,
    SendOptions,
    SendRefused,
    TlsConfig,
    create_gateway,
    init_ca,
    issue_party_cert,
)
from fedspark.federation import federation_pb2 as pb
from fedspark.federation import federation_pb2_grpc as pb_grpc
from fedspark.federation.security import PartyFiles, diagnose, party_of_auth_context
from fedspark.federation.transport import IdentityMismatch

GUEST = PartyRef(Role.GUEST, "9999")
HOST = PartyRef(Role.HOST, "10000")
JOB = "job-tls"
MEMBERS = [GUEST, HOST]


@dataclass(frozen=True)
class Pki:
    ca_dir: Path
    guest: PartyFiles
    host: PartyFiles
    stranger: PartyFiles  # party 4242, same CA
    foreign_host: PartyFiles  # party 10000 from another CA
    expired_host: PartyFiles


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    root = tmp_path_factory.mktemp("pki")
    init_ca(root / "ca", name="Test federation CA", days=30)
    init_ca(root / "other-ca", name="Test federation CA", days=30)  # same name, other key
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=10)
    return Pki(
        ca_dir=root / "ca",
        guest=issue_party_cert(root / "ca", root / "guest", "9999", days=5),
        host=issue_party_cert(root / "ca", root / "host", "10000", days=5),
        stranger=issue_party_cert(root / "ca", root / "stranger", "4242", days=5),
        foreign_host=issue_party_cert(root / "other-ca", root / "foreign", "10000", days=5),
        expired_host=issue_party_cert(root / "ca", root / "expired", "10000", hosts=("127.0.0.1",), not_before=past, days=1),
    )


# ------------------------------------------------------------------ certificates


def test_ca_files_and_key_permissions(pki: Pki) -> None:
    cert = x509.load_pem_x509_certificate((pki.ca_dir / "ca.pem").read_bytes())
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Test federation CA"
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert stat.S_IMODE(os.stat(pki.ca_dir / "ca.key").st_mode) == 0o600
    with pytest.raises(CertificateError, match="already exists"):
        init_ca(pki.ca_dir)


def test_party_certificate_names_the_party_and_its_addresses(pki: Pki) -> None:
    cert = x509.load_pem_x509_certificate(pki.guest.cert.read_bytes())
    assert cert.subject.rfc4514_string() == "CN=party-9999"
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["fedspark://party/9999"]
    assert san.get_values_for_type(x509.DNSName) == ["party-9999", "localhost"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(usages) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    ca = x509.load_pem_x509_certificate(pki.guest.ca_cert.read_bytes())
    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey)
    cert.verify_directly_issued_by(ca)
    assert stat.S_IMODE(os.stat(pki.guest.key).st_mode) == 0o600
    assert TlsConfig.from_dir(pki.guest.cert.parent, "9999") == pki.guest.tls_config()


@pytest.mark.parametrize("party_id", ["", "a/b", "x:1", "two words"])
def test_unusable_party_ids_are_refused(pki: Pki, tmp_path: Path, party_id: str) -> None:
    with pytest.raises(CertificateError, match="a party id must be"):
        issue_party_cert(pki.ca_dir, tmp_path, party_id)


def test_issuing_needs_the_matching_ca_key(pki: Pki, tmp_path: Path) -> None:
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "ca.pem").write_bytes((pki.ca_dir / "ca.pem").read_bytes())
    (mixed / "ca.key").write_bytes((pki.ca_dir.parent / "other-ca" / "ca.key").read_bytes())
    with pytest.raises(CertificateError, match="does not belong to the CA certificate"):
        issue_party_cert(mixed, tmp_path / "out", "9999")


def test_bad_local_material_fails_at_start_naming_the_file(pki: Pki, tmp_path: Path) -> None:
    expired = pki.expired_host.tls_config()
    with pytest.raises(CertificateError, match=r"party-10000.pem: expired on "):
        GrpcTransport("10000", security=Security(tls=expired))
    mixed = TlsConfig(pki.guest.ca_cert, pki.foreign_host.cert, pki.foreign_host.key)
    with pytest.raises(CertificateError, match="not signed by the CA"):
        create_gateway("10000", tls=mixed)
    with pytest.raises(CertificateError, match="cannot read cert"):
        TlsConfig(pki.guest.ca_cert, tmp_path / "missing.pem", pki.guest.key).check()


# ------------------------------------------------------------------ servers


@pytest.fixture
def tls_guest(pki: Pki) -> Iterator[GrpcTransport]:
    """Party 9999's TLS gateway, job open for guest 9999 and host 10000."""
    guest = GrpcTransport(GUEST, send=SendOptions(connect_deadline_s=2.0), security=Security(tls=pki.guest.tls_config()))
    guest.open_job(JOB, MEMBERS)
    yield guest
    guest.close()


@pytest.fixture
def make_host(tls_guest: GrpcTransport) -> Iterator[object]:
    """Build host transports (any TLS material) routed to the TLS guest; all closed afterwards."""
    made: list[GrpcTransport] = []

    def make(tls: TlsConfig | None, guest_address: str | None = None, **options: float) -> GrpcTransport:
        send = SendOptions(**{"connect_deadline_s": 2.0, **options})  # type: ignore[arg-type]
        host = GrpcTransport("10000", send=send, security=Security(tls=tls))
        made.append(host)
        host.open_job(JOB, MEMBERS)
        host.set_routes({"9999": guest_address or f"127.0.0.1:{tls_guest.port}", "10000": f"127.0.0.1:{host.port}"})
        return host

    yield make
    for host in made:
        host.close()


def to_guest(tag: str) -> Envelope:
    return Envelope(MessageKey(JOB, tag, HOST, GUEST), b"secret", PayloadKind.RAW)


def test_parties_with_their_own_certificates_talk(pki: Pki, tls_guest: GrpcTransport, make_host: object) -> None:
    host = make_host(pki.host.tls_config())  # type: ignore[operator]
    tls_guest.set_routes({"9999": f"127.0.0.1:{tls_guest.port}", "10000": f"127.0.0.1:{host.port}"})
    value = {"ciphertexts": [2**2047 + 1, 3], "round": 1}
    Federation(JOB, HOST, MEMBERS, host).send("enc", value, to=GUEST)
    assert Federation(JOB, GUEST, MEMBERS, tls_guest).recv("enc", frm=HOST) == value
    Federation(JOB, GUEST, MEMBERS, tls_guest).send("back", 7, to=HOST)
    assert Federation(JOB, HOST, MEMBERS, host).recv("back", frm=GUEST) == 7
    assert host.heartbeat("9999", JOB).party_id == "9999"
    assert host.ping("9999") == "9999"


def test_a_certificate_of_another_party_is_refused_and_logged(
    pki: Pki, make_host: object, caplog: pytest.LogCaptureFixture
) -> None:
    """Party 4242 (a valid member of the federation) tries to speak as host 10000."""
    impostor = make_host(pki.stranger.tls_config())  # type: ignore[operator]
    with caplog.at_level(logging.WARNING, logger="fedspark.federation.gateway"), pytest.raises(SendRefused) as info:
        impostor.send(to_guest("wx"))
    error = info.value
    assert (error.job_id, error.tag, error.peer, error.reason) == (JOB, "wx", "guest:9999", RefusalReason.IDENTITY)
    assert "'wx' claims to come from host:10000, but the sender's certificate names party 4242" in str(error)
    assert any("refused a message from ipv4:127.0.0.1:" in r.message and "names party 4242" in r.message for r in caplog.records)
    with pytest.raises(SendRefused, match="certificate names party 4242"):
        impostor.heartbeat("9999", JOB)


def test_a_certificate_from_another_ca_is_refused(pki: Pki, tls_guest: GrpcTransport, make_host: object) -> None:
    host = make_host(pki.foreign_host.tls_config())  # type: ignore[operator]
    with pytest.raises(HandshakeFailed) as info:
        host.send(to_guest("wx"))
    error = info.value
    assert (error.job_id, error.tag, error.peer, error.address) == (JOB, "wx", "guest:9999", f"127.0.0.1:{tls_guest.port}")
    assert "the peer's certificate does not verify against" in error.reason
    assert "another federation's CA" in error.reason
    # The gateway side refuses it too, independently of what the client trusts:
    assert raw_ping(tls_guest.port, pki.guest.ca_cert, pki.foreign_host) == grpc.StatusCode.UNAVAILABLE


def test_an_expired_certificate_is_refused(pki: Pki, tls_guest: GrpcTransport) -> None:
    assert raw_ping(tls_guest.port, pki.guest.ca_cert, pki.expired_host) == grpc.StatusCode.UNAVAILABLE
    why = diagnose(f"127.0.0.1:{tls_guest.port}", pki.expired_host.tls_config(), "9999")
    assert why is not None and "party-10000.pem: expired on" in why


def test_a_valid_certificate_passes_the_same_raw_check(pki: Pki, tls_guest: GrpcTransport) -> None:
    assert raw_ping(tls_guest.port, pki.guest.ca_cert, pki.host) is None


def test_a_plaintext_client_is_refused(pki: Pki, tls_guest: GrpcTransport, make_host: object) -> None:
    plain = make_host(None, connect_deadline_s=10.0)  # type: ignore[operator]
    with pytest.raises(HandshakeFailed) as info:
        plain.send(to_guest("wx"))  # told at the first failure, not after the 10 s deadline
    assert info.value.peer == "guest:9999"
    assert "the peer requires TLS, but this transport has no tls configured" in str(info.value)
    channel = grpc.insecure_channel(f"127.0.0.1:{tls_guest.port}")
    try:
        with pytest.raises(grpc.RpcError) as raw:
            pb_grpc.GatewayStub(channel).Ping(pb.PingRequest(from_party_id="10000"), timeout=2)  # type: ignore[no-untyped-call]
    finally:
        channel.close()
    assert raw.value.code() == grpc.StatusCode.UNAVAILABLE


def test_a_tls_client_at_a_plaintext_gateway_is_told_so(pki: Pki, make_host: object) -> None:
    plain_gateway, port = create_gateway("9999")
    try:
        host = make_host(pki.host.tls_config(), guest_address=f"127.0.0.1:{port}")  # type: ignore[operator]
        with pytest.raises(HandshakeFailed, match="does not speak TLS"):
            host.send(to_guest("wx"))
    finally:
        plain_gateway.stop(grace_s=0)


def test_a_route_to_the_wrong_party_fails_in_the_handshake(pki: Pki, make_host: object) -> None:
    """The route for 9999 leads to party 4242's gateway: nothing may be delivered there."""
    wrong = GrpcTransport("4242", security=Security(tls=pki.stranger.tls_config()))
    try:
        host = make_host(pki.host.tls_config(), guest_address=f"127.0.0.1:{wrong.port}")  # type: ignore[operator]
        with pytest.raises(HandshakeFailed) as info:
            host.send(to_guest("wx"))
        assert info.value.peer == "guest:9999"
        assert "the gateway at this address is party 4242, not party 9999" in info.value.reason
    finally:
        wrong.close()


def raw_ping(port: int, ca_cert: Path, client: PartyFiles) -> grpc.StatusCode | None:
    """Ping with a raw gRPC client (no local checks): None if accepted, else the status."""
    credentials = grpc.ssl_channel_credentials(ca_cert.read_bytes(), client.key.read_bytes(), client.cert.read_bytes())
    channel = grpc.secure_channel(f"127.0.0.1:{port}", credentials)
    try:
        pb_grpc.GatewayStub(channel).Ping(pb.PingRequest(from_party_id="10000"), timeout=2)  # type: ignore[no-untyped-call]
    except grpc.RpcError as exc:
        return exc.code()
    finally:
        channel.close()
    return None


@pytest.mark.parametrize(
    ("auth", "party"),
    [
        ({}, None),
        ({"transport_security_type": [b"insecure"]}, None),
        ({"transport_security_type": [b"ssl"], "peer_uri": [b"fedspark://party/9999"]}, "9999"),
        ({"transport_security_type": [b"ssl"], "peer_uri": [b"spiffe://x/y"]}, None),
        ({"transport_security_type": [b"ssl"], "peer_uri": [b"fedspark://party/1", b"fedspark://party/2"]}, None),
        ({"transport_security_type": [b"ssl"], "peer_uri": [b"fedspark://party/"]}, None),
    ],
    ids=["plaintext", "insecure", "party", "other uri", "two parties", "empty id"],
)
def test_party_of_auth_context(auth: dict[str, list[bytes]], party: str | None) -> None:
    assert party_of_auth_context(auth) == party


def test_identity_mismatch_is_a_refusal_with_the_certified_party() -> None:
    error = IdentityMismatch(JOB, "t", "host:10000", None)
    assert error.reason is RefusalReason.IDENTITY and "certificate names no party" in str(error)
