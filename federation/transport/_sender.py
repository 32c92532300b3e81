"""Sending one message over the Transfer RPC: resumable, retried, never duplicated.

One attempt opens a stream, waits for the receiver to say where to start,
streams chunks from there and reads one ack per written chunk. The receiver
ends the stream early with a ``resend`` ack when a chunk arrived corrupt,
short or not at all; a stream can also break (peer restart, network,
deadline). Either way the next attempt opens a new stream and the receiver's
answer says where to resume, so acknowledged chunks are never sent twice and
the message is stored once.

Retry policy: a broken stream (``UNAVAILABLE`` or ``DEADLINE_EXCEEDED``) is
retried with exponential backoff until
``connect_deadline_s`` pass *without progress*; a resend request is retried at
once, but only ``MAX_STUCK`` times in a row without progress; any other status
is the receiver's refusal and final.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import cast

import grpc

from fedspark.federation import codec
from fedspark.federation import federation_pb2 as pb
from fedspark.federation import federation_pb2_grpc as pb_grpc
from fedspark.federation._errors import (
    DeliveryFailed,
    HandshakeFailed,
    PeerUnreachable,
    RefusalReason,
    SendRefused,
    TransportClosed,
)
from fedspark.federation._message import Envelope, MessageKey, TransferAck
from fedspark.federation.transport._chunks import Header, header_of, split
from fedspark.federation.transport._servicer import REFUSAL_METADATA_KEY

RETRYABLE_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
"""Codes after which the message may not have been stored, so a resend is due."""

FIRST_BACKOFF_S = 0.05
MAX_BACKOFF_S = 1.0
MAX_STUCK = 5
"""Resend requests in a row without progress before the sender gives up."""

_TLS_MARKERS = ("handshake", "ssl", "tls", "certificate", "hostname verification", "peer name")

Diagnose = Callable[[str, str], "str | None"]
"""(address, party_id) -> why TLS fails there, or None (see ``security._tls.diagnose``)."""


@dataclass(frozen=True)
class SendSettings:
    """How one transport sends; shared by every transfer it makes."""

    chunk_bytes: int
    connect_deadline_s: float
    rpc_timeout_s: float
    diagnose: Diagnose | None = None
    metadata: tuple[tuple[str, str], ...] = ()
    """Sent with every Transfer (an executor's relay token for its own gateway)."""


@dataclass(frozen=True)
class Delivered:
    """What the receiver reported for a completed transfer."""

    duplicate: bool
    boot_id: str
    read: tuple[MessageKey, ...]
    missing: tuple[MessageKey, ...]
    attempts: int


def transfer(
    stub: pb_grpc.GatewayStub,
    envelope: Envelope,
    address: str,
    settings: SendSettings,
    *,
    pending: tuple[MessageKey, ...] = (),
    is_closed: Callable[[], bool] = lambda: False,
) -> Delivered:
    """Deliver ``envelope`` through ``stub``; return once the receiver stored all of it."""
    key = envelope.key
    peer = str(key.dst)
    header = header_of(envelope, settings.chunk_bytes)
    deadline = time.monotonic() + settings.connect_deadline_s
    backoff = FIRST_BACKOFF_S
    best = -1
    stuck = 0
    attempts = 0
    first: TransferAck | None = None
    diagnosed = False
    while True:
        attempts += 1
        attempt = _Attempt(stub, envelope, header, settings, pending if first is None else ())
        failure = "the stream ended without an answer"
        try:
            attempt.run()
        except ValueError:  # grpc: "Cannot invoke RPC on closed channel!"
            if is_closed():
                raise TransportClosed(key.job_id, key.tag, peer, "sending") from None
            raise
        except grpc.RpcError as exc:
            if is_closed():
                raise TransportClosed(key.job_id, key.tag, peer, "sending") from None
            call = cast(grpc.Call, exc)
            code = call.code()
            details = call.details() or ""
            if code not in RETRYABLE_CODES:
                raise refused(key.job_id, key.tag, peer, call) from None
            failure = f"{code.name}: {details}"
            if code is grpc.StatusCode.UNAVAILABLE and not diagnosed:
                why = tls_failure(details, address, key.dst.party_id, settings.diagnose)
                diagnosed = why is not None or diagnosed
                if why is not None:
                    raise HandshakeFailed(key.job_id, key.tag, peer, address, why) from None
        first = first or attempt.first
        last = attempt.last
        if last is not None and last.complete:
            assert first is not None  # the first ack precedes the last
            return Delivered(first.duplicate, first.boot_id, first.read, first.missing, attempts)
        if is_closed():
            raise TransportClosed(key.job_id, key.tag, peer, "sending")
        reached = last.next_index if last is not None else -1
        if reached > best:
            best, stuck, backoff = reached, 0, FIRST_BACKOFF_S
            deadline = time.monotonic() + settings.connect_deadline_s
        elif last is not None and last.resend:
            stuck += 1
        if last is not None and last.resend:
            if stuck >= MAX_STUCK:
                raise DeliveryFailed(
                    key.job_id,
                    key.tag,
                    peer,
                    address,
                    f"the receiver asked for chunk {last.next_index} of {header.chunk_count} "
                    f"{stuck + 1} times in a row and never got it intact",
                )
            continue
        if last is not None and attempt.error is None:
            failure = f"stream ended at chunk {last.next_index} of {header.chunk_count} without completing"
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise PeerUnreachable(key.job_id, key.tag, peer, address, failure)
        time.sleep(min(backoff, remaining))
        backoff = min(backoff * 2, MAX_BACKOFF_S)


class _Attempt:
    """One Transfer stream: the request generator and the ack reader share this state."""

    def __init__(
        self,
        stub: pb_grpc.GatewayStub,
        envelope: Envelope,
        header: Header,
        settings: SendSettings,
        pending: tuple[MessageKey, ...],
    ) -> None:
        self._stub = stub
        self._envelope = envelope
        self._header = header
        self._settings = settings
        self._pending = pending
        self._cond = threading.Condition()
        self._start: int | None = None
        self._stop = False
        self.first: TransferAck | None = None
        self.last: TransferAck | None = None
        self.error: grpc.RpcError | None = None

    def run(self) -> None:
        """Stream until the receiver completes the message or ends the stream; RpcError on a break."""
        job_id = self._header.key.job_id
        responses = self._stub.Transfer(
            self._requests(), timeout=self._settings.rpc_timeout_s, metadata=self._settings.metadata or None
        )
        try:
            for reply in responses:
                ack = codec.transfer_ack_from_proto(reply, job_id)
                with self._cond:
                    if self.first is None:
                        self.first = ack
                        self._start = ack.next_index
                    self.last = ack
                    if ack.complete or ack.resend:
                        self._stop = True
                    self._cond.notify_all()
        except grpc.RpcError as exc:
            self.error = exc
            raise
        finally:
            with self._cond:
                self._stop = True
                self._cond.notify_all()

    def _requests(self) -> Iterator[pb.TransferRequest]:
        yield codec.transfer_open_to_proto(self._header, self._pending)
        with self._cond:
            self._cond.wait_for(lambda: self._start is not None or self._stop, self._settings.rpc_timeout_s)
            if self._stop or self._start is None:
                return
            start = self._start
        for part in split(self._envelope, self._settings.chunk_bytes, start):
            if self._stop:
                return
            yield codec.transfer_chunk_to_proto(part)


def refused(job_id: str, tag: str, peer: str, call: grpc.Call) -> SendRefused:
    """The receiver's final refusal, with the reason it sent in the trailing metadata."""
    reason: RefusalReason | None = None
    for name, value in call.trailing_metadata() or ():
        if name == REFUSAL_METADATA_KEY:
            try:
                reason = RefusalReason(value)
            except ValueError:
                reason = None
    detail = f"{call.code().name}: {call.details()}"
    return SendRefused(job_id, tag, peer, reason, detail)


def tls_failure(details: str, address: str, party_id: str, diagnose: Diagnose | None) -> str | None:
    """A TLS reason for an UNAVAILABLE failure, or None when it looks like any other outage.

    "Socket closed" right after connecting is what a client sees when the
    server refused it in the handshake, so it is worth a diagnosis; a refused
    connection (nobody listening) is not.
    """
    lowered = details.lower()
    looks_tls = any(marker in lowered for marker in _TLS_MARKERS)
    if not looks_tls and "socket closed" not in lowered:
        return None
    why = diagnose(address, party_id) if diagnose is not None else None
    if why is None and looks_tls:
        why = details
    return why
