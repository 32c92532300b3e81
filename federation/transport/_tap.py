"""A recording tap: a copy of every message a gateway accepted, written to a folder.

Privacy claims ("the arbiter never sees a host's plaintext gradient") are only
testable by looking at what actually crossed a party boundary. The tap writes
each accepted payload exactly as received, next to a small JSON header, so a
test can scan them for plaintext. It is a test and audit aid, not a mailbox:
nothing reads from it.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import threading
from pathlib import Path

from fedspark.federation._message import Envelope, MessageKey, PayloadKind
from fedspark.federation.transport._chunks import Header
from fedspark.federation.transport._spill import ReceivedPayload

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _safe(text: str) -> str:
    return _UNSAFE.sub("_", text)[:80]


class RecordingTap:
    """Writes ``NNNNNN_<job>_<tag>_<src>_to_<dst>_<seq>.bin`` and ``.json`` per message."""

    def __init__(self, folder: Path | str) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._count = 0

    def record(self, envelope: Envelope) -> Path:
        """Write the payload and its header; return the payload file's path."""
        return self.record_stored(
            envelope.key, envelope.kind, ReceivedPayload(len(envelope.payload), data=envelope.payload)
        )

    def record_chunk(self, header: Header, index: int, data: bytes) -> Path:
        """Record one chunk a relay (the exchange) forwarded, with the header it travelled under.

        A relay never holds a whole message, so it records chunk by chunk;
        the JSON names the chunk's ``index`` and the message's ``chunk_count``.
        """
        extra: dict[str, object] = {"index": index, "chunk_count": header.chunk_count, "total_bytes": header.total_bytes}
        return self.record_stored(header.key, header.kind, ReceivedPayload(len(data), data=data), extra=extra)

    def record_stored(
        self, key: MessageKey, kind: PayloadKind, payload: ReceivedPayload, *, extra: dict[str, object] | None = None
    ) -> Path:
        """Record a payload as the mailbox stored it; a spilled one is copied file to file."""
        with self._lock:
            self._count += 1
            number = self._count
        stem = "_".join(
            [f"{number:06d}", _safe(key.job_id), _safe(key.tag), _safe(str(key.src)), "to", _safe(str(key.dst)), str(key.seq)]
        )
        payload_path = self.folder / f"{stem}.bin"
        digest = hashlib.sha256()
        if payload.path is not None:
            shutil.copyfile(payload.path, payload_path)
            with payload_path.open("rb") as copied:
                for block in iter(lambda: copied.read(1 << 20), b""):
                    digest.update(block)
        else:
            data = payload.read()
            payload_path.write_bytes(data)
            digest.update(data)
        header = {
            "job_id": key.job_id,
            "tag": key.tag,
            "src": str(key.src),
            "dst": str(key.dst),
            "seq": key.seq,
            "kind": kind.value,
            "size": payload.size,
            "sha256": digest.hexdigest(),
            "payload_file": payload_path.name,
            **(extra or {}),
        }
        (self.folder / f"{stem}.json").write_text(json.dumps(header, indent=2), encoding="utf-8")
        return payload_path

    def records(self) -> list[dict[str, object]]:
        """The JSON headers written so far, oldest first (for tests)."""
        return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(self.folder.glob("*.json"))]
