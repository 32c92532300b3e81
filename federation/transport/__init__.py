"""Sending and receiving between gateways: the gateway and its gRPC server, the gRPC and loopback transports.

A party's :class:`Gateway` admits, writes (resumably, de-duplicated) and keeps
incoming messages in its mailbox, spilling large ones to disk, and serves the
tables its party received to the party's executors (:class:`ServedTables`);
its servicer only translates gRPC. :class:`GrpcTransport` sends through peers' gateways and
receives through its own; :class:`LoopbackTransport` applies the same rules
inside one process. Users get the names they need from ``fedspark.federation``;
the rest is exported here for tests and tools.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fedspark.federation._lazy import lazy_exports

if TYPE_CHECKING:
    from fedspark.federation._errors import (
        CorruptMessage,
        IdentityMismatch,
        MessageTooLarge,
        NotAMember,
        QuotaExceeded,
        ReadRefused,
        UnknownJob,
        UnknownPayloadKind,
        UnsupportedPayload,
        WrongRecipient,
    )
    from fedspark.federation._message import JobState, Receipt
    from fedspark.federation.transport._chunks import (
        DEFAULT_CHUNK_BYTES,
        MAX_CHUNK_BYTES,
        ChunkPart,
        Header,
        checksum,
        header_of,
        reassemble,
        split,
    )
    from fedspark.federation.transport._gateway import (
        DEFAULT_JOB_QUOTA_BYTES,
        DEFAULT_MAX_MESSAGE_BYTES,
        Gateway,
        JobAdmission,
    )
    from fedspark.federation.transport._grpc import (
        GatewayOptions,
        GrpcTransport,
        Heartbeats,
        Peers,
        Security,
        SendOptions,
    )
    from fedspark.federation.transport._loopback import LoopbackHub, LoopbackTransport
    from fedspark.federation.transport._mailbox import DEFAULT_MEMORY_LIMIT_BYTES, Mailbox, TransferSession, WriteStatus
    from fedspark.federation.transport._outbox import Outbox
    from fedspark.federation.transport._ping import PingFailed, PingResult, ping_peer
    from fedspark.federation.transport._plaintext import is_loopback_address, is_loopback_host
    from fedspark.federation.transport._sender import SendSettings, transfer
    from fedspark.federation.transport._served import READ_TOKEN_METADATA_KEY, PartRead, ServedTables
    from fedspark.federation.transport._server import (
        CLIENT_CHANNEL_OPTIONS,
        SERVER_OPTIONS,
        create_gateway,
        dial,
        dial_in_party,
    )
    from fedspark.federation.transport._servicer import REFUSAL_METADATA_KEY, GatewayServicer
    from fedspark.federation.transport._spill import ReceivedPayload
    from fedspark.federation.transport._tap import RecordingTap

_EXPORTS = {
    "CorruptMessage": "fedspark.federation._errors",
    "IdentityMismatch": "fedspark.federation._errors",
    "MessageTooLarge": "fedspark.federation._errors",
    "NotAMember": "fedspark.federation._errors",
    "QuotaExceeded": "fedspark.federation._errors",
    "ReadRefused": "fedspark.federation._errors",
    "UnknownJob": "fedspark.federation._errors",
    "UnknownPayloadKind": "fedspark.federation._errors",
    "UnsupportedPayload": "fedspark.federation._errors",
    "WrongRecipient": "fedspark.federation._errors",
    "JobState": "fedspark.federation._message",
    "Receipt": "fedspark.federation._message",
    "ChunkPart": "fedspark.federation.transport._chunks",
    "DEFAULT_CHUNK_BYTES": "fedspark.federation.transport._chunks",
    "Header": "fedspark.federation.transport._chunks",
    "MAX_CHUNK_BYTES": "fedspark.federation.transport._chunks",
    "checksum": "fedspark.federation.transport._chunks",
    "header_of": "fedspark.federation.transport._chunks",
    "reassemble": "fedspark.federation.transport._chunks",
    "split": "fedspark.federation.transport._chunks",
    "DEFAULT_JOB_QUOTA_BYTES": "fedspark.federation.transport._gateway",
    "DEFAULT_MAX_MESSAGE_BYTES": "fedspark.federation.transport._gateway",
    "Gateway": "fedspark.federation.transport._gateway",
    "JobAdmission": "fedspark.federation.transport._gateway",
    "GatewayOptions": "fedspark.federation.transport._grpc",
    "GrpcTransport": "fedspark.federation.transport._grpc",
    "Heartbeats": "fedspark.federation.transport._grpc",
    "Peers": "fedspark.federation.transport._grpc",
    "Security": "fedspark.federation.transport._grpc",
    "SendOptions": "fedspark.federation.transport._grpc",
    "LoopbackHub": "fedspark.federation.transport._loopback",
    "LoopbackTransport": "fedspark.federation.transport._loopback",
    "DEFAULT_MEMORY_LIMIT_BYTES": "fedspark.federation.transport._mailbox",
    "Mailbox": "fedspark.federation.transport._mailbox",
    "TransferSession": "fedspark.federation.transport._mailbox",
    "WriteStatus": "fedspark.federation.transport._mailbox",
    "Outbox": "fedspark.federation.transport._outbox",
    "PingFailed": "fedspark.federation.transport._ping",
    "PingResult": "fedspark.federation.transport._ping",
    "ping_peer": "fedspark.federation.transport._ping",
    "is_loopback_address": "fedspark.federation.transport._plaintext",
    "is_loopback_host": "fedspark.federation.transport._plaintext",
    "SendSettings": "fedspark.federation.transport._sender",
    "transfer": "fedspark.federation.transport._sender",
    "CLIENT_CHANNEL_OPTIONS": "fedspark.federation.transport._server",
    "SERVER_OPTIONS": "fedspark.federation.transport._server",
    "create_gateway": "fedspark.federation.transport._server",
    "dial": "fedspark.federation.transport._server",
    "dial_in_party": "fedspark.federation.transport._server",
    "READ_TOKEN_METADATA_KEY": "fedspark.federation.transport._served",
    "PartRead": "fedspark.federation.transport._served",
    "ServedTables": "fedspark.federation.transport._served",
    "GatewayServicer": "fedspark.federation.transport._servicer",
    "REFUSAL_METADATA_KEY": "fedspark.federation.transport._servicer",
    "ReceivedPayload": "fedspark.federation.transport._spill",
    "RecordingTap": "fedspark.federation.transport._tap",
}

__getattr__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "CLIENT_CHANNEL_OPTIONS",
    "ChunkPart",
    "CorruptMessage",
    "DEFAULT_CHUNK_BYTES",
    "DEFAULT_JOB_QUOTA_BYTES",
    "DEFAULT_MAX_MESSAGE_BYTES",
    "DEFAULT_MEMORY_LIMIT_BYTES",
    "Gateway",
    "GatewayOptions",
    "GatewayServicer",
    "GrpcTransport",
    "Header",
    "Heartbeats",
    "IdentityMismatch",
    "JobAdmission",
    "JobState",
    "LoopbackHub",
    "LoopbackTransport",
    "MAX_CHUNK_BYTES",
    "Mailbox",
    "MessageTooLarge",
    "NotAMember",
    "Outbox",
    "PartRead",
    "Peers",
    "QuotaExceeded",
    "PingFailed",
    "PingResult",
    "READ_TOKEN_METADATA_KEY",
    "REFUSAL_METADATA_KEY",
    "ReadRefused",
    "Receipt",
    "ReceivedPayload",
    "RecordingTap",
    "SERVER_OPTIONS",
    "Security",
    "SendOptions",
    "SendSettings",
    "ServedTables",
    "TransferSession",
    "UnknownJob",
    "UnknownPayloadKind",
    "UnsupportedPayload",
    "WriteStatus",
    "WrongRecipient",
    "checksum",
    "create_gateway",
    "dial",
    "dial_in_party",
    "header_of",
    "is_loopback_address",
    "is_loopback_host",
    "ping_peer",
    "reassemble",
    "split",
    "transfer",
]
