"""The mailbox without a server: memory or spill, ack-after-write, resume, de-duplication, deletion."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedspark.common import PartyRef, Role
from fedspark.federation import Envelope, MessageKey, PayloadKind, PeerTimeout
from fedspark.federation.transport import (
    ChunkPart,
    CorruptMessage,
    Gateway,
    Mailbox,
    QuotaExceeded,
    TransferSession,
    WriteStatus,
    checksum,
    header_of,
    split,
)

GUEST = PartyRef(Role.GUEST, "9999")
HOST = PartyRef(Role.HOST, "10000")
JOB = "job-mailbox"


def key(tag: str, job: str = JOB) -> MessageKey:
    return MessageKey(job, tag, HOST, GUEST)


def envelope(tag: str, size: int, job: str = JOB) -> Envelope:
    return Envelope(key(tag, job), bytes(i % 251 for i in range(size)), PayloadKind.RAW)


def spill_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.msg"))


def test_small_messages_stay_in_memory_and_large_ones_spill(tmp_path: Path) -> None:
    mailbox = Mailbox(memory_limit_bytes=100, work_dir=tmp_path)
    small, large = envelope("small", 60), envelope("large", 60)  # together over the limit
    for env in (small, large):
        owner = object()
        opened = mailbox.open_entry(header_of(env, 16), owner)
        assert opened.entry is not None
        for part in split(env, 16):
            mailbox.write(opened.entry, owner, part)
    (spilled,) = spill_files(tmp_path)
    assert spilled.read_bytes() == large.payload
    with mailbox.take_payload(key("small"), 1) as payload:
        assert not payload.spilled and payload.read() == small.payload
    with mailbox.take_payload(key("large"), 1) as payload:
        assert payload.spilled and payload.path == spilled
        assert payload.buffer().to_pybytes() == large.payload
    assert spill_files(tmp_path) == []  # deleted once read
    mailbox.close()
    assert list(tmp_path.iterdir()) == []  # the mailbox's own folder is gone too


def test_a_chunk_is_on_disk_when_write_returns(tmp_path: Path) -> None:
    mailbox = Mailbox(memory_limit_bytes=0, work_dir=tmp_path)
    env = envelope("w", 40)
    owner = object()
    opened = mailbox.open_entry(header_of(env, 16), owner)
    assert opened.entry is not None
    parts = list(split(env, 16))
    result = mailbox.write(opened.entry, owner, parts[0])
    assert (result.status, result.next_index) == (WriteStatus.WRITTEN, 1)
    (partial,) = spill_files(tmp_path)
    assert partial.read_bytes() == env.payload[:16]  # flushed before the ack
    with pytest.raises(PeerTimeout):
        mailbox.take(key("w"), 0.05)  # not readable until complete
    mailbox.close()


def test_a_newer_stream_takes_over_and_resumes(tmp_path: Path) -> None:
    mailbox = Mailbox(work_dir=tmp_path)
    env = envelope("w", 40)
    header = header_of(env, 16)
    parts = list(split(env, 16))
    first, second = object(), object()
    opened = mailbox.open_entry(header, first)
    assert opened.entry is not None
    mailbox.write(opened.entry, first, parts[0])
    resumed = mailbox.open_entry(header, second)
    assert resumed.entry is opened.entry and resumed.next_index == 1
    assert mailbox.write(opened.entry, first, parts[1]).status is WriteStatus.STALE
    assert mailbox.write(opened.entry, second, parts[1]).status is WriteStatus.WRITTEN
    assert mailbox.write(opened.entry, second, parts[2]).status is WriteStatus.COMPLETE
    assert mailbox.take(key("w"), 1) == env.payload
    mailbox.close()


@pytest.mark.parametrize(
    ("part", "status", "problem"),
    [
        (ChunkPart(0, b"x" * 16, 0), WriteStatus.BAD, "checksum mismatch in chunk 0"),
        (ChunkPart(0, b"x" * 8, checksum(b"x" * 8)), WriteStatus.BAD, "chunk 0 has 8 bytes, 16 were announced"),
        (ChunkPart(2, b"x" * 8, checksum(b"x" * 8)), WriteStatus.AHEAD, ""),
    ],
    ids=["checksum", "short", "gap"],
)
def test_bad_chunks_are_not_written(part: ChunkPart, status: WriteStatus, problem: str) -> None:
    mailbox = Mailbox()
    owner = object()
    opened = mailbox.open_entry(header_of(envelope("w", 40), 16), owner)
    assert opened.entry is not None
    result = mailbox.write(opened.entry, owner, part)
    assert (result.status, result.next_index, result.problem) == (status, 0, problem)
    assert opened.entry.store.size == 0
    mailbox.close()


def test_delivered_keys_are_never_stored_again() -> None:
    mailbox = Mailbox()
    assert mailbox.put(key("once"), b"v")
    assert mailbox.take(key("once"), 1) == b"v"
    assert not mailbox.put(key("once"), b"v")
    again = mailbox.open_entry(header_of(envelope("once", 1)), object())
    assert again.duplicate and again.entry is None
    assert mailbox.reconcile([key("once"), key("stored"), key("lost")]) == ([key("once")], [key("stored"), key("lost")])
    mailbox.put(key("stored"), b"s")
    assert mailbox.reconcile([key("stored"), key("lost")]) == ([], [key("lost")])
    mailbox.close()


def test_closing_a_job_deletes_its_entries_and_files(tmp_path: Path) -> None:
    mailbox = Mailbox(memory_limit_bytes=0, work_dir=tmp_path)
    for job in (JOB, "job-other"):
        env = envelope("w", 10, job)
        owner = object()
        opened = mailbox.open_entry(header_of(env), owner)
        assert opened.entry is not None
        mailbox.write(opened.entry, owner, next(split(env)))
    assert len(spill_files(tmp_path)) == 2
    mailbox.drop_job(JOB)
    assert [p.parent.name for p in spill_files(tmp_path)] == ["job-other"]
    with pytest.raises(PeerTimeout):
        mailbox.take(key("w"), 0.05)
    assert mailbox.take(key("w", "job-other"), 1) == envelope("w", 10).payload
    mailbox.close()


def test_session_asks_for_a_bad_chunk_again_then_gives_up() -> None:
    mailbox = Mailbox()
    env = envelope("w", 40)
    header = header_of(env, 16)
    bad = ChunkPart(0, b"y" * 16, 0, header)
    for _attempt in (1, 2):
        session = TransferSession(mailbox, header, boot_id="b")
        assert session.first_ack.next_index == 0
        ack = session.write(bad)
        assert ack is not None and (ack.resend, ack.next_index) == (True, 0) and session.done
    session = TransferSession(mailbox, header, boot_id="b")
    with pytest.raises(CorruptMessage, match=r"checksum mismatch in chunk 0 \(3 times in a row"):
        session.write(bad)
    mailbox.close()


def test_session_end_before_the_last_chunk_says_where_to_resume() -> None:
    mailbox = Mailbox()
    env = envelope("w", 40)
    header = header_of(env, 16)
    session = TransferSession(mailbox, header, boot_id="b")
    parts = list(split(env, 16))
    assert session.write(parts[0]) is None  # written; its ack is coalesced with later ones
    ack = session.finish()
    assert ack is not None and (ack.resend, ack.next_index) == (True, 1)
    resumed = TransferSession(mailbox, header, boot_id="b")
    assert resumed.first_ack.next_index == 1
    assert resumed.write(parts[1]) is None
    done = resumed.write(parts[2])
    assert done is not None and done.complete and done.stored_bytes == 40
    replay = TransferSession(mailbox, header, boot_id="b")
    assert replay.first_ack.complete and replay.first_ack.duplicate and replay.done
    mailbox.close()


def test_written_chunks_are_acknowledged_together() -> None:
    mailbox = Mailbox()
    env = envelope("w", 80)
    session = TransferSession(mailbox, header_of(env, 16), boot_id="b", ack_every_bytes=32)  # two 16-byte chunks per ack
    acks = [session.write(part) for part in split(env, 16)]
    assert [None if a is None else (a.next_index, a.complete) for a in acks] == [
        None, (2, False), None, (4, False), (5, True)
    ]
    mailbox.close()


def test_gateway_reports_only_the_senders_own_pending_keys() -> None:
    gateway = Gateway("9999")
    gateway.open_job(JOB, [GUEST, HOST, PartyRef(Role.HOST, "10001")])
    gateway.mailbox.put(key("read"), b"r")
    gateway.take(key("read"), 1)
    other = MessageKey(JOB, "x", PartyRef(Role.HOST, "10001"), GUEST)
    session = gateway.open_transfer(header_of(envelope("new", 3)), [key("read"), key("lost"), other])
    assert session.first_ack.read == (key("read"),)
    assert session.first_ack.missing == (key("lost"),)  # 10001's key is not 10000's business
    assert session.first_ack.boot_id == gateway.boot_id
    assert gateway.last_heard("10000") is not None
    gateway.stop()


def test_job_quota_charges_each_message_once_and_refunds_what_was_discarded() -> None:
    """Announced sizes count per (job, sender) when an entry is created: a resume or a duplicate costs
    nothing, an unfinished entry that is discarded is refunded, a closed job starts from zero."""
    mailbox = Mailbox(job_quota_bytes=100)
    first, second = envelope("a", 60), envelope("b", 60)
    owner = object()
    opened = mailbox.open_entry(header_of(first, 16), owner)
    assert opened.entry is not None
    parts = list(split(first, 16))
    mailbox.write(opened.entry, owner, parts[0])
    resumed = mailbox.open_entry(header_of(first, 16), owner)  # a newer stream resumes the same entry
    assert resumed.entry is opened.entry and mailbox.accepted_bytes(JOB, HOST.party_id) == 60
    with pytest.raises(QuotaExceeded, match=f"job {JOB}: party {HOST.party_id} has sent 60 bytes") as info:
        mailbox.open_entry(header_of(second, 16), object())
    assert (info.value.job_id, info.value.src, info.value.quota) == (JOB, str(HOST), 100)
    mailbox.abandon(opened.entry, owner)  # discarded unfinished: refunded
    assert mailbox.accepted_bytes(JOB, HOST.party_id) == 0
    assert mailbox.put(key("b"), second.payload) and not mailbox.put(key("b"), second.payload)
    assert mailbox.accepted_bytes(JOB, HOST.party_id) == 60
    mailbox.take(key("b"), 1)  # read messages still count: the quota bounds the whole job
    assert mailbox.accepted_bytes(JOB, HOST.party_id) == 60
    assert mailbox.put(key("b", job="job-other"), second.payload)  # every job has its own quota
    mailbox.drop_job(JOB)
    assert mailbox.accepted_bytes(JOB, HOST.party_id) == 0
    mailbox.close()
