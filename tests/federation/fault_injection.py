"""Fault injection for the chunk streams between gateways, installed on production objects from outside.

Retries, resumption and de-duplication are only believable when they are seen
to work against the faults they exist for. A :class:`FaultPlan` names them by
the chunk index within a message (optionally only for one tag) and fires each
a limited number of ``times``, so a test can say "corrupt chunk 2 of 'w' once"
and check that the exact value still arrives once, or "always" and check that
the sender ends with a clear error instead of looping.

Nothing in ``fedspark.federation`` knows about faults; the ``inject`` fixture
(an :class:`Injector`) puts the same plan on either side of a stream:

* ``inject.sender(transport, plan)`` wraps the stubs the transport's
  ``peers`` hand out, and acts on chunks *being sent* (``KILL`` breaks the
  stream before chunk N leaves, ``KILL_AFTER_WRITE`` right after it left; the
  sender sees the ``UNAVAILABLE`` a broken connection gives);
* ``inject.gateway(gateway, plan)`` wraps the session a gateway's servicer
  writes a stream through, and acts on chunks *arriving* (``KILL`` aborts the
  stream before chunk N is written, ``KILL_AFTER_WRITE`` writes it and aborts
  before the ack: the "ack lost" case).
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import grpc
import pytest

from fedspark.federation import GrpcTransport
from fedspark.federation import federation_pb2 as pb
from fedspark.federation.transport import ChunkPart, Gateway, GatewayServicer, Header, TransferSession

INJECTED_KILL = "fault injection: stream killed"


class FaultKind(str, enum.Enum):
    """What happens to the chunk a fault matches."""

    DROP = "drop"
    """The chunk silently goes missing."""
    DELAY = "delay"
    """The chunk is held back ``delay_s`` seconds."""
    TRUNCATE = "truncate"
    """The chunk loses the second half of its bytes (its checksum does not change)."""
    CORRUPT = "corrupt"
    """One byte of the chunk is flipped (its checksum does not change)."""
    KILL = "kill"
    """The stream breaks before the chunk is sent (sender) or written (gateway)."""
    KILL_AFTER_WRITE = "kill_after_write"
    """The stream breaks right after the chunk was sent (sender) or written (gateway)."""

    def __str__(self) -> str:
        return self.value


ALWAYS = 1 << 30
"""``times`` for a fault that never wears off."""


@dataclass(frozen=True)
class Fault:
    """One planned fault: ``kind`` at chunk ``chunk`` of messages under ``tag`` (any if None)."""

    kind: FaultKind
    chunk: int
    tag: str | None = None
    times: int = 1
    delay_s: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", FaultKind(self.kind))
        if self.chunk < 0 or self.times < 1 or self.delay_s < 0:
            raise ValueError(f"invalid fault {self}: chunk >= 0, times >= 1 and delay_s >= 0 are required")


@dataclass(frozen=True)
class FaultEvent:
    """A fault that fired: what, on which message tag and chunk."""

    kind: FaultKind
    tag: str
    chunk: int


class FaultPlan:
    """A thread-safe list of faults, each firing at most ``times`` times; records what fired."""

    def __init__(self, *faults: Fault) -> None:
        self._left = {index: fault.times for index, fault in enumerate(faults)}
        self._faults = faults
        self._fired: list[FaultEvent] = []
        self._lock = threading.Lock()

    @classmethod
    def of(cls, kind: FaultKind | str, chunk: int, *, tag: str | None = None, times: int = 1, delay_s: float = 0.0) -> FaultPlan:
        """A plan of one fault: ``FaultPlan.of("corrupt", 2, tag="w")``."""
        return cls(Fault(FaultKind(kind), chunk, tag, times, delay_s))

    def __add__(self, other: FaultPlan) -> FaultPlan:
        return FaultPlan(*self._faults, *other._faults)

    def take(self, tag: str, chunk: int) -> Fault | None:
        """The fault to apply to chunk ``chunk`` of a message under ``tag`` now, if any (consumes it)."""
        with self._lock:
            for index, fault in enumerate(self._faults):
                if fault.chunk == chunk and fault.tag in (None, tag) and self._left[index] > 0:
                    self._left[index] -= 1
                    self._fired.append(FaultEvent(fault.kind, tag, chunk))
                    return fault
        return None

    @property
    def fired(self) -> list[FaultEvent]:
        """What fired so far, oldest first."""
        with self._lock:
            return list(self._fired)

    def __repr__(self) -> str:
        return f"FaultPlan({', '.join(f'{f.kind}@{f.chunk}' + (f'[{f.tag}]' if f.tag else '') for f in self._faults)})"


def damage(fault: Fault, part: ChunkPart) -> ChunkPart:
    """The chunk as ``TRUNCATE`` or ``CORRUPT`` leaves it; other kinds leave it as is."""
    data, crc32 = _damaged(fault.kind, part.data, part.crc32)
    return replace(part, data=data, crc32=crc32)


def _damaged(kind: FaultKind, data: bytes, crc32: int) -> tuple[bytes, int]:
    if kind is FaultKind.TRUNCATE:
        return data[: len(data) // 2], crc32
    if kind is FaultKind.CORRUPT:
        return (bytes([data[0] ^ 0xFF]) + data[1:], crc32) if data else (data, crc32 ^ 1)
    return data, crc32


class Injector:
    """Installs plans on gateways and transports for one test; the ``inject`` fixture undoes it after."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self._monkeypatch = monkeypatch
        self._gateways: dict[int, tuple[Gateway, FaultPlan]] = {}
        real = GatewayServicer.write_stream
        planned = self._gateways

        def write_stream(
            servicer: GatewayServicer, session: Any, header: Header, requests: Iterator[pb.TransferRequest],
            context: grpc.ServicerContext,
        ) -> Iterator[pb.TransferReply]:
            entry = planned.get(id(servicer.gateway))
            if entry is not None:
                session = _FaultySession(session, entry[1], header.key.tag, context)
            return real(servicer, session, header, requests, context)

        monkeypatch.setattr(GatewayServicer, "write_stream", write_stream)

    def gateway(self, gateway: Gateway, plan: FaultPlan) -> FaultPlan:
        """Damage the chunks ``gateway`` receives, as planned."""
        self._gateways[id(gateway)] = (gateway, plan)
        return plan

    def sender(self, transport: GrpcTransport, plan: FaultPlan) -> FaultPlan:
        """Damage the chunks ``transport`` sends (its own messages and what it forwards for executors)."""
        real = transport.peers.stub

        def stub(address: str, party_id: str, key: Any = None) -> Any:
            return _FaultyStub(real(address, party_id, key), plan)

        self._monkeypatch.setattr(transport.peers, "stub", stub)
        return plan


class _FaultySession:
    """The gateway's side: a stream session whose chunks meet the plan before they are written."""

    def __init__(self, inner: TransferSession, plan: FaultPlan, tag: str, context: grpc.ServicerContext) -> None:
        self._inner, self._plan, self._tag, self._context = inner, plan, tag, context

    @property
    def first_ack(self) -> Any:
        return self._inner.first_ack

    @property
    def done(self) -> bool:
        return self._inner.done

    def write(self, part: ChunkPart) -> Any:
        fault = self._plan.take(self._tag, part.index)
        if fault is None:
            return self._inner.write(part)
        if fault.kind is FaultKind.DROP:
            return None
        if fault.kind is FaultKind.DELAY:
            _pause(self._context, fault.delay_s)
        if fault.kind is FaultKind.KILL:
            self._context.abort(grpc.StatusCode.UNAVAILABLE, INJECTED_KILL)
        ack = self._inner.write(damage(fault, part))
        if fault.kind is FaultKind.KILL_AFTER_WRITE:
            self._context.abort(grpc.StatusCode.UNAVAILABLE, INJECTED_KILL)
        return ack

    def finish(self) -> Any:
        return self._inner.finish()


def _pause(context: grpc.ServicerContext, seconds: float) -> None:
    """Sleep, but wake when the RPC ends (so a stopping gateway does not wait out a delay)."""
    ended = threading.Event()
    if not context.add_callback(ended.set):
        return
    ended.wait(seconds)


class _FaultyStub:
    """The sender's side: a gateway stub whose Transfer streams meet the plan on their way out."""

    def __init__(self, stub: Any, plan: FaultPlan) -> None:
        self._stub, self._plan = stub, plan

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stub, name)

    def Transfer(self, requests: Iterator[pb.TransferRequest], **kwargs: Any) -> Iterator[pb.TransferReply]:  # noqa: N802
        stream = _FaultyStream(self._plan)
        stream.call = self._stub.Transfer(stream.requests(requests), **kwargs)
        return stream.responses()


class _Broken(grpc.RpcError):
    """What the sender sees of a stream the plan killed: a broken connection, which it retries."""

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNAVAILABLE

    def details(self) -> str:
        return INJECTED_KILL

    def trailing_metadata(self) -> tuple[()]:
        return ()


class _FaultyStream:
    def __init__(self, plan: FaultPlan) -> None:
        self._plan = plan
        self._ended = threading.Event()
        self._killed = False
        self.call: Any = None

    def requests(self, requests: Iterator[pb.TransferRequest]) -> Iterator[pb.TransferRequest]:
        tag = ""
        for request in requests:
            if request.HasField("open"):
                tag = request.open.header.tag
                yield request
                continue
            fault = self._plan.take(tag, request.chunk.index)
            if fault is None:
                yield request
                continue
            if fault.kind is FaultKind.DROP:
                continue
            if fault.kind is FaultKind.DELAY and self._ended.wait(fault.delay_s):
                return  # ends early when the stream does: no thread outlives it
            if fault.kind is FaultKind.KILL:
                self._kill()
                return
            yield _damaged_request(fault, request)
            if fault.kind is FaultKind.KILL_AFTER_WRITE:
                self._kill()
                return

    def responses(self) -> Iterator[pb.TransferReply]:
        try:
            yield from self.call
        except grpc.RpcError:
            if self._killed:
                raise _Broken() from None
            raise
        finally:
            self._ended.set()

    def _kill(self) -> None:
        self._killed = True
        self.call.cancel()


def _damaged_request(fault: Fault, request: pb.TransferRequest) -> pb.TransferRequest:
    damaged = pb.TransferRequest()
    damaged.CopyFrom(request)
    damaged.chunk.data, damaged.chunk.crc32 = _damaged(fault.kind, request.chunk.data, request.chunk.crc32)
    return damaged
