"""Messages a party sent and keeps until the receiver reports them read.

An ack means "stored in the receiver's mailbox", not "used": if the receiving
process restarts before its protocol reads the message, the stored copy is
gone. So the sender keeps every message until a later exchange with that
receiver (the open of its next Transfer, or a heartbeat) lists it as read, and
resends it when the receiver says it lacks it. Resending is safe because the
receiver de-duplicates by key.

The outbox is bounded in practice: each new send to a peer confirms what the
peer read meanwhile, so it holds about one protocol round per peer; closing
the job drops the rest.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Iterable
from dataclasses import dataclass

from fedspark.federation._message import Envelope, MessageKey

MAX_PENDING_REFS = 256
"""Keys listed per request; older ones follow in later requests."""


class _State(enum.Enum):
    SENDING = "sending"
    STORED = "stored"


@dataclass
class _Kept:
    envelope: Envelope
    state: _State
    boot_id: str = ""


class Outbox:
    """Thread-safe table of kept envelopes by key."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: dict[MessageKey, _Kept] = {}

    def sending(self, envelope: Envelope) -> None:
        """A send of ``envelope`` starts (it is not offered for resending meanwhile)."""
        with self._lock:
            self._kept[envelope.key] = _Kept(envelope, _State.SENDING)

    def stored(self, key: MessageKey, boot_id: str) -> None:
        """The receiver acked ``key`` as stored (by the gateway process ``boot_id``)."""
        with self._lock:
            kept = self._kept.get(key)
            if kept is not None:
                kept.state, kept.boot_id = _State.STORED, boot_id

    def discard(self, key: MessageKey) -> None:
        """The send failed and the caller was told: the caller owns any retry."""
        with self._lock:
            self._kept.pop(key, None)

    def forget(self, keys: Iterable[MessageKey]) -> None:
        """The receiver read these: nothing left to keep."""
        with self._lock:
            for key in keys:
                kept = self._kept.get(key)
                if kept is not None and kept.state is _State.STORED:
                    del self._kept[key]

    def pending(self, job_id: str, party_id: str, exclude: MessageKey | None = None) -> tuple[MessageKey, ...]:
        """Stored-but-unread keys of ``job_id`` for ``party_id`` (at most ``MAX_PENDING_REFS``)."""
        with self._lock:
            keys = [
                key
                for key, kept in self._kept.items()
                if kept.state is _State.STORED and key.job_id == job_id and key.dst.party_id == party_id and key != exclude
            ]
        return tuple(keys[:MAX_PENDING_REFS])

    def claim(self, key: MessageKey) -> Envelope | None:
        """Take ``key`` for a resend (None if it is gone or already being sent)."""
        with self._lock:
            kept = self._kept.get(key)
            if kept is None or kept.state is not _State.STORED:
                return None
            kept.state = _State.SENDING
            return kept.envelope

    def unclaim(self, key: MessageKey) -> None:
        """A resend failed: keep the message for the next chance."""
        with self._lock:
            kept = self._kept.get(key)
            if kept is not None:
                kept.state = _State.STORED

    def drop(self, job_id: str, party_id: str | None = None) -> None:
        """Forget a job's messages (to one party, or to all)."""
        with self._lock:
            for key in [k for k in self._kept if k.job_id == job_id and party_id in (None, k.dst.party_id)]:
                del self._kept[key]

    def keys(self) -> list[MessageKey]:
        with self._lock:
            return list(self._kept)

    def __len__(self) -> int:
        with self._lock:
            return len(self._kept)

    @property
    def kept_bytes(self) -> int:
        with self._lock:
            return sum(len(kept.envelope.payload) for kept in self._kept.values())
