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
