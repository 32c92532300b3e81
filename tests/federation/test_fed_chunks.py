"""Splitting and reassembly, and the gateway's receive path, without a server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fedspark.common import PartyRef, Role
from fedspark.federation import Envelope, MessageKey
from fedspark.federation.transport import (
    ChunkPart,
    CorruptMessage,
    Gateway,
    Header,
    UnknownJob,
    checksum,
    reassemble,
    split,
)

GUEST = PartyRef(Role.GUEST, "9999")
HOST = PartyRef(Role.HOST, "10000")
KEY = MessageKey("j", "t", HOST, GUEST)


@pytest.mark.parametrize(("size", "chunks"), [(0, 1), (1, 1), (4, 1), (5, 2), (12, 3)])
def test_split_counts_and_sizes(size: int, chunks: int) -> None:
    parts = list(split(Envelope(KEY, bytes(range(size))), chunk_bytes=4))
    assert len(parts) == chunks
    assert parts[0].header == Header(KEY, parts[0].header.kind, size, chunks)  # type: ignore[union-attr]
    assert all(p.header is None for p in parts[1:])
    assert b"".join(p.data for p in parts) == bytes(range(size))


def test_chunk_size_is_bounded() -> None:
    with pytest.raises(ValueError, match="chunk size"):
        list(split(Envelope(KEY, b"x"), chunk_bytes=0))


def test_reassemble_round_trip_and_admit_sees_the_header_first() -> None:
    seen: list[Header] = []
    envelope = Envelope(KEY, b"0123456789")
    assert reassemble(split(envelope, 3), seen.append) == envelope
    assert len(seen) == 1 and seen[0].total_bytes == 10


def test_refusal_happens_before_the_rest_is_read() -> None:
    consumed: list[int] = []

    def stream() -> Iterator[ChunkPart]:
        for part in split(Envelope(KEY, b"x" * 100), 10):
            consumed.append(part.index)
            yield part

    def refuse(header: Header) -> None:
        raise UnknownJob(header.key.job_id, header.key.tag, str(header.key.src), "9999")

    with pytest.raises(UnknownJob):
        reassemble(stream(), refuse)
    assert consumed == [0]


def test_extra_and_empty_streams_are_corrupt() -> None:
    parts = list(split(Envelope(KEY, b"abcdef"), 3))
    extra = ChunkPart(2, b"g", checksum(b"g"))
    with pytest.raises(CorruptMessage, match="more data than announced"):
        reassemble([*parts, extra], lambda h: None)
    with pytest.raises(CorruptMessage, match="empty stream"):
        reassemble([], lambda h: None)
    other = Header(MessageKey("j", "other", HOST, GUEST), parts[0].header.kind, 6, 2)  # type: ignore[union-attr]
    with pytest.raises(CorruptMessage, match="differs from chunk 0"):
        reassemble([parts[0], ChunkPart(1, parts[1].data, parts[1].crc32, other)], lambda h: None)


def test_gateway_receive_stores_once_and_taps(tmp_path: Path) -> None:
    gateway = Gateway("9999", tap_dir=tmp_path)
    gateway.open_job("j", [GUEST, HOST])
    envelope = Envelope(KEY, b"payload")
    first = gateway.receive(split(envelope))
    again = gateway.receive(split(envelope))
    assert (first.duplicate, again.duplicate, first.stored_bytes) == (False, True, 7)
    assert gateway.take(KEY, 1) == b"payload"
    assert gateway.tap is not None and [r["tag"] for r in gateway.tap.records()] == ["t"]
    gateway.stop()
