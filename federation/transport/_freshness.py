"""Receive nonces: each party's fresh per-job nonce, announced to its peers, that seals are bound to.

Why (the full argument is in ``security._seal``): a sealed payload names its
job id, but a job id can repeat, so a payload recorded in one run (the
exchange carries them all) would open in a later run with the same id. The
receiver therefore contributes freshness: when this party opens a job it draws
a random nonce, announces it to every other party of the job, and opens what
it receives only with it; a sender seals for a receiver with the nonce that
receiver announced. A replayed or forged announcement can only make messages
fail to open (denial of service), never make an old one open.

How the announcement travels: as an ordinary message under the reserved tag
``NONCE_TAG`` (sealed for its receiver, ``Sealer.announce``), from this
party's role in the job to the peer's, so the gateway's usual admission,
identity and de-duplication rules apply and an exchange relays it like any
other. It is sent from a background thread per peer and retried (routes may
be set after the job is opened, and a peer may open the job after this party:
its gateway then refuses with ``UNKNOWN_JOB`` until it does), until delivered
or the job or transport closes. A sender waits for the receiver's
announcement at its first sealed message to that receiver, up to the
transport's connect deadline, and keeps it for the job.

Limit: a receiver that restarts mid-job draws a new nonce; messages kept for
it from before (``Outbox``) were sealed with the old one and fail to open
there, loudly (``SealBroken``), never silently.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from fedspark.common import FedsparkError, PartyRef
from fedspark.federation._errors import PeerTimeout, PeerUnreachable, SealBroken, SealingKeyError, TransportClosed
from fedspark.federation._message import Envelope, MessageKey
from fedspark.federation.security._seal import NONCE_BYTES, NONCE_TAG, Sealer
from fedspark.federation.transport._gateway import Gateway

log = logging.getLogger("fedspark.federation.transport")

FIRST_RETRY_S = 0.05
MAX_RETRY_S = 1.0

Deliver = Callable[[Envelope], None]
"""Send one envelope as it is (no sealing, not kept): raises like ``transfer`` does."""


@dataclass
class _Job:
    own: bytes
    members: dict[str, PartyRef]
    """party id -> the role its announcements use (the first of its roles in sorted order)."""
    learned: dict[str, bytes] = field(default_factory=dict)
    locks: dict[str, threading.Lock] = field(default_factory=dict)
    announced: set[str] = field(default_factory=set)


def _speakers(parties: Iterable[PartyRef]) -> dict[str, PartyRef]:
    """One role per party id, chosen the same way by every party (a party may play several roles)."""
    chosen: dict[str, PartyRef] = {}
    for ref in sorted(parties, key=str):
        chosen.setdefault(ref.party_id, ref)
    return chosen


class ReceiveNonces:
    """This party's receive nonce per open job, the nonces its peers announced, and the announcers."""

    def __init__(self, party_id: str, sealer: Sealer, gateway: Gateway, deliver: Deliver, wait_s: float) -> None:
        self.party_id = str(party_id)
        self._sealer = sealer
        self._gateway = gateway
        self._deliver = deliver
        self._wait_s = wait_s
        self._lock = threading.Lock()
        self._jobs: dict[str, _Job] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def open_job(self, job_id: str, parties: Iterable[PartyRef]) -> None:
        """Draw this party's nonce for ``job_id`` (kept if the job is already open) and announce it to each peer."""
        members = _speakers(parties)
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                job = self._jobs[job_id] = _Job(os.urandom(NONCE_BYTES), members)
            else:
                job.members = members
            peers = [p for p in members if p != self.party_id and p not in job.announced] if self.party_id in members else []
            job.announced.update(peers)
            for peer in peers:
                thread = threading.Thread(target=self._announce, args=(job_id, job, peer), daemon=True,
                                          name=f"fedspark-nonce-{self.party_id}-to-{peer}")
                self._threads = [t for t in self._threads if t.is_alive()]
                self._threads.append(thread)
                thread.start()

    def close_job(self, job_id: str) -> None:
        """Forget the job's nonces; a later job with the same id draws a new one (that is the point)."""
        with self._lock:
            self._jobs.pop(job_id, None)

    def own(self, key: MessageKey) -> bytes:
        """This party's nonce for ``key.job_id``, to open what ``key.src`` sealed."""
        with self._lock:
            job = self._jobs.get(key.job_id)
        if job is None:
            raise SealBroken(key.job_id, key.tag, str(key.src),
                             "this party's transport has not opened the job, so it holds no receive nonce to open it with")
        return job.own

    def of_receiver(self, key: MessageKey, address: str = "-") -> bytes:
        """The nonce ``key.dst`` (routed at ``address``) announced for ``key.job_id``; waits for it the first time."""
        peer_id = key.dst.party_id
        with self._lock:
            job = self._jobs.get(key.job_id)
            if job is not None and peer_id in job.members and peer_id not in job.locks:
                job.locks[peer_id] = threading.Lock()
        if job is None:
            raise SealingKeyError(f"party {peer_id}", f"job {key.job_id}: not opened on this party's transport, so "
                                  f"party {peer_id} cannot have announced its receive nonce; open the job first")
        if peer_id == self.party_id:
            return job.own
        if peer_id not in job.members or self.party_id not in job.members:
            raise SealingKeyError(f"party {peer_id}", f"job {key.job_id}: party {peer_id} and this party are not "
                                  "both parties of the job, so no receive nonce is exchanged between them")
        with job.locks[peer_id]:
            nonce = job.learned.get(peer_id)
            if nonce is None:
                announcement = MessageKey(key.job_id, NONCE_TAG, job.members[peer_id], job.members[self.party_id])
                try:
                    sealed = self._gateway.take(announcement, self._wait_s)
                except PeerTimeout:
                    raise PeerUnreachable(
                        key.job_id, key.tag, str(key.dst), address,
                        f"party {peer_id} announced no receive nonce for this job within {self._wait_s:g}s "
                        "(its gateway has not opened the job, or cannot reach this party); sealed payloads "
                        "are bound to it",
                    ) from None
                nonce = job.learned[peer_id] = self._sealer.read_announcement(announcement, sealed)
        return nonce

    def stop(self, join_s: float = 2.0) -> None:
        """Stop announcing (the transport is closing); announcers blocked in a send end with its channels."""
        self._stop.set()
        with self._lock:
            threads, self._threads = self._threads, []
        for thread in threads:
            thread.join(timeout=join_s)

    def _announce(self, job_id: str, job: _Job, peer_id: str) -> None:
        try:
            envelope = self._sealer.announce(
                MessageKey(job_id, NONCE_TAG, job.members[self.party_id], job.members[peer_id]), job.own)
        except FedsparkError as exc:
            log.warning("job %s: cannot announce this party's receive nonce to party %s: %s", job_id, peer_id, exc)
            return
        backoff = FIRST_RETRY_S
        while not self._stop.is_set():
            with self._lock:
                if self._jobs.get(job_id) is not job:
                    return  # closed (or closed and reopened: the new job announces its own nonce)
            try:
                self._deliver(envelope)
                return
            except TransportClosed:
                return
            except FedsparkError as exc:  # no route yet, the peer has not opened the job yet, unreachable
                log.debug("job %s: receive nonce for party %s not delivered yet (%s); retrying", job_id, peer_id, exc)
            except Exception as exc:  # noqa: BLE001 - a thread must not die silently; the sender's wait names the peer
                if self._stop.is_set():
                    return
                log.warning("job %s: announcing the receive nonce to party %s failed: %r; retrying", job_id, peer_id, exc)
            self._stop.wait(backoff)
            backoff = min(backoff * 2, MAX_RETRY_S)
