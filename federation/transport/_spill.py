"""Where a mailbox keeps payloads: in memory while they are small, in files beyond.

A table partition of ciphertexts can be gigabytes, and several may be waiting
at once, so a gateway cannot hold every payload in memory. Each message gets a
store chosen when its header arrives (its size is known then): a list of
chunks in memory, or a file under the gateway's work dir that every chunk is
appended to *before* it is acknowledged. A reader gets a
:class:`ReceivedPayload`, which hands spilled bytes out through a memory map,
so an Arrow stream can be read batch by batch without loading the file.
"""

from __future__ import annotations

import itertools
import re
import shutil
import tempfile
import threading
import uuid
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import pyarrow as pa

from fedspark.federation._message import PayloadKind

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _safe(text: str) -> str:
    return _UNSAFE.sub("_", text)[:60] or "_"


class ReceivedPayload:
    """One complete, verified payload, owned by whoever took it from the mailbox.

    ``release`` deletes a spilled file (idempotent; also on ``with`` exit), so
    a message read is gone from disk; the memory map behind ``buffer`` stays
    valid after the unlink on POSIX systems.
    """

    def __init__(
        self, size: int, *, data: bytes | None = None, path: Path | None = None, kind: PayloadKind | None = None
    ) -> None:
        if (data is None) == (path is None):
            raise ValueError("a payload is either in memory (data) or in a file (path)")
        self.size = size
        self._data = data
        self.path = path
        self.kind = kind
        """How to read the bytes (from the message header); None when the transport does not say."""

    @property
    def spilled(self) -> bool:
        """True when the payload lives in a file under the gateway's work dir."""
        return self.path is not None

    def read(self) -> bytes:
        """The whole payload as bytes (reads a spilled file completely)."""
        if self._data is not None:
            return self._data
        assert self.path is not None  # by construction
        return self.path.read_bytes()

    def buffer(self) -> pa.Buffer:
        """The payload as an Arrow buffer: memory-mapped when spilled, so nothing is copied."""
        if self._data is not None:
            return pa.py_buffer(self._data)
        assert self.path is not None
        with pa.memory_map(str(self.path)) as mapped:
            return mapped.read_buffer()

    def stream(self) -> pa.NativeFile:
        """The payload as a file to read front to back: a spilled one is read, not memory-mapped.

        For reading a large Arrow stream batch by batch: each batch is read
        into fresh memory and freed with it, so the reader's resident set stays
        about one batch. (Pages of a memory map that a reader touches count as
        its resident memory until the OS reclaims them.)
        """
        if self._data is not None:
            return pa.BufferReader(pa.py_buffer(self._data))
        assert self.path is not None
        return pa.OSFile(str(self.path))

    def release(self) -> None:
        """Forget the payload and delete its file, if any."""
        self._data = None if self.path is not None else self._data
        if self.path is not None:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> ReceivedPayload:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    def __repr__(self) -> str:
        where = f"file {self.path}" if self.path is not None else "memory"
        return f"ReceivedPayload({self.size} bytes in {where})"


class PayloadStore:
    """Where one incoming message's chunks go while it arrives (in memory)."""

    spilled = False

    def __init__(self) -> None:
        self._pieces: list[bytes] = []
        self.size = 0

    def write(self, data: bytes) -> None:
        self._pieces.append(data)
        self.size += len(data)

    def finish(self, kind: PayloadKind | None = None) -> ReceivedPayload:
        data = b"".join(self._pieces)
        self._pieces = []
        return ReceivedPayload(len(data), data=data, kind=kind)

    def discard(self) -> None:
        self._pieces = []


class FileStore(PayloadStore):
    """A spilled message: chunks appended to a file, flushed before each ack."""

    spilled = True

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self._file: BinaryIO | None = path.open("wb")

    def write(self, data: bytes) -> None:
        if self._file is None:
            raise ValueError(f"spill file {self.path} is already closed")
        self._file.write(data)
        # Flushed to the OS before the chunk is acked: a crash of this process
        # after the ack does not lose the chunk.
        self._file.flush()
        self.size += len(data)

    def finish(self, kind: PayloadKind | None = None) -> ReceivedPayload:
        self._close()
        return ReceivedPayload(self.size, path=self.path, kind=kind)

    def discard(self) -> None:
        self._close()
        self.path.unlink(missing_ok=True)

    def _close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class SpillArea:
    """The folder tree of one mailbox's spill files: ``<root>/<job>/<n>.msg``.

    The root is created on first use: under ``work_dir`` (one subfolder per
    gateway process, so two gateways sharing a work dir never touch each
    other's files) or, without one, in the system temp dir. ``close`` removes
    it all.
    """

    def __init__(self, work_dir: Path | str | None, label: str) -> None:
        self.work_dir = Path(work_dir) if work_dir is not None else None
        self._label = _safe(label)
        self._root: Path | None = None
        self._lock = threading.Lock()
        self._counter = itertools.count(1)

    @property
    def root(self) -> Path | None:
        """The folder holding spill files, or None while nothing has spilled."""
        return self._root

    def new_store(self, job_id: str) -> FileStore:
        with self._lock:
            if self._root is None:
                if self.work_dir is not None:
                    self._root = self.work_dir / f"mailbox-{self._label}-{uuid.uuid4().hex[:8]}"
                    self._root.mkdir(parents=True)
                else:
                    self._root = Path(tempfile.mkdtemp(prefix=f"fedspark-mailbox-{self._label}-"))
            folder = self._root / _safe(job_id)
            folder.mkdir(exist_ok=True)
            path = folder / f"{next(self._counter):06d}.msg"
        return FileStore(path)

    def drop_job(self, job_id: str) -> None:
        with self._lock:
            root = self._root
        if root is not None:
            shutil.rmtree(root / _safe(job_id), ignore_errors=True)

    def close(self) -> None:
        with self._lock:
            root, self._root = self._root, None
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)
