"""The federation layer: how parties exchange values, and nothing about what they compute.

Algorithms get a :class:`Context` (``ctx.hosts.put("wx", v)``); underneath, a
:class:`Federation` encodes values with :mod:`fedspark.federation.codec` (typed
scalars and Arrow IPC, never pickle) and hands keyed envelopes to a
:class:`Transport`: :class:`LoopbackTransport` inside one process, or
:class:`GrpcTransport` between gateways.

The gRPC names (``GrpcTransport``, ``Gateway``, ``create_gateway``) and the
certificate tools (``init_ca``, ``issue_party_cert``, which need
``cryptography``) are loaded on first use, so code that only needs contexts and
the loopback transport imports neither.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fedspark.federation._chunks import DEFAULT_CHUNK_BYTES, MAX_CHUNK_BYTES
from fedspark.federation._context import Context, Parties, Party
from fedspark.federation._errors import (
    BindFailed,
    CertificateError,
    CodecError,
    CorruptMessage,
    DeliveryFailed,
    DuplicateRecv,
    DuplicateSend,
    EmptyGroup,
    ForwardFailed,
    HandshakeFailed,
    IdentityMismatch,
    InvalidName,
    InvalidRoster,
    MessageRefused,
    MessageTooLarge,
    NoRoute,
    NotAMember,
    PayloadTooLarge,
    PeerSilent,
    PeerTimeout,
    PeerUnreachable,
    RefusalReason,
    RelayRefused,
    SealBroken,
    SealingKeyError,
    SendRefused,
    TableIncomplete,
    TransportClosed,
    UnknownDestination,
    UnknownJob,
    UnknownParty,
    UnknownPayloadKind,
    UnsupportedPayload,
    WrongRecipient,
)
from fedspark.federation._faults import ALWAYS, Fault, FaultEvent, FaultKind, FaultPlan
from fedspark.federation._federation import Federation
from fedspark.federation._loopback_transport import LoopbackHub, LoopbackTransport
from fedspark.federation._mailbox import DEFAULT_MEMORY_LIMIT_BYTES
from fedspark.federation._message import Envelope, JobState, MessageKey, PayloadKind
from fedspark.federation._spill import ReceivedPayload
from fedspark.federation._table_source import RowCursor, TableRows
from fedspark.federation._tap import RecordingTap
from fedspark.federation._tls import TlsConfig
from fedspark.federation._transport import Transport
from fedspark.federation.codec import decode_value, encode_value
from fedspark.federation.loopback import PartyFunction, run_parties

if TYPE_CHECKING:
    from fedspark.federation._certs import CaFiles, PartyFiles, init_ca, issue_party_cert
    from fedspark.federation._exchange import Exchange, create_exchange
    from fedspark.federation._gateway import DEFAULT_MAX_MESSAGE_BYTES, Gateway
    from fedspark.federation._grpc_server import create_gateway
    from fedspark.federation._grpc_transport import GrpcTransport
    from fedspark.federation._ping import PingFailed, PingResult, ping_peer
    from fedspark.federation._seal import Sealer, SealingKey

_LAZY = {
    "Exchange": "fedspark.federation._exchange",
    "create_exchange": "fedspark.federation._exchange",
    "Sealer": "fedspark.federation._seal",
    "SealingKey": "fedspark.federation._seal",
    "DEFAULT_MAX_MESSAGE_BYTES": "fedspark.federation._gateway",
    "Gateway": "fedspark.federation._gateway",
    "create_gateway": "fedspark.federation._grpc_server",
    "GrpcTransport": "fedspark.federation._grpc_transport",
    "CaFiles": "fedspark.federation._certs",
    "PartyFiles": "fedspark.federation._certs",
    "init_ca": "fedspark.federation._certs",
    "issue_party_cert": "fedspark.federation._certs",
    "PingFailed": "fedspark.federation._ping",
    "PingResult": "fedspark.federation._ping",
    "ping_peer": "fedspark.federation._ping",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


__all__ = [
    "ALWAYS",
    "DEFAULT_CHUNK_BYTES",
    "DEFAULT_MAX_MESSAGE_BYTES",
    "DEFAULT_MEMORY_LIMIT_BYTES",
    "MAX_CHUNK_BYTES",
    "BindFailed",
    "CaFiles",
    "CertificateError",
    "CodecError",
    "Context",
    "CorruptMessage",
    "DeliveryFailed",
    "DuplicateRecv",
    "DuplicateSend",
    "EmptyGroup",
    "Envelope",
    "Exchange",
    "Fault",
    "FaultEvent",
    "FaultKind",
    "FaultPlan",
    "Federation",
    "ForwardFailed",
    "Gateway",
    "GrpcTransport",
    "HandshakeFailed",
    "IdentityMismatch",
    "InvalidName",
    "InvalidRoster",
    "JobState",
    "LoopbackHub",
    "LoopbackTransport",
    "MessageKey",
    "MessageRefused",
    "MessageTooLarge",
    "NoRoute",
    "NotAMember",
    "Parties",
    "Party",
    "PartyFiles",
    "PartyFunction",
    "PayloadKind",
    "PayloadTooLarge",
    "PeerSilent",
    "PeerTimeout",
    "PeerUnreachable",
    "PingFailed",
    "PingResult",
    "ReceivedPayload",
    "RecordingTap",
    "RefusalReason",
    "RelayRefused",
    "RowCursor",
    "SealBroken",
    "Sealer",
    "SealingKey",
    "SealingKeyError",
    "SendRefused",
    "TableIncomplete",
    "TableRows",
    "TlsConfig",
    "Transport",
    "TransportClosed",
    "UnknownDestination",
    "UnknownJob",
    "UnknownParty",
    "UnknownPayloadKind",
    "UnsupportedPayload",
    "WrongRecipient",
    "create_exchange",
    "create_gateway",
    "decode_value",
    "encode_value",
    "init_ca",
    "issue_party_cert",
    "ping_peer",
    "run_parties",
]
