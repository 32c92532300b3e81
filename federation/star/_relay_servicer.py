"""Relaying Transfer streams over gRPC: the exchange's forwarding, and a gateway's outbound relay.

:func:`relay_stream` is the one cut-through relay: requests flow downstream
as they arrive, replies (acks) flow back as the receiver sends them, and the
receiver's final status (with its refusal reason) is handed back unchanged.
An unreachable receiver becomes ``UNAVAILABLE`` for the sender, who retries
with backoff; a sender that goes away cancels the downstream call. The
exchange uses it for every message; a party's gateway uses it for the
partitions its own executors hand over (:func:`relay_outbound`, see
``_relay`` for the rules and why sealed partitions are stored first).
"""

from __future__ import annotations

import concurrent.futures
import logging
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, NoReturn, cast

import grpc

from fedspark.common import FederationError
from fedspark.federation import federation_pb2 as pb
from fedspark.federation import federation_pb2_grpc as pb_grpc
from fedspark.federation._errors import ForwardFailed, MessageRefused
from fedspark.federation._message import Envelope, TransferAck
from fedspark.federation.star._relay import RELAY_TOKEN_METADATA_KEY, OutboundRelay
from fedspark.federation.transport._chunks import ChunkPart, Header
from fedspark.federation.transport._mailbox import TransferSession
from fedspark.federation.transport._sender import RETRYABLE_CODES
from fedspark.federation.transport._servicer import REFUSAL_METADATA_KEY, _identity, _refuse, metadata_value

if TYPE_CHECKING:
    from fedspark.federation.transport._servicer import GatewayServicer

log = logging.getLogger("fedspark.federation.relay")


def relay_stream(
    stub: pb_grpc.GatewayStub,
    requests: Iterator[pb.TransferRequest],
    context: grpc.ServicerContext,
    timeout_s: float,
    who: str,
    what: str,
    address: str,
) -> Iterator[pb.TransferReply]:
    """Relay one Transfer downstream through ``stub`` and its replies back (see module doc)."""
    call = stub.Transfer(requests, timeout=timeout_s)
    context.add_callback(call.cancel)
    try:
        yield from call
    except grpc.RpcError as exc:
        relay_failure(context, exc, who, what, address)


def relay_timeout(context: grpc.ServicerContext, limit_s: float) -> float:
    """The caller's remaining deadline, capped by the relay's own (a call without one reports years)."""
    remaining = context.time_remaining()
    return limit_s if remaining is None else max(0.0, min(remaining, limit_s))


def relay_failure(context: grpc.ServicerContext, exc: grpc.RpcError, who: str, what: str, address: str) -> NoReturn:
    """Hand the receiver's failure back to the sender: same code, same refusal reason.

    A receiver that cannot be reached is ``UNAVAILABLE`` for the sender (it
    retries); anything else is the receiver's final word and passes unchanged.
    """
    call = cast(grpc.Call, exc)
    code, details = call.code(), call.details() or ""
    if code in RETRYABLE_CODES or code is grpc.StatusCode.CANCELLED:
        log.warning("%s: %s at %s failed: %s: %s", who, what, address, code.name, details)
        context.abort(grpc.StatusCode.UNAVAILABLE, f"{who}: {what} at {address}: {code.name}: {details}")
    refusal = [(k, v) for k, v in (call.trailing_metadata() or ()) if k == REFUSAL_METADATA_KEY]
    if refusal:
        context.set_trailing_metadata(tuple(refusal))
    log.warning("%s: %s refused by %s: %s: %s", who, what, address, code.name, details)
    context.abort(code, details)
    raise AssertionError("grpc's context.abort returned")  # it raises; this line satisfies the type checker


def relay_outbound(
    servicer: GatewayServicer,
    relay: OutboundRelay,
    first: pb.TransferRequest,
    header: Header,
    requests: Iterator[pb.TransferRequest],
    context: grpc.ServicerContext,
) -> Iterator[pb.TransferReply]:
    """Forward a partition this party's executor hands over: checked, then cut-through or stored and sealed."""
    key = header.key
    try:
        relay.check(header, metadata_value(context, RELAY_TOKEN_METADATA_KEY), _identity(context))
    except MessageRefused as exc:
        _refuse(context, exc)
    who, what = f"gateway of party {relay.party_id}", f"'{key.tag}' to {key.dst}"
    if not relay.forwarder.sealing:
        address, stub = relay.forwarder.relay_stub(key)
        started = time.monotonic()
        requests_down = _chain(first, requests)
        yield from relay_stream(stub, requests_down, context, relay_timeout(context, relay.rpc_timeout_s), who, what, address)
        _log_forwarded(header, "cut-through", started)
        return
    session = _Forwarding(TransferSession(relay.mailbox, header, boot_id=relay.boot_id),
                          lambda: _forward_once(relay, header, context))
    if session.done:  # stored completely by an earlier stream: its forward ran, runs, or is due
        try:
            session.forward()
        except MessageRefused as exc:
            _refuse(context, exc)
    yield from servicer.write_stream(session, header, requests, context)


class _Forwarding:
    """A ``TransferSession`` whose last chunk is acked only once the stored partition is forwarded."""

    def __init__(self, inner: TransferSession, forward: Callable[[], None]) -> None:
        self._inner = inner
        self.forward = forward

    @property
    def first_ack(self) -> TransferAck:
        return self._inner.first_ack

    @property
    def done(self) -> bool:
        return self._inner.done

    def write(self, part: ChunkPart) -> TransferAck | None:
        ack = self._inner.write(part)
        if ack is not None and ack.complete:
            self.forward()
        return ack

    def finish(self) -> TransferAck | None:
        return self._inner.finish()


def _forward_once(relay: OutboundRelay, header: Header, context: grpc.ServicerContext) -> None:
    """Seal and send the stored partition, or wait for the stream that already does.

    Whichever stream registers first takes the payload out of the outbound
    mailbox and forwards it; any other (a reconnect) waits for that result, so
    the executor never hears "complete" before the peer stored the partition.
    A failure is final for this task attempt (``ForwardFailed``).
    """
    key = header.key
    future, mine = relay.forwarding(key)
    if not mine:
        try:
            future.result(timeout=relay_timeout(context, relay.rpc_timeout_s))
        except concurrent.futures.TimeoutError:
            raise ForwardFailed(key.job_id, key.tag, str(key.dst), relay.party_id,
                                "an earlier stream is still forwarding it") from None
        return
    started = time.monotonic()
    try:
        with relay.mailbox.take_payload(key, 0.0) as payload:
            relay.forwarder.forward(Envelope(key, payload.read(), header.kind))
    except FederationError as exc:
        failure = ForwardFailed(key.job_id, key.tag, str(key.dst), relay.party_id, str(exc))
        future.set_exception(failure)
        raise failure from exc
    future.set_result(None)
    _log_forwarded(header, "sealed", started)


def _log_forwarded(header: Header, mode: str, started: float) -> None:
    """One INFO line per partition this gateway forwarded for its executors (next to the "stored" lines)."""
    key = header.key
    log.info("forwarded job=%s tag=%s seq=%d src=%s dst=%s bytes=%d mode=%s duration_ms=%.1f",
             key.job_id, key.tag, key.seq, key.src, key.dst, header.total_bytes, mode,
             (time.monotonic() - started) * 1000)


def _chain(first: pb.TransferRequest, rest: Iterator[pb.TransferRequest]) -> Iterator[pb.TransferRequest]:
    yield first
    yield from rest
