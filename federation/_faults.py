"""Fault injection for the chunk streams between gateways (a test aid, off by default).

Retries, resumption and de-duplication are only believable when they are seen
to work against the faults they exist for. A :class:`FaultPlan` names them by
the chunk index within a message (optionally only for one tag) and fires each
a limited number of ``times``, so a test can say "corrupt chunk 2 of 'w' once"
and check that the exact value still arrives once, or "always" and check that
the sender ends with a clear error instead of looping.

The same plan works on either side of a stream:

* given to ``GrpcTransport(faults=...)`` it acts on chunks *being sent*
  (``KILL`` cancels the stream before chunk N leaves, ``KILL_AFTER_WRITE``
  right after it left);
* given to ``create_gateway(faults=...)`` it acts on chunks *arriving*
  (``KILL`` aborts the stream before chunk N is written, ``KILL_AFTER_WRITE``
  writes it and aborts before the ack: the "ack lost" case).
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Iterable
from dataclasses import dataclass, replace

from fedspark.federation._chunks import ChunkPart


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
    data = part.data
    if fault.kind is FaultKind.TRUNCATE:
        return replace(part, data=data[: len(data) // 2])
    if fault.kind is FaultKind.CORRUPT:
        if not data:
            return replace(part, crc32=part.crc32 ^ 1)
        flipped = bytes([data[0] ^ 0xFF]) + data[1:]
        return replace(part, data=flipped)
    return part


def plan_of(faults: Iterable[Fault] | FaultPlan | None) -> FaultPlan | None:
    """Accept a plan or a list of faults where a plan is expected."""
    if faults is None or isinstance(faults, FaultPlan):
        return faults
    return FaultPlan(*faults)
