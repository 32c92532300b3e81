"""The public names of fedspark.federation, pinned so removals are deliberate."""

from __future__ import annotations

import subprocess
import sys

import fedspark.federation as federation

EXPECTED = {
    "DEFAULT_CHUNK_BYTES", "DEFAULT_MAX_MESSAGE_BYTES", "MAX_CHUNK_BYTES",
    "BindFailed", "CodecError", "Context", "CorruptMessage", "DuplicateRecv", "DuplicateSend",
    "EmptyGroup", "Envelope", "Federation", "Gateway", "GrpcTransport", "InvalidName",
    "InvalidRoster", "LoopbackHub", "LoopbackTransport", "MessageKey", "MessageRefused",
    "MessageTooLarge", "NoRoute", "NotAMember", "Parties", "Party", "PartyFunction", "RowCursor", "TableRows",
    "PayloadKind", "PeerTimeout", "PeerUnreachable", "RecordingTap", "RefusalReason",
    "SendRefused", "Transport", "TransportClosed", "UnknownJob", "UnknownParty",
    "WrongRecipient", "create_gateway", "decode_value", "encode_value", "run_parties",
    # Streams, mailbox, retries and fault injection (issue 5, items 1-3).
    "ALWAYS", "DEFAULT_MEMORY_LIMIT_BYTES", "DeliveryFailed", "Fault", "FaultEvent", "FaultKind",
    "FaultPlan", "JobState", "PayloadTooLarge", "PeerSilent", "ReceivedPayload",
    "UnknownPayloadKind", "UnsupportedPayload",
    # mTLS with party identity (issue 5, item 4).
    "CaFiles", "CertificateError", "HandshakeFailed", "IdentityMismatch", "PartyFiles", "TlsConfig",
    "init_ca", "issue_party_cert",
    # Star topology: exchange and end-to-end sealing (issue 5, item 5).
    "Exchange", "create_exchange", "Sealer", "SealingKey", "SealBroken", "SealingKeyError", "UnknownDestination",
    # Distributed tables (issue 5, item 6).
    "TableIncomplete",
    # Executors hand partitions to their own gateway, which forwards them (issue 5, item 6).
    "RelayRefused", "ForwardFailed",
    # Operability (issue 5, item 7).
    "PingFailed", "PingResult", "ping_peer",
}


def test_exported_names_are_pinned() -> None:
    assert set(federation.__all__) == EXPECTED
    for name in federation.__all__:
        assert getattr(federation, name) is not None, name


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
