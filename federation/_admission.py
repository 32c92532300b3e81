"""Which messages a party's receiving side accepts: open jobs and their parties.

A gateway listens on a network port, so it must not store whatever arrives:
only messages addressed to its own party, for a job it was told about, between
parties of that job. Both transports apply these same rules, so a protocol
test over the in-memory transport fails the same way the real gateway would.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from fedspark.common import PartyRef
from fedspark.federation._errors import MessageTooLarge, NotAMember, UnknownJob, WrongRecipient
from fedspark.federation._message import JobState, MessageKey


class JobAdmission:
    """Thread-safe table of open jobs for one party, and the check every message passes."""

    def __init__(self, party_id: str, max_message_bytes: int | None = None) -> None:
        self.party_id = str(party_id)
        self.max_message_bytes = max_message_bytes
        self._jobs: dict[str, frozenset[PartyRef]] = {}
        self._closed: set[str] = set()
        self._lock = threading.Lock()

    def open_job(self, job_id: str, parties: Iterable[PartyRef]) -> None:
        """Accept messages of ``job_id`` between ``parties`` (reopening replaces the list)."""
        members = frozenset(parties)
        with self._lock:
            self._jobs[job_id] = members
            self._closed.discard(job_id)

    def close_job(self, job_id: str) -> None:
        with self._lock:
            if self._jobs.pop(job_id, None) is not None:
                self._closed.add(job_id)

    def is_open(self, job_id: str) -> bool:
        with self._lock:
            return job_id in self._jobs

    def state(self, job_id: str) -> JobState:
        """Open, closed after running, or unknown (never opened here, or not yet)."""
        with self._lock:
            if job_id in self._jobs:
                return JobState.OPEN
            return JobState.CLOSED if job_id in self._closed else JobState.UNKNOWN

    def jobs(self) -> dict[str, frozenset[PartyRef]]:
        """The open jobs and their parties (a snapshot), e.g. for the heartbeat loop."""
        with self._lock:
            return dict(self._jobs)

    def admit_party(self, job_id: str, party_id: str, what: str) -> None:
        """Raise ``NotAMember`` unless some role of ``party_id`` belongs to open job ``job_id``.

        For requests that speak for a whole gateway (heartbeats), not for one role.
        """
        with self._lock:
            members = self._jobs.get(job_id)
        if members is not None and all(member.party_id != party_id for member in members):
            raise NotAMember(job_id, what, f"party {party_id}", f"party {party_id}", "sender")

    def admit(self, key: MessageKey, size: int) -> None:
        """Raise a ``MessageRefused`` subclass unless this party should store the message."""
        src = str(key.src)
        if key.dst.party_id != self.party_id:
            raise WrongRecipient(key.job_id, key.tag, src, str(key.dst), self.party_id)
        with self._lock:
            members = self._jobs.get(key.job_id)
        if members is None:
            raise UnknownJob(key.job_id, key.tag, src, self.party_id)
        if key.src not in members:
            raise NotAMember(key.job_id, key.tag, src, src, "sender")
        if key.dst not in members:
            raise NotAMember(key.job_id, key.tag, src, str(key.dst), "receiver")
        if self.max_message_bytes is not None and size > self.max_message_bytes:
            raise MessageTooLarge(key.job_id, key.tag, src, size, self.max_message_bytes)
