"""In-memory transport: the parties of a job as threads of one process.

Protocol tests run guest, host and arbiter side by side in milliseconds over a
shared :class:`LoopbackHub`. It keeps the rules of the real gateway (admission,
de-duplication, store-before-ack) but skips the network, chunking and checksums.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from fedspark.common import PartyRef
from fedspark.federation._errors import MessageRefused, PeerUnreachable, SendRefused
from fedspark.federation._message import Envelope, MessageKey
from fedspark.federation._transport import Transport
from fedspark.federation.transport._gateway import DEFAULT_JOB_QUOTA_BYTES, JobAdmission
from fedspark.federation.transport._mailbox import Mailbox
from fedspark.federation.transport._spill import ReceivedPayload

LOOPBACK_ADDRESS = "loopback"


class LoopbackHub:
    """The shared "network" of one process: one mailbox per party id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._transports: dict[str, LoopbackTransport] = {}

    def transport(self, party_id: str) -> LoopbackTransport:
        """The (single) transport of ``party_id`` on this hub, created on first use."""
        party_id = str(party_id)
        with self._lock:
            existing = self._transports.get(party_id)
            if existing is None or existing.closed:
                existing = LoopbackTransport(self, party_id)
                self._transports[party_id] = existing
            return existing

    def deliver(self, envelope: Envelope) -> None:
        """Store ``envelope`` in the receiver's mailbox, as its gateway would."""
        key = envelope.key
        with self._lock:
            target = self._transports.get(key.dst.party_id)
        if target is None or target.closed:
            state = "is closed" if target is not None else "has no transport on this hub"
            raise PeerUnreachable(
                key.job_id, key.tag, str(key.dst), LOOPBACK_ADDRESS, f"party {key.dst.party_id} {state}"
            )
        try:
            target.store(envelope)
        except MessageRefused as exc:
            raise SendRefused(key.job_id, key.tag, str(key.dst), exc.reason, str(exc)) from exc

    def close(self) -> None:
        """Close every transport: threads blocked in ``recv`` wake with ``TransportClosed``."""
        with self._lock:
            transports = list(self._transports.values())
        for transport in transports:
            transport.close()


class LoopbackTransport(Transport):
    """One party's endpoint on a :class:`LoopbackHub`; get it from ``hub.transport(party_id)``."""

    def __init__(self, hub: LoopbackHub, party_id: str) -> None:
        self._hub = hub
        self._admission = JobAdmission(party_id)
        self._mailbox = Mailbox(job_quota_bytes=DEFAULT_JOB_QUOTA_BYTES)
        self.closed = False

    @property
    def party_id(self) -> str:
        return self._admission.party_id

    def open_job(self, job_id: str, parties: Iterable[PartyRef]) -> None:
        self._admission.open_job(job_id, parties)

    def close_job(self, job_id: str) -> None:
        self._admission.close_job(job_id)
        self._mailbox.drop_job(job_id)

    def send(self, envelope: Envelope) -> None:
        self._hub.deliver(envelope)

    def store(self, envelope: Envelope) -> bool:
        """Admit and store an incoming envelope; False when it is a duplicate."""
        self._admission.admit(envelope.key, len(envelope.payload))
        return self._mailbox.put(envelope.key, envelope.payload, envelope.kind)

    def recv(self, key: MessageKey, timeout_s: float) -> bytes:
        if key.dst.party_id != self.party_id:
            raise ValueError(f"{key} is not addressed to party {self.party_id}, which this transport serves")
        return self._mailbox.take(key, timeout_s)

    def recv_payload(self, key: MessageKey, timeout_s: float) -> ReceivedPayload:
        if key.dst.party_id != self.party_id:
            raise ValueError(f"{key} is not addressed to party {self.party_id}, which this transport serves")
        return self._mailbox.take_payload(key, timeout_s)

    def close(self) -> None:
        self.closed = True
        self._mailbox.close()
