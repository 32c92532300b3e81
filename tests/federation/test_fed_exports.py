"""The public names of fedspark.federation, pinned so removals are deliberate."""

from __future__ import annotations

import subprocess
import sys

import fedspark.federation as federation

EXPECTED = {
    # Algorithms: contexts, parties, and what a context hands back.
    "Context", "Parties", "Party", "RowCursor", "TableRows",
    # Wiring a party: the federation over a transport.
    "Envelope", "Federation", "MessageKey", "PayloadKind", "Transport", "decode_value", "encode_value",
    # In one process.
    "LoopbackHub", "LoopbackTransport", "PartyFunction", "run_parties",
    # Between gateways (issue 18, item 5: GrpcTransport's options come in four groups).
    "GatewayOptions", "GrpcTransport", "Heartbeats", "Security", "SendOptions",
    "create_exchange", "create_gateway", "PingFailed", "ping_peer",
    # Identity and sealing.
    "PairKeys", "Sealer", "SealingKey", "TlsConfig", "init_ca", "issue_party_cert",
    # Errors a sending or receiving party sees; the gateway's own refusals are in .transport and .star.
    "BindFailed", "CertificateError", "CodecError", "DeliveryFailed", "DuplicateRecv", "DuplicateSend",
    "EmptyGroup", "HandshakeFailed", "InvalidName", "InvalidRoster", "MessageRefused", "NoRoute",
    "PayloadTooLarge", "PeerSilent", "PeerTimeout", "PeerUnreachable", "RefusalReason", "SealBroken",
    "SealingKeyError", "SendRefused", "TableIncomplete", "TransportClosed", "UnknownParty",
    # Transport settings refused before anything starts (issue 20, item 5).
    "InsecureTransport", "PlaintextOffLoopback", "UnsealedStar",
}

SUBPACKAGES = ("transport", "tables", "star", "security")


def test_exported_names_are_pinned() -> None:
    assert set(federation.__all__) == EXPECTED
    for name in federation.__all__:
        assert getattr(federation, name) is not None, name


def test_every_subpackage_export_resolves() -> None:
    """Tests and tools import a subpackage's names from its ``__init__``, never from its modules."""
    import importlib

    for name in SUBPACKAGES:
        package = importlib.import_module(f"fedspark.federation.{name}")
        assert package.__all__, name
        for export in package.__all__:
            assert getattr(package, export) is not None, f"{name}.{export}"


def test_errors_belong_to_the_fedspark_hierarchy() -> None:
    from fedspark.common import FederationError, FedsparkError, ProtocolError

    errors = [getattr(federation, n) for n in federation.__all__ if isinstance(getattr(federation, n), type)]
    errors = [e for e in errors if issubclass(e, BaseException)]
    assert errors and all(issubclass(e, FedsparkError) for e in errors)
    assert issubclass(federation.PeerTimeout, FederationError)
    assert issubclass(federation.MessageRefused, ProtocolError)


def test_importing_the_package_does_not_import_grpc() -> None:
    """Algorithms import fedspark.federation; grpc must load only with the gRPC transport."""
    code = "import sys, fedspark.federation; print('grpc' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_importing_the_package_does_not_import_cryptography() -> None:
    """Only the certificate tools need cryptography; contexts and transports must not."""
    code = "import sys, fedspark.federation; print('cryptography' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
