"""A party's receiving side: identity, admission, resumable writes, mailbox, tap.

This is the plain-Python half of the gateway; the gRPC servicer only unpacks
streams, names the authenticated peer, and calls :meth:`Gateway.receive`,
:meth:`Gateway.open_transfer` or :meth:`Gateway.heartbeat`. Keeping the rules
here means they are unit-testable without a server and cannot drift between
entry points.

Admission (:class:`JobAdmission`): a gateway listens on a network port, so it
must not store whatever arrives: only messages addressed to its own party, for a
job it was told about, between parties of that job. Both transports apply these
same rules, so a protocol test over the in-memory transport fails the same way
the real gateway would.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from fedspark.common import PartyRef
from fedspark.federation._errors import (
    CodecError,
    CorruptMessage,
    IdentityMismatch,
    MessageRefused,
    MessageTooLarge,
    NotAMember,
    UnknownJob,
    UnknownPayloadKind,
    UnsupportedPayload,
    WrongRecipient,
)
from fedspark.federation._message import Heartbeat, HeartbeatReply, JobState, MessageKey, Receipt
from fedspark.federation.transport._chunks import ChunkPart, Header, check_stream, header_problem
from fedspark.federation.transport._mailbox import (
    DEFAULT_MAX_STRIKES,
    DEFAULT_MEMORY_LIMIT_BYTES,
    AliveCheck,
    Mailbox,
    Opened,
    TransferSession,
)
from fedspark.federation.transport._served import ServedTables
from fedspark.federation.transport._spill import ReceivedPayload
from fedspark.federation.transport._tap import RecordingTap

if TYPE_CHECKING:
    from fedspark.federation.star._relay import OutboundRelay

DEFAULT_MAX_MESSAGE_BYTES = 1 << 30
"""1 GiB per message; larger payloads belong in a distributed table (one message per partition)."""

DEFAULT_JOB_QUOTA_BYTES = 64 << 30
"""64 GiB accepted from one party in one job, then its messages are refused (``QuotaExceeded``).

Generous on purpose: it is there to stop a peer filling this party's disk,
not to meter honest jobs; hetero_lr on 10M rows with 2048-bit keys receives
about 10 GB per host per epoch, so such jobs raise it (``job_quota_bytes``).
"""


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


class _Server(Protocol):
    def stop(self, grace: float | None) -> object: ...


class _Executor(Protocol):
    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None: ...


class Gateway:
    """One party's gateway: what it accepts, where it stores, what it records.

    Built by ``create_gateway``, which also starts the gRPC server that feeds
    it; ``stop`` shuts both down, wakes any receiver still waiting and deletes
    every stored payload.

    Parameters
    ----------
    party_id
        The organisation this gateway receives for.
    tap_dir
        Record a copy of every accepted message there (tests and audits).
    max_message_bytes
        Refuse larger messages from their header, before any data is read.
    work_dir
        Where payloads beyond ``memory_limit_bytes`` spill to files (a
        subfolder per gateway process; the system temp dir when None).
    memory_limit_bytes
        Payload bytes kept in memory in total before spilling.
    requires_identity
        Set when peers are authenticated (mTLS): every message must then come
        from the party its certificate names.
    job_quota_bytes
        Bytes accepted from one party in one job (read or not) before its
        further messages are refused with ``QuotaExceeded``; None: no limit.
        Counted by the mailbox, so a resumed or repeated message is charged once.
    relays
        Certified identities allowed to deliver messages in other parties'
        names: the exchange of a star topology. It checks each sender's
        certificate itself, and cannot forge a message unnoticed, because the
        payload is sealed end to end by the sender (see ``security._seal``).
    """

    def __init__(
        self,
        party_id: str,
        *,
        tap_dir: Path | str | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        work_dir: Path | str | None = None,
        memory_limit_bytes: int = DEFAULT_MEMORY_LIMIT_BYTES,
        requires_identity: bool = False,
        max_chunk_strikes: int = DEFAULT_MAX_STRIKES,
        relays: Iterable[str] = (),
        job_quota_bytes: int | None = DEFAULT_JOB_QUOTA_BYTES,
    ) -> None:
        self._admission = JobAdmission(party_id, max_message_bytes)
        self.boot_id = uuid.uuid4().hex
        """Changes whenever a gateway process starts: peers can tell a restart."""
        self.tap = RecordingTap(tap_dir) if tap_dir is not None else None
        self._mailbox = Mailbox(
            memory_limit_bytes=memory_limit_bytes,
            work_dir=work_dir,
            label=str(party_id),
            on_complete=self._record if self.tap is not None else None,
            job_quota_bytes=job_quota_bytes,
        )
        self.requires_identity = requires_identity
        self.relays = frozenset(str(relay) for relay in relays)
        self._max_chunk_strikes = max_chunk_strikes
        self._heard: dict[str, float] = {}
        self._heard_lock = threading.Lock()
        self.port: int | None = None
        self.in_party_address: str | None = None
        """Where this party's own executors reach the gateway (set by ``create_gateway``; see ``star._relay``)."""
        self.relay: OutboundRelay | None = None
        """Set by the party's transport: forwards table partitions this party's executors hand over."""
        self.served = ServedTables(party_id)
        """Received tables this party's executors read through the in-party address (see ``_served``)."""
        self._server: _Server | None = None
        self._executor: _Executor | None = None

    @property
    def party_id(self) -> str:
        return self._admission.party_id

    @property
    def max_message_bytes(self) -> int | None:
        return self._admission.max_message_bytes

    @property
    def job_quota_bytes(self) -> int | None:
        return self._mailbox.job_quota_bytes

    @property
    def mailbox(self) -> Mailbox:
        return self._mailbox

    # ------------------------------------------------------------ jobs

    def open_job(self, job_id: str, parties: Iterable[PartyRef]) -> None:
        """Accept messages of ``job_id`` between ``parties``; anything else is refused."""
        self._admission.open_job(job_id, parties)

    def close_job(self, job_id: str) -> None:
        """Refuse the job's messages from now on and delete everything stored for it (served tables too)."""
        self._admission.close_job(job_id)
        self.served.forget_job(job_id)
        self._mailbox.drop_job(job_id)

    def open_jobs(self) -> dict[str, frozenset[PartyRef]]:
        """The jobs open on this gateway and their parties (a snapshot)."""
        return self._admission.jobs()

    def job_state(self, job_id: str) -> JobState:
        return self._admission.state(job_id)

    # ------------------------------------------------------------ receiving

    def receive(self, parts: Iterable[ChunkPart], *, identity: str | None = None) -> Receipt:
        """Admit, check and store one whole pushed message (the Push RPC).

        All or nothing: raises a ``MessageRefused`` subclass when the message
        must not be stored, discarding what was written; returns only after
        the payload is in the mailbox (and tap), so the sender's ack means
        "stored". ``identity`` is the party the peer's certificate names.
        """
        owner = object()
        opened: Opened | None = None

        def admit(header: Header) -> None:
            nonlocal opened
            self._admit(header, identity)
            opened = self._mailbox.open_entry(header, owner, fresh=True)

        def write(part: ChunkPart) -> None:
            if opened is not None and opened.entry is not None:
                result = self._mailbox.write(opened.entry, owner, part)
                if result.problem:
                    key = opened.entry.header.key
                    raise CorruptMessage(key.job_id, key.tag, str(key.src), result.problem)

        try:
            header = check_stream(refusing_codec_errors(parts), admit, write)
        except BaseException:
            if opened is not None and opened.entry is not None:
                self._mailbox.abandon(opened.entry, owner)
            raise
        assert opened is not None  # admit ran, or check_stream raised
        return Receipt(duplicate=opened.duplicate, stored_bytes=header.total_bytes)

    def open_transfer(
        self, header: Header, pending: Sequence[MessageKey] = (), *, identity: str | None = None
    ) -> TransferSession:
        """Admit a Transfer's header and return the session that writes its chunks.

        ``pending`` are earlier messages the sender still keeps for this
        party; the first ack reports which were read (the sender forgets them)
        and which this mailbox lacks (the sender resends them).
        """
        framing = header_problem(header)
        if framing is not None:
            key = header.key
            raise CorruptMessage(key.job_id, key.tag, str(key.src), framing)
        self._admit(header, identity)
        self._note_heard(header.key.src.party_id)
        read, missing = self._reconcile(header.key.src.party_id, header.key.job_id, pending)
        return TransferSession(
            self._mailbox,
            header,
            boot_id=self.boot_id,
            read=read,
            missing=missing,
            max_strikes=self._max_chunk_strikes,
        )

    def heartbeat(self, beat: Heartbeat, *, identity: str | None = None) -> HeartbeatReply:
        """Answer a peer's heartbeat: note it alive, report the job and its kept messages.

        A heartbeat for a job not (yet) open here is answered, not refused:
        the peer's gateway is alive either way, and ``UNKNOWN`` tells it to
        keep its messages until this party opens the job.
        """
        if not self._speaks_for(identity, beat.from_party_id):
            raise IdentityMismatch(beat.job_id, "heartbeat", f"party {beat.from_party_id}", identity)
        state = self._admission.state(beat.job_id)
        if state is JobState.OPEN:
            self._admission.admit_party(beat.job_id, beat.from_party_id, "heartbeat")
        self._note_heard(beat.from_party_id)
        read: tuple[MessageKey, ...] = ()
        missing: tuple[MessageKey, ...] = ()
        if state is JobState.OPEN:
            read, missing = self._reconcile(beat.from_party_id, beat.job_id, beat.pending)
        return HeartbeatReply(self.party_id, self.boot_id, state, read, missing)

    def last_heard(self, party_id: str) -> float | None:
        """``time.monotonic()`` of the last heartbeat or transfer from ``party_id``."""
        with self._heard_lock:
            return self._heard.get(party_id)

    def _note_heard(self, party_id: str) -> None:
        with self._heard_lock:
            self._heard[party_id] = time.monotonic()

    def _admit(self, header: Header, identity: str | None) -> None:
        key = header.key
        if not self._speaks_for(identity, key.src.party_id):
            raise IdentityMismatch(key.job_id, key.tag, str(key.src), identity)
        self._admission.admit(key, header.total_bytes)

    def _speaks_for(self, identity: str | None, party_id: str) -> bool:
        """Whether a peer certified as ``identity`` may send in ``party_id``'s name."""
        if not self.requires_identity:
            return True
        return identity == party_id or (identity is not None and identity in self.relays)

    def _reconcile(
        self, party_id: str, job_id: str, pending: Sequence[MessageKey]
    ) -> tuple[tuple[MessageKey, ...], tuple[MessageKey, ...]]:
        # Only keys this sender could have sent to this gateway: a peer learns
        # nothing about other parties' messages by listing their keys.
        own = [k for k in pending if k.job_id == job_id and k.src.party_id == party_id and k.dst.party_id == self.party_id]
        read, missing = self._mailbox.reconcile(own)
        return tuple(read), tuple(missing)

    def _record(self, header: Header, payload: ReceivedPayload) -> None:
        if self.tap is not None:
            self.tap.record_stored(header.key, header.kind, payload)

    # ------------------------------------------------------------ reading

    def take(self, key: MessageKey, timeout_s: float, *, alive: AliveCheck | None = None) -> bytes:
        """Wait for ``key`` in the mailbox (see ``Mailbox.take``)."""
        return self._mailbox.take(key, timeout_s, alive=alive)

    def take_payload(
        self, key: MessageKey, timeout_s: float, *, alive: AliveCheck | None = None
    ) -> ReceivedPayload:
        """Wait for ``key`` and hand over its stored payload (see ``Mailbox.take_payload``)."""
        return self._mailbox.take_payload(key, timeout_s, alive=alive)

    # ------------------------------------------------------------ lifetime

    def attach_server(self, server: _Server, port: int, executor: _Executor | None = None) -> None:
        """Called by ``create_gateway``: the server (and its worker pool) whose lifetime ``stop`` ends."""
        self._server, self.port, self._executor = server, port, executor

    def stop(self, grace_s: float | None = None) -> None:
        """Stop the server (waiting up to ``grace_s`` for running calls), wake receivers, delete payloads.

        The worker pool is shut down too: gRPC leaves it running, and a
        gateway stopped by a test or a finished party must not leave threads.
        """
        server, self._server = self._server, None
        executor, self._executor = self._executor, None
        if server is not None:
            event = server.stop(grace_s)
            wait = getattr(event, "wait", None)
            if callable(wait):
                wait()
        self.served.close()
        self._mailbox.close()
        if executor is not None:
            executor.shutdown(wait=True)


def refusal_for(exc: CodecError, key: MessageKey | None = None) -> MessageRefused:
    """A peer's undecodable request as the refusal the sender will see (naming ``key`` if known)."""
    job_id, tag, src = (key.job_id, key.tag, str(key.src)) if key is not None else ("?", "?", "?")
    if isinstance(exc, UnknownPayloadKind):
        return UnsupportedPayload(job_id, tag, src, f"{exc.reason}; declared kinds are value, arrow_stream and raw")
    return CorruptMessage(job_id, tag, src, exc.reason)


def refusing_codec_errors(parts: Iterable[ChunkPart]) -> Iterator[ChunkPart]:
    """A malformed chunk from a peer is a refused message, not an internal error."""
    iterator = iter(parts)
    while True:
        try:
            part = next(iterator)
        except StopIteration:
            return
        except CodecError as exc:
            raise refusal_for(exc) from exc
        yield part
