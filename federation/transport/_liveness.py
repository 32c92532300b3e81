"""Heartbeats while jobs run, and the verdict "this peer is dead".

A receiver waiting for a peer's message cannot tell a peer that computes for
an hour from one that crashed, unless the peer says so on its own: every
gateway therefore heartbeats the gateways of its jobs' other parties from a
background thread, independent of the protocol thread that may be busy. A
peer is *silent* when neither its heartbeats reached us nor ours reached it
for ``dead_after_s``; a receiver waiting on it then fails with ``PeerSilent``
within about that time, not at the end of its (long) receive timeout.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from fedspark.federation._errors import PeerSilent
from fedspark.federation._message import MessageKey

log = logging.getLogger("fedspark.federation.liveness")

HeardFrom = Callable[[str], "float | None"]
"""When the local gateway last heard from a party (monotonic seconds), if ever."""

Beat = Callable[[str, str], None]
"""Send one heartbeat for (job_id, party_id); raises when the peer did not answer."""

JobParties = Callable[[], "dict[str, set[str]]"]
"""The open jobs and the *other* party ids of each."""


class Liveness:
    """When each peer party was last known alive, and the check receivers call while waiting."""

    def __init__(self, dead_after_s: float, heard_from: HeardFrom, own_party_id: str) -> None:
        if dead_after_s <= 0:
            raise ValueError(f"dead_after_s must be positive, got {dead_after_s}")
        self.dead_after_s = dead_after_s
        self._heard_from = heard_from
        self._own = own_party_id
        self._lock = threading.Lock()
        self._seen: dict[str, float] = {}
        self._watched_since: dict[str, float] = {}

    def saw(self, party_id: str) -> None:
        """``party_id``'s gateway just answered us."""
        with self._lock:
            self._seen[party_id] = time.monotonic()

    def silent_for(self, party_id: str) -> float:
        """Seconds since ``party_id`` was last known alive (from when we started watching it)."""
        now = time.monotonic()
        with self._lock:
            since = self._watched_since.setdefault(party_id, now)
            seen = self._seen.get(party_id, since)
        heard = self._heard_from(party_id)
        latest = max(since, seen, heard if heard is not None else since)
        return max(0.0, now - latest)

    def check(self, key: MessageKey) -> None:
        """Raise ``PeerSilent`` if the sender of ``key`` has been silent too long."""
        party_id = key.src.party_id
        if party_id == self._own:
            return  # a message from another role of this very party
        silent = self.silent_for(party_id)
        if silent > self.dead_after_s:
            raise PeerSilent(key.job_id, key.tag, str(key.src), silent, self.dead_after_s)


class HeartbeatLoop:
    """A daemon thread that heartbeats every peer of every open job each ``interval_s``."""

    def __init__(self, name: str, interval_s: float, jobs: JobParties, beat: Beat) -> None:
        if interval_s <= 0:
            raise ValueError(f"heartbeat interval must be positive, got {interval_s}")
        self.interval_s = interval_s
        self._jobs = jobs
        self._beat = beat
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop and wait for the thread (a beat in flight ends within its own timeout)."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            for job_id, parties in self._jobs().items():
                for party_id in sorted(parties):
                    if self._stop.is_set():
                        return
                    try:
                        self._beat(job_id, party_id)
                    except Exception as exc:  # noqa: BLE001 - a failed beat is the information itself
                        log.debug("job %s: heartbeat to party %s failed: %s", job_id, party_id, exc)
            self._stop.wait(max(0.0, self.interval_s - (time.monotonic() - started)))
