"""The federation layer: how parties exchange values, and nothing about what they compute.

Algorithms get a :class:`Context` (``ctx.hosts.put("wx", v)``); underneath, a
:class:`Federation` encodes values with :mod:`fedspark.federation.codec` (typed
scalars and Arrow IPC, never pickle) and hands keyed envelopes to a
:class:`Transport`: :class:`LoopbackTransport` inside one process, or
:class:`GrpcTransport` between gateways.

This package exports what users and algorithms need; the parts live in
subpackages by concern, each exporting the rest of its names for tests and
tools: ``transport`` (sending and receiving, gateways), ``tables``
(distributed tables), ``star`` (the exchange and relays) and ``security``
(TLS, certificates, sealing).

The gRPC names and the certificate tools (``init_ca``, ``issue_party_cert``,
which need ``cryptography``) are loaded on first use, so code that only needs
contexts and the loopback transport imports neither.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fedspark.federation._context import Context, Parties, Party
from fedspark.federation._errors import (
    BindFailed,
    CertificateError,
    CodecError,
    DeliveryFailed,
    DuplicateRecv,
    DuplicateSend,
    EmptyGroup,
    HandshakeFailed,
    InsecureTransport,
    InvalidName,
    InvalidRoster,
    MessageRefused,
    NoRoute,
    PayloadTooLarge,
    PeerSilent,
    PeerTimeout,
    PeerUnreachable,
    PlaintextOffLoopback,
    RefusalReason,
    SealBroken,
    SealingKeyError,
    SendRefused,
    TableIncomplete,
    TransportClosed,
    UnknownParty,
    UnsealedStar,
)
from fedspark.federation._federation import Federation
from fedspark.federation._lazy import lazy_exports
from fedspark.federation._message import Envelope, MessageKey, PayloadKind
from fedspark.federation._transport import Transport
from fedspark.federation.codec import decode_value, encode_value
from fedspark.federation.loopback import PartyFunction, run_parties
from fedspark.federation.security._tls import TlsConfig
from fedspark.federation.tables._source import RowCursor, TableRows
from fedspark.federation.transport._loopback import LoopbackHub, LoopbackTransport

if TYPE_CHECKING:
    from fedspark.federation.security._certs import init_ca, issue_party_cert
    from fedspark.federation.security._pair_keys import PairKeys
    from fedspark.federation.security._seal import Sealer, SealingKey
    from fedspark.federation.star._exchange import create_exchange
    from fedspark.federation.transport._grpc import GatewayOptions, GrpcTransport, Heartbeats, Security, SendOptions
    from fedspark.federation.transport._ping import PingFailed, ping_peer
    from fedspark.federation.transport._server import create_gateway

__getattr__ = lazy_exports(
    __name__,
    {
        "GatewayOptions": "fedspark.federation.transport._grpc",
        "GrpcTransport": "fedspark.federation.transport._grpc",
        "Heartbeats": "fedspark.federation.transport._grpc",
        "Security": "fedspark.federation.transport._grpc",
        "SendOptions": "fedspark.federation.transport._grpc",
        "create_gateway": "fedspark.federation.transport._server",
        "PingFailed": "fedspark.federation.transport._ping",
        "ping_peer": "fedspark.federation.transport._ping",
        "create_exchange": "fedspark.federation.star._exchange",
        "PairKeys": "fedspark.federation.security._pair_keys",
        "Sealer": "fedspark.federation.security._seal",
        "SealingKey": "fedspark.federation.security._seal",
        "init_ca": "fedspark.federation.security._certs",
        "issue_party_cert": "fedspark.federation.security._certs",
    },
)

__all__ = [
    # Algorithms: contexts, parties, and what a context hands back.
    "Context",
    "Parties",
    "Party",
    "RowCursor",
    "TableRows",
    # Wiring a party: the federation over a transport.
    "Envelope",
    "Federation",
    "MessageKey",
    "PayloadKind",
    "Transport",
    "decode_value",
    "encode_value",
    # In one process.
    "LoopbackHub",
    "LoopbackTransport",
    "PartyFunction",
    "run_parties",
    # Between gateways.
    "GatewayOptions",
    "GrpcTransport",
    "Heartbeats",
    "Security",
    "SendOptions",
    "create_exchange",
    "create_gateway",
    "PingFailed",
    "ping_peer",
    # Identity and sealing.
    "PairKeys",
    "Sealer",
    "SealingKey",
    "TlsConfig",
    "init_ca",
    "issue_party_cert",
    # Errors a sending or receiving party sees (the gateway's own refusals are in .transport).
    "BindFailed",
    "CertificateError",
    "CodecError",
    "DeliveryFailed",
    "DuplicateRecv",
    "DuplicateSend",
    "EmptyGroup",
    "HandshakeFailed",
    "InsecureTransport",
    "InvalidName",
    "InvalidRoster",
    "MessageRefused",
    "NoRoute",
    "PayloadTooLarge",
    "PeerSilent",
    "PeerTimeout",
    "PeerUnreachable",
    "PlaintextOffLoopback",
    "RefusalReason",
    "SealBroken",
    "SealingKeyError",
    "SendRefused",
    "TableIncomplete",
    "TransportClosed",
    "UnknownParty",
    "UnsealedStar",
]
