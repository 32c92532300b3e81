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
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from fedspark.federation._chunks import ChunkPart, Header, chunk_problem
from fedspark.federation._errors import PeerTimeout, TransportClosed
from fedspark.federation._message import MessageKey, PayloadKind
from fedspark.federation._spill import PayloadStore, ReceivedPayload, SpillArea

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
    ) -> None:
        if memory_limit_bytes < 0:
            raise ValueError(f"memory_limit_bytes must be >= 0, got {memory_limit_bytes}")
        self.memory_limit_bytes = memory_limit_bytes
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
            entry = Entry(header, PayloadStore(), len(payload))
            entry.payload = ReceivedPayload(len(payload), data=payload, kind=kind)
            self._memory_used += len(payload)
            self._entries[key] = entry
            self._cond.notify_all()
            return True

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
        self._entries.pop(entry.header.key, None)
        self._memory_used -= entry.memory_bytes

    def __len__(self) -> int:
        """Complete messages waiting to be read."""
        with self._cond:
            return sum(1 for entry in self._entries.values() if entry.complete)


def _same_framing(a: Header, b: Header) -> bool:
    return (a.kind, a.total_bytes, a.chunk_count, a.chunk_bytes) == (b.kind, b.total_bytes, b.chunk_count, b.chunk_bytes)
