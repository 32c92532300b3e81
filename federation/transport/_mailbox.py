"""A thread-safe store of incoming messages, keyed by message key, that de-duplicates.

Senders retry when they are unsure a message arrived, so the same key can
arrive twice, or half of it in one stream and the rest in another. The mailbox
keeps one *entry* per key: chunks are written to it in order (by at most one
stream at a time: a newer stream for the key takes over), it becomes visible to
a receiver only once complete, and after it is read its key is remembered as
delivered, so a retry or replay never hands a value to the protocol twice.

Entries live in memory up to ``memory_limit_bytes`` in total and spill to files
beyond (see :mod:`._spill`); raw Arrow streams (table partitions) always spill,
so executors can read them from files. A read entry is deleted at once; a
closed job's entries and files are deleted with it. Messages may arrive in any order: a
receiver waits for the key it needs, not for "the next message".

With a ``job_quota_bytes``, the mailbox also counts the bytes it accepts per
(job, sending party): a message's announced size is charged when its entry is
created (before any chunk is stored), refunded if the entry is discarded
unfinished, and kept once the message is complete, read or not. A message
that would pass the quota is refused with ``QuotaExceeded`` naming the party
and the job; resumes and duplicates of a message already charged cost nothing.

A Transfer stream is written through a :class:`TransferSession`: it starts
where the entry stopped (a broken earlier stream may have written some chunks),
acks chunks once written, and ends the stream with a ``resend`` ack as soon as
a chunk is corrupt, short or missing, telling the sender where to resume. A
chunk that keeps failing is refused after ``max_strikes`` attempts, so a broken
sender cannot make the gateway loop forever; the message is never decoded
either way.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from fedspark.federation._errors import CorruptMessage, PeerTimeout, QuotaExceeded, TransportClosed
from fedspark.federation._message import MessageKey, PayloadKind, TransferAck
from fedspark.federation.transport._chunks import ChunkPart, Header, chunk_problem
from fedspark.federation.transport._spill import PayloadStore, ReceivedPayload, SpillArea

DEFAULT_MEMORY_LIMIT_BYTES = 256 << 20
"""256 MiB of payloads held in memory per gateway; larger or later ones spill to files."""

AliveCheck = Callable[[], None]
"""Called while a receiver waits; raises (e.g. ``PeerSilent``) to stop waiting."""

CompleteHook = Callable[[Header, ReceivedPayload], None]
"""Sees each message once it is complete, before a receiver can (the gateway's tap)."""


class WriteStatus(enum.Enum):
    """What became of one chunk offered to an entry."""

    WRITTEN = "written"
    """Stored; the entry expects ``next_index`` next."""
    COMPLETE = "complete"
    """Stored, and it was the last: the message is now readable."""
    BEHIND = "behind"
    """An index the entry already has (a resend): ignored."""
    AHEAD = "ahead"
    """An index past the next expected one: a chunk went missing in between."""
    BAD = "bad"
    """Failed its checks (checksum, size, header): not stored; ``problem`` says why."""
    STALE = "stale"
    """Another stream took the entry over, or its job was closed: stop writing."""


@dataclass(frozen=True)
class WriteResult:
    status: WriteStatus
    next_index: int
    problem: str = ""
    strikes: int = 0


@dataclass(frozen=True)
class Opened:
    """The entry a stream may now write to, or why it need not write at all."""

    entry: Entry | None
    next_index: int
    duplicate: bool
    """The message is already complete or delivered: nothing to write."""
    stored_bytes: int = 0


class Entry:
    """One message as it arrives: header, store, how far it got, who writes it."""

    def __init__(self, header: Header, store: PayloadStore, memory_bytes: int) -> None:
        self.header = header
        self.store = store
        self.memory_bytes = memory_bytes
        self.next_index = 0
        self.strikes = 0
        self.owner: object | None = None
        self.payload: ReceivedPayload | None = None
        self.dropped = False
        self.lock = threading.Lock()

    @property
    def complete(self) -> bool:
        return self.payload is not None


class Mailbox:
    """Incoming entries, plus the keys already delivered, for one receiving party."""

    def __init__(
        self,
        *,
        memory_limit_bytes: int = DEFAULT_MEMORY_LIMIT_BYTES,
        work_dir: Path | str | None = None,
        label: str = "party",
        on_complete: CompleteHook | None = None,
        job_quota_bytes: int | None = None,
    ) -> None:
        if memory_limit_bytes < 0:
            raise ValueError(f"memory_limit_bytes must be >= 0, got {memory_limit_bytes}")
        if job_quota_bytes is not None and job_quota_bytes < 0:
            raise ValueError(f"job_quota_bytes must be >= 0, got {job_quota_bytes}")
        self.memory_limit_bytes = memory_limit_bytes
        self.job_quota_bytes = job_quota_bytes
        """Bytes accepted per (job, sending party) before further messages are refused (None: no limit)."""
        self._accepted: dict[tuple[str, str], int] = {}
        self._on_complete = on_complete
        self._spill = SpillArea(work_dir, label)
        self._cond = threading.Condition()
        self._entries: dict[MessageKey, Entry] = {}
        self._delivered: set[MessageKey] = set()
        self._memory_used = 0
        self._closed = False

    @property
    def work_dir(self) -> Path | None:
        """The folder spill files go under (None: the system temp dir)."""
        return self._spill.work_dir

    @property
    def spill_root(self) -> Path | None:
        """The folder of this mailbox's spill files (None until something spilled)."""
        return self._spill.root

    # ------------------------------------------------------------ writing

    def open_entry(self, header: Header, owner: object, *, fresh: bool = False) -> Opened:
        """Find or create the entry for ``header.key`` and make ``owner`` its only writer.

        A partial entry is resumed where it stopped unless ``fresh`` (a Push,
        which always starts at chunk 0) or its framing differs (the sender
        changed its chunk size): then it starts over.
        """
        key = header.key
        with self._cond:
            if self._closed:
                raise TransportClosed(key.job_id, key.tag, str(key.src), "storing")
            if key in self._delivered:
                return Opened(None, header.chunk_count, duplicate=True, stored_bytes=header.total_bytes)
            entry = self._entries.get(key)
            if entry is not None and entry.complete:
                return Opened(None, header.chunk_count, duplicate=True, stored_bytes=entry.store.size)
            if entry is not None and (fresh or not _same_framing(entry.header, header)):
                self._remove(entry)
                entry = None
            if entry is None:
                self._charge(header)
                entry = self._new_entry(header)
                self._entries[key] = entry
        with entry.lock:  # waits for a write of the previous owner to finish
            entry.owner = owner
            return Opened(entry, entry.next_index, duplicate=False)

    def _new_entry(self, header: Header) -> Entry:
        size = header.total_bytes
        # Raw Arrow streams are table partitions: always spilled, so that executors
        # read them from files and the receiving driver never holds a table.
        in_memory = header.kind is not PayloadKind.ARROW_STREAM
        if in_memory and self._memory_used + size <= self.memory_limit_bytes:
            self._memory_used += size
            return Entry(header, PayloadStore(), size)
        return Entry(header, self._spill.new_store(header.key.job_id), 0)

    def write(self, entry: Entry, owner: object, part: ChunkPart) -> WriteResult:
        """Check ``part`` and append it if it is the chunk the entry expects next.

        Returns only after the bytes are written (and, for a spill file,
        flushed), so an ack sent on ``WRITTEN`` means the chunk is stored.
        """
        header = entry.header
        with entry.lock:
            if entry.owner is not owner or entry.dropped:
                return WriteResult(WriteStatus.STALE, entry.next_index)
            if entry.complete or part.index < entry.next_index:
                return WriteResult(WriteStatus.BEHIND, entry.next_index)
            if part.index > entry.next_index:
                return WriteResult(WriteStatus.AHEAD, entry.next_index)
            problem = chunk_problem(header, part)
            if problem is None and entry.store.size + len(part.data) > header.total_bytes:
                problem = f"more data than announced ({header.total_bytes} bytes in {header.chunk_count} chunks)"
            if problem is not None:
                entry.strikes += 1
                return WriteResult(WriteStatus.BAD, entry.next_index, problem, entry.strikes)
            entry.store.write(part.data)
            entry.next_index += 1
            entry.strikes = 0
            if entry.next_index < header.chunk_count:
                return WriteResult(WriteStatus.WRITTEN, entry.next_index)
            if entry.store.size != header.total_bytes:
                entry.strikes += 1
                problem = f"all {header.chunk_count} chunks hold {entry.store.size} bytes, {header.total_bytes} were announced"
                return WriteResult(WriteStatus.BAD, entry.next_index, problem, entry.strikes)
            payload = entry.store.finish(header.kind)
        if self._on_complete is not None:
            self._on_complete(header, payload)
        with self._cond:
            if entry.dropped:
                payload.release()
                return WriteResult(WriteStatus.STALE, entry.next_index)
            entry.payload = payload
            self._cond.notify_all()
        return WriteResult(WriteStatus.COMPLETE, entry.next_index)

    def abandon(self, entry: Entry, owner: object) -> None:
        """Discard a partial entry whose stream failed for good (a refused Push)."""
        with self._cond:
            if entry.owner is owner and not entry.complete and self._entries.get(entry.header.key) is entry:
                self._remove(entry)

    def put(self, key: MessageKey, payload: bytes, kind: PayloadKind = PayloadKind.RAW) -> bool:
        """Store a whole payload at once (in-process transports); False for a duplicate key."""
        with self._cond:
            if self._closed:
                raise TransportClosed(key.job_id, key.tag, str(key.src), "storing")
            if key in self._entries or key in self._delivered:
                return False
            header = Header(key, kind, len(payload), 1)
            self._charge(header)
            entry = Entry(header, PayloadStore(), len(payload))
            entry.payload = ReceivedPayload(len(payload), data=payload, kind=kind)
            self._memory_used += len(payload)
            self._entries[key] = entry
            self._cond.notify_all()
            return True

    def accepted_bytes(self, job_id: str, party_id: str) -> int:
        """Bytes charged to ``party_id`` in ``job_id`` so far (messages stored, read, or arriving)."""
        with self._cond:
            return self._accepted.get((job_id, party_id), 0)

    def _charge(self, header: Header) -> None:
        """Count a new entry's announced size against its sender's quota (caller holds the mailbox lock)."""
        key = header.key
        slot = (key.job_id, key.src.party_id)
        used = self._accepted.get(slot, 0)
        quota = self.job_quota_bytes
        if quota is not None and used + header.total_bytes > quota:
            raise QuotaExceeded(key.job_id, key.tag, str(key.src), key.src.party_id, used, header.total_bytes, quota)
        self._accepted[slot] = used + header.total_bytes

    def _refund(self, header: Header) -> None:
        """An entry discarded before it was complete no longer counts (caller holds the mailbox lock)."""
        slot = (header.key.job_id, header.key.src.party_id)
        left = self._accepted.get(slot, 0) - header.total_bytes
        if left > 0:
            self._accepted[slot] = left
        else:
            self._accepted.pop(slot, None)

    # ------------------------------------------------------------ reading

    def take_payload(
        self, key: MessageKey, timeout_s: float, *, alive: AliveCheck | None = None, poll_s: float = 0.2
    ) -> ReceivedPayload:
        """Wait up to ``timeout_s`` for ``key`` to be complete; remove it and hand it over.

        ``alive`` is called about every ``poll_s`` while waiting (outside the
        mailbox lock) and may raise to stop the wait, e.g. when the sender is
        known to be dead. The caller owns the payload and must ``release`` it.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            with self._cond:
                entry = self._entries.get(key)
                if entry is not None and entry.payload is not None:
                    del self._entries[key]
                    self._delivered.add(key)
                    self._memory_used -= entry.memory_bytes
                    return entry.payload
                if self._closed:
                    raise TransportClosed(key.job_id, key.tag, str(key.src), "waiting for")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise PeerTimeout(key.job_id, key.tag, str(key.src), timeout_s)
                self._cond.wait(remaining if alive is None else min(remaining, poll_s))
            if alive is not None:
                alive()

    def take(
        self, key: MessageKey, timeout_s: float, *, alive: AliveCheck | None = None, poll_s: float = 0.2
    ) -> bytes:
        """Like :meth:`take_payload`, returning the bytes (a spill file is read and deleted)."""
        payload = self.take_payload(key, timeout_s, alive=alive, poll_s=poll_s)
        try:
            return payload.read()
        finally:
            payload.release()

    def reconcile(self, keys: Iterable[MessageKey]) -> tuple[list[MessageKey], list[MessageKey]]:
        """Of messages a sender still keeps: which were read, and which this mailbox lacks.

        A key neither stored nor delivered was lost (this process restarted
        after acking it); the sender resends it. Anything still stored, even
        partially, is neither: it only waits to be read.
        """
        read: list[MessageKey] = []
        missing: list[MessageKey] = []
        with self._cond:
            for key in keys:
                if key in self._delivered:
                    read.append(key)
                elif key not in self._entries:
                    missing.append(key)
        return read, missing

    # ------------------------------------------------------------ lifetime

    def drop_job(self, job_id: str) -> None:
        """Delete a finished job's entries (and their files) and forget its delivered keys."""
        with self._cond:
            for entry in [e for k, e in self._entries.items() if k.job_id == job_id]:
                self._remove(entry)
            self._delivered = {k for k in self._delivered if k.job_id != job_id}
            self._accepted = {slot: n for slot, n in self._accepted.items() if slot[0] != job_id}
        self._spill.drop_job(job_id)

    def close(self) -> None:
        """Wake every waiting receiver with ``TransportClosed``; delete everything stored."""
        with self._cond:
            self._closed = True
            for entry in list(self._entries.values()):
                self._remove(entry)
            self._cond.notify_all()
        self._spill.close()

    def _remove(self, entry: Entry) -> None:
        """Drop ``entry`` (caller holds the mailbox lock): free its memory, delete its file.

        Lock order is mailbox, then entry: ``write`` never holds the entry lock
        while it takes the mailbox lock, so waiting here for a running write
        cannot deadlock, and a file is never closed under a writer.
        """
        with entry.lock:
            entry.dropped = True
            if entry.payload is not None:
                entry.payload.release()
            else:
                entry.store.discard()
                self._refund(entry.header)
        self._entries.pop(entry.header.key, None)
        self._memory_used -= entry.memory_bytes

    def __len__(self) -> int:
        """Complete messages waiting to be read."""
        with self._cond:
            return sum(1 for entry in self._entries.values() if entry.complete)


def _same_framing(a: Header, b: Header) -> bool:
    return (a.kind, a.total_bytes, a.chunk_count, a.chunk_bytes) == (b.kind, b.total_bytes, b.chunk_count, b.chunk_bytes)


# ------------------------------------------------------------ one Transfer stream, written into the mailbox

DEFAULT_MAX_STRIKES = 3
"""How often in a row one chunk may arrive bad before the message is refused."""

ACK_EVERY_BYTES = 8 << 20
"""Written chunks are acknowledged together, one ack per this many bytes (and at the end).

An ack still means "written": it carries the index after the last stored chunk.
Coalescing matters because the synchronous gRPC server waits for each reply to
go out before it reads the next request; an ack per 1 MiB chunk held a 1 GiB
send to a fraction of a bare stream's rate. A broken stream loses nothing: the
next attempt's first ack says where the stored chunks end.
"""


class TransferSession:
    """Writes one stream's chunks into the message's mailbox entry and says what to ack.

    ``first_ack`` answers the open; ``write`` returns the ack for a chunk (or
    None when there is nothing to say); ``finish`` is called at the end of the
    sender's stream. Once ``done``, the servicer ends the stream.
    """

    def __init__(
        self,
        mailbox: Mailbox,
        header: Header,
        *,
        boot_id: str,
        read: tuple[MessageKey, ...] = (),
        missing: tuple[MessageKey, ...] = (),
        max_strikes: int = DEFAULT_MAX_STRIKES,
        ack_every_bytes: int = ACK_EVERY_BYTES,
    ) -> None:
        self.header = header
        self._mailbox = mailbox
        self._owner = object()
        self._max_strikes = max_strikes
        self._ack_every = max(1, ack_every_bytes // header.chunk_bytes) if header.chunk_bytes > 0 else 1
        opened = mailbox.open_entry(header, self._owner)
        self._entry = opened.entry
        self.done = opened.duplicate
        self.first_ack = TransferAck(
            next_index=opened.next_index,
            complete=opened.duplicate,
            duplicate=opened.duplicate,
            stored_bytes=opened.stored_bytes,
            boot_id=boot_id,
            read=read,
            missing=missing,
        )

    def write(self, part: ChunkPart) -> TransferAck | None:
        """Offer one chunk; raises ``CorruptMessage`` when a chunk failed too often."""
        if self.done or self._entry is None:
            return None
        result = self._mailbox.write(self._entry, self._owner, part)
        status = result.status
        if status is WriteStatus.WRITTEN:
            return TransferAck(result.next_index) if result.next_index % self._ack_every == 0 else None
        if status is WriteStatus.COMPLETE:
            self.done = True
            return TransferAck(result.next_index, complete=True, stored_bytes=self.header.total_bytes)
        if status is WriteStatus.BEHIND:
            return None
        if status is WriteStatus.STALE:
            # A newer stream for this message took over (or its job closed):
            # end this one quietly, the newer one carries on.
            self.done = True
            return None
        if status is WriteStatus.BAD and result.strikes >= self._max_strikes:
            key = self.header.key
            raise CorruptMessage(
                key.job_id,
                key.tag,
                str(key.src),
                f"{result.problem} ({result.strikes} times in a row; giving up on this message)",
            )
        # BAD (resendable) or AHEAD (a chunk went missing): resume from next_index.
        self.done = True
        return TransferAck(result.next_index, resend=True)

    def finish(self) -> TransferAck | None:
        """The sender ended its stream: if the message is incomplete, say where to resume."""
        if self.done or self._entry is None:
            return None
        self.done = True
        return TransferAck(self._entry.next_index, resend=True)
