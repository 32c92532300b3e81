"""Splitting a message into checksummed chunks and putting it back together.

gRPC caps the size of one message, and a table partition can be hundreds of
megabytes, so a payload is pushed as a stream of chunks. Every chunk carries a
CRC-32 so corruption is reported as such (and where), and the header in chunk 0
announces the total size so a gateway can refuse a message before reading it.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from fedspark.federation._errors import CorruptMessage
from fedspark.federation._message import Envelope, MessageKey, PayloadKind

DEFAULT_CHUNK_BYTES = 1 << 20
"""1 MiB: large enough to amortise per-message overhead, small enough to stream."""

MAX_CHUNK_BYTES = 16 << 20
"""Gateways accept gRPC messages up to twice this, so any chunk size up to it fits."""


@dataclass(frozen=True)
class Header:
    """What chunk 0 announces: the message key, its kind and its size."""

    key: MessageKey
    kind: PayloadKind
    total_bytes: int
    chunk_count: int


@dataclass(frozen=True)
class ChunkPart:
    """One chunk as the domain sees it; ``header`` is set at least on chunk 0."""

    index: int
    data: bytes
    crc32: int
    header: Header | None = None

    def __repr__(self) -> str:
        return f"ChunkPart(index={self.index}, {len(self.data)} bytes, header={self.header})"


def checksum(data: bytes | memoryview) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def chunk_count(total_bytes: int, chunk_bytes: int) -> int:
    """At least one: an empty payload still needs a chunk to carry the header."""
    return max(1, -(-total_bytes // chunk_bytes))


def split(envelope: Envelope, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> Iterator[ChunkPart]:
    """Yield the chunks of ``envelope`` lazily, so a resend can simply call this again."""
    if not 0 < chunk_bytes <= MAX_CHUNK_BYTES:
        raise ValueError(f"chunk size must be in 1..{MAX_CHUNK_BYTES} bytes, got {chunk_bytes}")
    payload = memoryview(envelope.payload)
    count = chunk_count(len(payload), chunk_bytes)
    header = Header(envelope.key, envelope.kind, len(payload), count)
    for index in range(count):
        piece = payload[index * chunk_bytes : (index + 1) * chunk_bytes]
        yield ChunkPart(index, bytes(piece), checksum(piece), header if index == 0 else None)


def reassemble(parts: Iterable[ChunkPart], admit: Callable[[Header], None]) -> Envelope:
    """Check and join a chunk stream into an envelope.

    ``admit`` sees the header before any further chunk is read and raises to
    refuse the message (unknown job, wrong party, too large), so a refused
    sender does not get to stream gigabytes first.
    """
    stream = iter(parts)
    first = next(stream, None)
    if first is None:
        raise CorruptMessage("?", "?", "?", "empty stream: no chunks")
    header = first.header
    if header is None:
        raise CorruptMessage("?", "?", "?", f"chunk {first.index} arrived first without a header")
    key = header.key
    admit(header)

    def corrupt(problem: str) -> CorruptMessage:
        return CorruptMessage(key.job_id, key.tag, str(key.src), problem)

    pieces: list[bytes] = []
    size = 0
    part: ChunkPart | None = first
    while part is not None:
        expected = len(pieces)
        if part.index != expected:
            raise corrupt(f"chunk {part.index} arrived where chunk {expected} was expected")
        if part.header is not None and part.header != header:
            raise corrupt(f"chunk {part.index} carries a header that differs from chunk 0's")
        if checksum(part.data) != part.crc32:
            raise corrupt(f"checksum mismatch in chunk {part.index}")
        size += len(part.data)
        if size > header.total_bytes or expected >= header.chunk_count:
            raise corrupt(
                f"more data than announced ({header.total_bytes} bytes in {header.chunk_count} chunks)"
            )
        pieces.append(part.data)
        part = next(stream, None)
    if size != header.total_bytes or len(pieces) != header.chunk_count:
        raise corrupt(
            f"stream ended after {len(pieces)} chunks and {size} bytes; "
            f"announced {header.chunk_count} chunks and {header.total_bytes} bytes"
        )
    return Envelope(key, b"".join(pieces), header.kind)
