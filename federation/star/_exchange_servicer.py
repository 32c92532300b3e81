"""The gRPC face of an exchange: each incoming call relayed as one call to the receiver's gateway.

The exchange speaks the same ``Gateway`` service as a party, so a party's
transport needs no other client: its routes simply all point here. The
header (first request of a Transfer or Push) says where a message goes;
Heartbeat and Ping carry no header, so the sending transport names their
destination in the ``fedspark-dst-party`` metadata.

Relaying is symmetric (:func:`~fedspark.federation.star._relay_servicer.relay_stream`,
shared with a party gateway's outbound relay): requests flow downstream as
they arrive, replies (acks) flow back, and the receiver's final status (with
its refusal reason) is handed back unchanged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, cast

import grpc

from fedspark.federation import codec
from fedspark.federation import federation_pb2 as pb
from fedspark.federation import federation_pb2_grpc as pb_grpc
from fedspark.federation._errors import CodecError, CorruptMessage, MessageRefused
from fedspark.federation.star._relay_servicer import metadata_value, relay_failure, relay_stream, relay_timeout
from fedspark.federation.transport._chunks import ChunkPart, Header, checksum
from fedspark.federation.transport._gateway import refusal_for
from fedspark.federation.transport._servicer import DST_METADATA_KEY, _identity, _refuse

if TYPE_CHECKING:
    from fedspark.federation.star._exchange import Exchange

log = logging.getLogger("fedspark.federation.exchange")


class ExchangeServicer(pb_grpc.GatewayServicer):
    """Serves one :class:`Exchange`."""

    def __init__(self, exchange: Exchange) -> None:
        self._exchange = exchange

    def Transfer(
        self, request_iterator: Iterator[pb.TransferRequest], context: grpc.ServicerContext
    ) -> Iterator[pb.TransferReply]:
        requests = iter(request_iterator)
        try:
            first = next(requests, None)
            opening = codec.transfer_request_from_proto(first) if first is not None else None
            if first is None or not isinstance(opening, tuple):
                raise CorruptMessage("?", "?", "?", "a transfer must start with an open (header)")
            header = opening[0]
            address = self._route(header, context)
        except CodecError as exc:
            _refuse(context, refusal_for(exc))
        except MessageRefused as exc:
            _refuse(context, exc)
        key = header.key
        started = time.monotonic()
        stub = self._exchange.stub(key.dst.party_id, address)
        yield from relay_stream(stub, self._relayed(first, requests, header), context, self._timeout(context),
                                self._who, f"'{key.tag}' to {key.dst}", address)
        log.debug("%s: relayed %d bytes to %s in %.3fs", key, header.total_bytes, address, time.monotonic() - started)

    def Push(self, request_iterator: Iterator[pb.Chunk], context: grpc.ServicerContext) -> pb.PushAck:
        chunks = iter(request_iterator)
        try:
            first = next(chunks, None)
            part = codec.chunk_from_proto(first) if first is not None else None
            if first is None or part is None or part.header is None:
                raise CorruptMessage("?", "?", "?", "a push must start with a chunk that carries the header")
            header = part.header
            address = self._route(header, context)
        except CodecError as exc:
            _refuse(context, refusal_for(exc))
        except MessageRefused as exc:
            _refuse(context, exc)
        key = header.key

        def relayed() -> Iterator[pb.Chunk]:
            yield self._pass_chunk(header, first)
            for message in chunks:
                yield self._pass_chunk(header, message)

        stub = self._exchange.stub(key.dst.party_id, address)
        try:
            return cast(pb.PushAck, stub.Push(relayed(), timeout=self._timeout(context)))
        except grpc.RpcError as exc:
            relay_failure(context, exc, self._who, f"'{key.tag}' to {key.dst}", address)

    def Heartbeat(self, request: pb.HeartbeatRequest, context: grpc.ServicerContext) -> pb.HeartbeatReply:
        party_id = _destination(context)
        try:
            self._exchange.check_speaker(request.from_party_id, _identity(context), "heartbeat")
            if party_id is None:
                raise CorruptMessage(request.job_id, "heartbeat", f"party {request.from_party_id}",
                                     f"a heartbeat through exchange {self._exchange.name} must name its "
                                     f"destination party ({DST_METADATA_KEY} metadata)")
        except MessageRefused as exc:
            _refuse(context, exc)
        reply = self._forward("Heartbeat", request, party_id, request.job_id, request.from_party_id, context)
        return cast(pb.HeartbeatReply, reply)

    def Ping(self, request: pb.PingRequest, context: grpc.ServicerContext) -> pb.PingReply:
        """Without a destination, the exchange answers for itself; with one, the party does."""
        party_id = _destination(context)
        if party_id is None:
            return codec.ping_reply_to_proto(self._exchange.name)
        return cast(pb.PingReply, self._forward("Ping", request, party_id, "-", request.from_party_id, context))

    def _forward(
        self, method: str, request: object, party_id: str, job_id: str, sender: str, context: grpc.ServicerContext
    ) -> object:
        """Relay a one-request call (Heartbeat, Ping) to ``party_id``'s gateway and return its reply."""
        what = f"{method.lower()} to party {party_id}"
        try:
            address = self._exchange.address(party_id, job_id, method.lower(), f"party {sender}")
        except MessageRefused as exc:
            _refuse(context, exc)
        call = getattr(self._exchange.stub(party_id, address), method)
        try:
            return call(request, timeout=self._timeout(context))
        except grpc.RpcError as exc:
            relay_failure(context, exc, self._who, what, address)

    # ------------------------------------------------------------ helpers

    def _route(self, header: Header, context: grpc.ServicerContext) -> str:
        key = header.key
        self._exchange.check_sender(key, _identity(context))
        return self._exchange.address(key.dst.party_id, key.job_id, key.tag, str(key.src))

    def _relayed(
        self, first: pb.TransferRequest, requests: Iterator[pb.TransferRequest], header: Header
    ) -> Iterator[pb.TransferRequest]:
        """The sender's requests as they arrive, chunks recorded (and, in tests, tampered with)."""
        yield first
        for request in requests:
            if request.HasField("chunk"):
                passed = self._pass_chunk(header, request.chunk)
                if passed is not request.chunk:  # tampered (tests): a copy, which is slow for large chunks
                    request.chunk.CopyFrom(passed)
            yield request

    def _pass_chunk(self, header: Header, chunk: pb.Chunk) -> pb.Chunk:
        exchange = self._exchange
        if exchange.tamper is not None:
            data = exchange.tamper(header.key, chunk.index, chunk.data)
            if data != chunk.data:  # a malicious relay would fix the checksum, so the test does too
                chunk = codec.chunk_to_proto(ChunkPart(chunk.index, data, checksum(data),
                                                       header if chunk.HasField("header") else None))
        if exchange.tap is not None:
            exchange.tap.record_chunk(header, chunk.index, chunk.data)
        return chunk

    def _timeout(self, context: grpc.ServicerContext) -> float:
        return relay_timeout(context, self._exchange.rpc_timeout_s)

    @property
    def _who(self) -> str:
        return f"exchange {self._exchange.name}"


def _destination(context: grpc.ServicerContext) -> str | None:
    return metadata_value(context, DST_METADATA_KEY)
