"""The gRPC face of a gateway: unpack, name the peer, call the gateway, map errors to status codes.

All rules live in :class:`~fedspark.federation.transport._gateway.Gateway`; this module
only translates. The refusal reason also travels as trailing metadata, so the
sender gets the same ``RefusalReason`` the gateway raised, not a guess from
the status code. Refusals are logged here, with the peer's address: this is
the one place where the accepting side sees who was turned away and why
(TLS handshake failures happen inside gRPC's core and never reach Python).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, NoReturn, Protocol

import grpc

from fedspark.federation import codec
from fedspark.federation import federation_pb2 as pb
from fedspark.federation import federation_pb2_grpc as pb_grpc
from fedspark.federation._errors import (
    CodecError,
    CorruptMessage,
    MessageRefused,
    RefusalReason,
    TransportClosed,
)
from fedspark.federation._message import TransferAck
from fedspark.federation.security._tls import party_of_auth_context
from fedspark.federation.transport._chunks import ChunkPart, Header
from fedspark.federation.transport._gateway import Gateway, refusal_for
from fedspark.federation.transport._served import READ_TOKEN_METADATA_KEY

if TYPE_CHECKING:
    from fedspark.federation.star._relay import OutboundRelay

REFUSAL_METADATA_KEY = "fedspark-refusal"
DST_METADATA_KEY = "fedspark-dst-party"
"""Names the party a Heartbeat or Ping is for, so an exchange can forward it (its body does not)."""

STATUS_OF_REFUSAL: dict[RefusalReason, grpc.StatusCode] = {
    RefusalReason.UNKNOWN_JOB: grpc.StatusCode.NOT_FOUND,
    RefusalReason.NOT_A_MEMBER: grpc.StatusCode.PERMISSION_DENIED,
    RefusalReason.WRONG_RECIPIENT: grpc.StatusCode.PERMISSION_DENIED,
    RefusalReason.CORRUPT: grpc.StatusCode.DATA_LOSS,
    RefusalReason.TOO_LARGE: grpc.StatusCode.RESOURCE_EXHAUSTED,
    RefusalReason.QUOTA: grpc.StatusCode.RESOURCE_EXHAUSTED,
    RefusalReason.UNSUPPORTED: grpc.StatusCode.INVALID_ARGUMENT,
    RefusalReason.IDENTITY: grpc.StatusCode.PERMISSION_DENIED,
    RefusalReason.NO_ROUTE: grpc.StatusCode.NOT_FOUND,
    RefusalReason.RELAY_REFUSED: grpc.StatusCode.PERMISSION_DENIED,
    RefusalReason.FORWARD_FAILED: grpc.StatusCode.ABORTED,
    RefusalReason.READ_REFUSED: grpc.StatusCode.PERMISSION_DENIED,
}

log = logging.getLogger("fedspark.federation.gateway")


class StreamSession(Protocol):
    """What ``write_stream`` drives: a ``TransferSession``, or one that forwards when complete (``star._relay_servicer``)."""

    @property
    def first_ack(self) -> TransferAck: ...

    @property
    def done(self) -> bool: ...

    def write(self, part: ChunkPart) -> TransferAck | None: ...

    def finish(self) -> TransferAck | None: ...


RelayOutbound = Callable[
    ["GatewayServicer", "OutboundRelay", pb.TransferRequest, Header, Iterator[pb.TransferRequest], grpc.ServicerContext],
    Iterator[pb.TransferReply],
]
"""Forwards a partition this party's executor hands over (``star._relay_servicer.relay_outbound``)."""


class GatewayServicer(pb_grpc.GatewayServicer):
    """Serves one :class:`Gateway`.

    The outbound relay is handed in (``create_gateway`` passes the star package's) rather than
    imported: the relay speaks this servicer's protocol, so importing it here would close a loop.
    """

    def __init__(self, gateway: Gateway, *, relay_outbound: RelayOutbound) -> None:
        self._gateway = gateway
        self._relay_outbound = relay_outbound

    @property
    def gateway(self) -> Gateway:
        return self._gateway

    def Push(self, request_iterator: Iterator[pb.Chunk], context: grpc.ServicerContext) -> pb.PushAck:
        identity = _identity(context)
        try:
            receipt = self._gateway.receive(
                (codec.chunk_from_proto(chunk) for chunk in request_iterator), identity=identity
            )
        except MessageRefused as exc:
            _refuse(context, exc)
        except TransportClosed as exc:
            context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        return codec.receipt_to_proto(receipt)

    def Transfer(
        self, request_iterator: Iterator[pb.TransferRequest], context: grpc.ServicerContext
    ) -> Iterator[pb.TransferReply]:
        identity = _identity(context)
        requests = iter(request_iterator)
        try:
            first = next(requests, None)
            opening = codec.transfer_request_from_proto(first) if first is not None else None
            if not isinstance(opening, tuple):
                raise CorruptMessage("?", "?", "?", "a transfer must start with an open (header)")
            header, pending = opening
            relay = self._gateway.relay if header.key.dst.party_id != self._gateway.party_id else None
            session = self._gateway.open_transfer(header, pending, identity=identity) if relay is None else None
        except CodecError as exc:
            _refuse(context, refusal_for(exc))
        except MessageRefused as exc:
            _refuse(context, exc)
        except TransportClosed as exc:
            context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        if session is None:  # this party's executor hands a table partition over for the peer
            assert relay is not None and first is not None  # by the branch above
            yield from self._relay_outbound(self, relay, first, header, requests, context)
            return
        yield from self.write_stream(session, header, requests, context)

    def write_stream(
        self, session: StreamSession, header: Header, requests: Iterator[pb.TransferRequest], context: grpc.ServicerContext
    ) -> Iterator[pb.TransferReply]:
        """Answer the open, write the stream's chunks through ``session`` and ack them (see ``TransferSession``)."""
        job_id = header.key.job_id
        started = time.monotonic()
        yield codec.transfer_ack_to_proto(session.first_ack, job_id)
        if session.done:
            _log_stored(header, started, duplicate=True)
            return
        for request in requests:
            try:
                part = codec.transfer_request_from_proto(request)
                if not isinstance(part, ChunkPart):
                    raise CorruptMessage(job_id, header.key.tag, str(header.key.src), "a second open in one stream")
                ack = session.write(part)
            except CodecError as exc:
                _refuse(context, refusal_for(exc, header.key))
            except MessageRefused as exc:
                _refuse(context, exc)
            except TransportClosed as exc:
                context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
            if ack is not None:
                yield codec.transfer_ack_to_proto(ack, job_id)
                if ack.complete:
                    _log_stored(header, started)
            if session.done:
                return
        ack = session.finish()
        if ack is not None:
            yield codec.transfer_ack_to_proto(ack, job_id)

    def Heartbeat(self, request: pb.HeartbeatRequest, context: grpc.ServicerContext) -> pb.HeartbeatReply:
        identity = _identity(context)
        try:
            beat = codec.heartbeat_from_proto(request)
            reply = self._gateway.heartbeat(beat, identity=identity)
        except CodecError as exc:
            _refuse(context, refusal_for(exc))
        except MessageRefused as exc:
            _refuse(context, exc)
        return codec.heartbeat_reply_to_proto(reply, beat.job_id)

    def Ping(self, request: pb.PingRequest, context: grpc.ServicerContext) -> pb.PingReply:
        return codec.ping_reply_to_proto(self._gateway.party_id)

    def ReadPart(self, request: pb.ReadPartRequest, context: grpc.ServicerContext) -> Iterator[pb.PartChunk]:
        """Stream a received table's partition to one of this party's executors (see ``_served``)."""
        try:
            read = codec.part_read_from_proto(request)
            chunks = self._gateway.served.read(read, metadata_value(context, READ_TOKEN_METADATA_KEY), _identity(context))
        except CodecError as exc:
            _refuse(context, refusal_for(exc))
        except MessageRefused as exc:
            _refuse(context, exc)
        started, sent = time.monotonic(), 0
        try:
            for data in chunks:
                sent += len(data)
                yield codec.part_chunk_to_proto(data)
        except OSError as exc:  # the job closed (its files deleted) while the partition was read
            context.abort(grpc.StatusCode.NOT_FOUND, f"job {read.job_id}: '{read.tag}' from {read.src}: "
                          f"partition {read.partition} is no longer stored: {exc}")
        log.info("served job=%s tag=%s src=%s partition=%d offset=%d bytes=%d to=%s duration_ms=%.1f",
                 read.job_id, read.tag, read.src, read.partition, read.offset, sent, context.peer(),
                 (time.monotonic() - started) * 1000)


def _log_stored(header: Header, started: float, *, duplicate: bool = False) -> None:
    """One INFO line per stored message: what an operator greps for when a job is slow or stuck."""
    key = header.key
    log.info(
        "stored job=%s tag=%s seq=%d src=%s dst=%s kind=%s bytes=%d duration_ms=%.1f%s",
        key.job_id, key.tag, key.seq, key.src, key.dst, header.kind, header.total_bytes,
        (time.monotonic() - started) * 1000, " duplicate" if duplicate else "",
    )


def metadata_value(context: grpc.ServicerContext, key: str) -> str | None:
    """The caller's metadata value for ``key`` (as text), or None."""
    for name, value in context.invocation_metadata():
        if name == key:
            return value if isinstance(value, str) else value.decode("utf-8", "replace")
    return None


def _identity(context: grpc.ServicerContext) -> str | None:
    """The party the peer's verified certificate names (None over plaintext)."""
    return party_of_auth_context(context.auth_context())


def _refuse(context: grpc.ServicerContext, exc: MessageRefused) -> NoReturn:
    log.warning("refused a message from %s (reason=%s): %s", context.peer(), exc.reason.value, exc)
    context.set_trailing_metadata(((REFUSAL_METADATA_KEY, exc.reason.value),))
    context.abort(STATUS_OF_REFUSAL[exc.reason], str(exc))
