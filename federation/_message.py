"""Message addresses and envelopes: what the transports move, free of any wire type.

A message is identified by its :class:`MessageKey`. The key is what makes
resending safe: the receiver stores at most one payload per key, so a sender
that is not sure its first attempt arrived simply sends the same envelope again.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from fedspark.common import PartyRef


class PayloadKind(str, enum.Enum):
    """How the receiver must read the payload bytes."""

    VALUE = "value"
    """A serialized typed ``Value`` (``codec.encode_value``)."""
    ARROW_STREAM = "arrow_stream"
    """Raw Arrow IPC stream bytes, e.g. one partition of a distributed table."""
    RAW = "raw"
    """Opaque bytes the protocol interprets itself."""

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class MessageKey:
    """The address of one message: job, tag, sender, receiver and sequence number.

    ``seq`` separates several messages under one tag (the partitions of a
    table); single values use ``seq=0``. Equal keys mean "the same message", so
    a key must never be reused for different content.
    """

    job_id: str
    tag: str
    src: PartyRef
    dst: PartyRef
    seq: int = 0

    def __str__(self) -> str:
        return f"job {self.job_id}: '{self.tag}' #{self.seq} {self.src} -> {self.dst}"


@dataclass(frozen=True)
class Envelope:
    """A keyed payload, ready for a transport.

    The payload is already encoded: transports move bytes and never look inside,
    which keeps the codec (and its no-pickle rule) in one place.
    """

    key: MessageKey
    payload: bytes
    kind: PayloadKind = PayloadKind.VALUE

    def __repr__(self) -> str:
        # Payloads can be megabytes of ciphertext: never print them.
        return f"Envelope({self.key}, {len(self.payload)} bytes, {self.kind})"


@dataclass(frozen=True)
class Receipt:
    """What a receiving gateway reports once a message is stored.

    ``duplicate`` means the receiver already had the key (a resend); the value
    is still delivered exactly once.
    """

    duplicate: bool
    stored_bytes: int


class JobState(str, enum.Enum):
    """What a gateway knows of a job, as reported to a peer's heartbeat."""

    UNKNOWN = "unknown"
    """Never opened here (or not yet): a sender keeps its messages, the job may come."""
    OPEN = "open"
    CLOSED = "closed"
    """Ran and was closed: messages a sender still keeps for it are no longer needed."""

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class TransferAck:
    """The receiver's answer on a Transfer stream: how far the message got.

    The first ack answers the open (where to start, plus the fate of the
    sender's ``pending`` keys); one follows every chunk written; a ``resend``
    ack ends the stream early and the sender resumes from ``next_index``.
    """

    next_index: int
    resend: bool = False
    complete: bool = False
    duplicate: bool = False
    stored_bytes: int = 0
    boot_id: str = ""
    read: tuple[MessageKey, ...] = ()
    missing: tuple[MessageKey, ...] = ()


@dataclass(frozen=True)
class Heartbeat:
    """A sender's "I am alive, and still keep these messages for you"."""

    job_id: str
    from_party_id: str
    boot_id: str
    pending: tuple[MessageKey, ...] = ()


@dataclass(frozen=True)
class HeartbeatReply:
    """The receiver's side: who it is, the job's state, and the fate of ``pending``."""

    party_id: str
    boot_id: str
    job_state: JobState
    read: tuple[MessageKey, ...] = ()
    missing: tuple[MessageKey, ...] = ()
