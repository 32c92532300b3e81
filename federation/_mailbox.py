"""A thread-safe store of received payloads, keyed by message key, that de-duplicates.

Senders retry when they are unsure a message arrived, so the same key can be
stored twice; the mailbox keeps the first payload and remembers delivered keys,
so a retry never hands a value to the protocol twice. Messages may arrive in any
order: a receiver waits for the key it needs, not for "the next message".
"""

from __future__ import annotations

import threading
import time

from fedspark.federation._errors import PeerTimeout, TransportClosed
from fedspark.federation._message import MessageKey


class Mailbox:
    """Payloads waiting for their receiver, plus the keys already delivered."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._waiting: dict[MessageKey, bytes] = {}
        self._delivered: set[MessageKey] = set()
        self._closed = False

    def put(self, key: MessageKey, payload: bytes) -> bool:
        """Store ``payload``; return False (and keep the first copy) for a duplicate key."""
        with self._cond:
            if self._closed:
                raise TransportClosed(key.job_id, key.tag, str(key.src), "storing")
            if key in self._waiting or key in self._delivered:
                return False
            self._waiting[key] = payload
            self._cond.notify_all()
            return True

    def take(self, key: MessageKey, timeout_s: float) -> bytes:
        """Wait up to ``timeout_s`` for ``key``, remove it and return its payload."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while key not in self._waiting:
                if self._closed:
                    raise TransportClosed(key.job_id, key.tag, str(key.src), "waiting for")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise PeerTimeout(key.job_id, key.tag, str(key.src), timeout_s)
                self._cond.wait(remaining)
            self._delivered.add(key)
            return self._waiting.pop(key)

    def drop_job(self, job_id: str) -> None:
        """Forget a finished job's undelivered payloads and delivered keys."""
        with self._cond:
            self._waiting = {k: v for k, v in self._waiting.items() if k.job_id != job_id}
            self._delivered = {k for k in self._delivered if k.job_id != job_id}

    def close(self) -> None:
        """Wake every waiting receiver with ``TransportClosed``; refuse further puts."""
        with self._cond:
            self._closed = True
            self._waiting.clear()
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._waiting)
