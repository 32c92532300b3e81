"""Streams and the mailbox over real gateways: spilling, streaming reads, restarts, heartbeats.

Servers run on 127.0.0.1 port 0 (a restarted receiver reuses its port) and
are stopped by fixtures or ``finally`` blocks.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import numpy as np
import pyarrow as pa
import pytest

from fedspark.common import PartyRef, Role
from fedspark.federation import (
    CodecError,
    Context,
    Envelope,
    Federation,
    GrpcTransport,
    Heartbeats,
    MessageKey,
    PayloadKind,
    PeerSilent,
    PeerTimeout,
    SendOptions,
    codec,
    create_gateway,
    run_parties,
)
from fedspark.federation import federation_pb2 as pb
from fedspark.federation import federation_pb2_grpc as pb_grpc
from fedspark.federation.transport import JobState

GUEST = PartyRef(Role.GUEST, "9999")
HOST = PartyRef(Role.HOST, "10000")
JOB = "job-streams"
MEMBERS = [GUEST, HOST]

Connect = Callable[..., dict[str, GrpcTransport]]


def to_guest(tag: str, payload: bytes, kind: PayloadKind = PayloadKind.RAW) -> Envelope:
    return Envelope(MessageKey(JOB, tag, HOST, GUEST), payload, kind)


def from_host(tag: str) -> MessageKey:
    return MessageKey(JOB, tag, HOST, GUEST)


def spill_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.msg"))


@pytest.fixture
def spilling(grpc_network_factory: Connect, tmp_path: Path) -> dict[str, GrpcTransport]:
    """Guest's gateway keeps nothing in memory: every payload goes to ``tmp_path/work``."""
    return grpc_network_factory(
        JOB,
        MEMBERS,
        gateway_options={"9999": {"memory_limit_bytes": 0, "work_dir": tmp_path / "work"}},
        send=SendOptions(chunk_bytes=64 * 1024, connect_deadline_s=2.0),
    )


def test_large_message_spills_and_arrives_whole(spilling: dict[str, GrpcTransport], tmp_path: Path) -> None:
    payload = os.urandom(3 * 1024 * 1024 + 17)
    spilling["10000"].send(to_guest("big", payload))
    (stored,) = spill_files(tmp_path / "work")
    assert stored.stat().st_size == len(payload)  # stored whole before the ack
    assert spilling["9999"].recv(from_host("big"), timeout_s=5) == payload
    assert spill_files(tmp_path / "work") == []  # deleted once read


def test_closing_the_job_deletes_what_is_stored(spilling: dict[str, GrpcTransport], tmp_path: Path) -> None:
    spilling["10000"].send(to_guest("a", b"x" * 1000))
    spilling["10000"].send(to_guest("b", b"y" * 1000))
    assert len(spill_files(tmp_path / "work")) == 2
    spilling["9999"].close_job(JOB)
    assert spill_files(tmp_path / "work") == []
    assert not [p for p in (tmp_path / "work").rglob("*") if p.is_dir() and p.name == JOB]


def big_table(batches: int = 40, rows: int = 5000) -> pa.Table:
    rng = np.random.default_rng(5)
    parts = [
        pa.record_batch({"id": np.arange(i * rows, (i + 1) * rows), "x": rng.normal(size=rows)}) for i in range(batches)
    ]
    return pa.Table.from_batches(parts)


def test_recv_stream_reads_a_spilled_table_batch_by_batch(spilling: dict[str, GrpcTransport], tmp_path: Path) -> None:
    table = big_table()
    Federation(JOB, HOST, MEMBERS, spilling["10000"]).send("table", table, to=GUEST)
    guest = Federation(JOB, GUEST, MEMBERS, spilling["9999"])
    allocated = pa.total_allocated_bytes()
    batches = guest.recv_stream("table", frm=HOST)
    (stored,) = spill_files(tmp_path / "work")
    seen = 0
    for got, want in zip(batches, table.to_batches()):
        assert got.equals(want)
        seen += 1
        # Batches are views of the memory-mapped file: Arrow allocates (almost) nothing.
        assert pa.total_allocated_bytes() - allocated < table.nbytes // 10
    assert seen == len(table.to_batches())
    assert not stored.exists()  # the message is deleted once fully read


def test_recv_stream_reads_raw_arrow_streams_and_works_over_loopback() -> None:
    table = big_table(batches=3, rows=10)

    def host(ctx: Context) -> None:
        ctx.guest.put("t", table)

    def guest(ctx: Context) -> list[pa.RecordBatch]:
        return list(ctx.hosts[0].get_stream("t"))

    result = run_parties(JOB, {GUEST: guest, HOST: host}, timeout_s=5)
    batches = result[GUEST]
    assert batches is not None and pa.Table.from_batches(batches).equals(table)


def test_recv_stream_of_a_raw_arrow_stream_payload(spilling: dict[str, GrpcTransport]) -> None:
    table = big_table(batches=2, rows=7)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    spilling["10000"].send(to_guest("part", sink.getvalue().to_pybytes(), PayloadKind.ARROW_STREAM))
    got = list(Federation(JOB, GUEST, MEMBERS, spilling["9999"]).recv_stream("part", frm=HOST))
    assert pa.Table.from_batches(got).equals(table)


def test_recv_stream_refuses_what_is_not_a_table(spilling: dict[str, GrpcTransport], tmp_path: Path) -> None:
    Federation(JOB, HOST, MEMBERS, spilling["10000"]).send("scalar", {"a": 1}, to=GUEST)
    with pytest.raises(CodecError) as info:
        Federation(JOB, GUEST, MEMBERS, spilling["9999"]).recv_stream("scalar", frm=HOST)
    assert (info.value.job_id, info.value.tag, info.value.peer) == (JOB, "scalar", "host:10000")
    assert "not an Arrow table or record batch value" in str(info.value)
    assert spill_files(tmp_path / "work") == []


def test_sender_forgets_a_message_once_the_receiver_read_it(grpc_network_factory: Connect) -> None:
    net = grpc_network_factory(JOB, MEMBERS, send=SendOptions(connect_deadline_s=2.0))
    host, guest = net["10000"], net["9999"]
    host.send(to_guest("a", b"1"))
    assert host.outbox.keys() == [from_host("a")]  # stored, not yet read: kept
    assert guest.recv(from_host("a"), timeout_s=2) == b"1"
    host.send(to_guest("b", b"2"))  # its open tells the host that 'a' was read
    assert host.outbox.keys() == [from_host("b")]
    guest.recv(from_host("b"), timeout_s=2)
    reply = host.heartbeat("9999", JOB)
    assert reply.job_state is JobState.OPEN and reply.read == (from_host("b"),)
    assert len(host.outbox) == 0


def restartable_guest(port: int) -> GrpcTransport:
    gateway, _ = create_gateway("9999", port=port)
    gateway.open_job(JOB, MEMBERS)
    return GrpcTransport(gateway)


@pytest.mark.parametrize("via", ["heartbeat loop", "next send"])
def test_a_restarted_receiver_gets_unread_messages_again_once(via: str) -> None:
    guest = restartable_guest(0)
    port = guest.port
    heartbeats = Heartbeats(0.1) if via == "heartbeat loop" else None
    host = GrpcTransport("10000", send=SendOptions(connect_deadline_s=5.0), heartbeats=heartbeats)
    restarted: GrpcTransport | None = None
    try:
        host.open_job(JOB, MEMBERS)
        host.set_routes({"9999": f"127.0.0.1:{port}", "10000": f"127.0.0.1:{host.port}"})
        host.send(to_guest("unread", b"kept by the sender"))
        guest.close()  # the receiving process dies before its protocol read 'unread'
        restarted = restartable_guest(port)
        if via == "next send":
            host.send(to_guest("later", b"l"))  # its open lists 'unread'; the new gateway lacks it
        assert restarted.recv(from_host("unread"), timeout_s=5) == b"kept by the sender"
        with pytest.raises(PeerTimeout):
            restarted.recv(from_host("unread"), timeout_s=0.3)  # resent, but delivered once
    finally:
        host.close()
        guest.close()
        if restarted is not None:
            restarted.close()


@pytest.fixture
def beating(grpc_network_factory: Connect) -> dict[str, GrpcTransport]:
    return grpc_network_factory(JOB, MEMBERS, send=SendOptions(connect_deadline_s=2.0), heartbeats=Heartbeats(0.1, 0.6))


def test_a_busy_peer_is_not_mistaken_for_a_dead_one(beating: dict[str, GrpcTransport]) -> None:
    """The host 'computes' for 1.5 s, well past the 0.6 s silence limit, then sends."""
    sender = threading.Timer(1.5, lambda: beating["10000"].send(to_guest("late", b"done")))
    sender.start()
    try:
        assert beating["9999"].recv(from_host("late"), timeout_s=10) == b"done"
    finally:
        sender.join()


def test_a_dead_peer_is_reported_within_the_silence_limit(beating: dict[str, GrpcTransport]) -> None:
    time.sleep(0.3)  # heartbeats flow both ways
    beating["10000"].close()  # the host's process is gone
    started = time.monotonic()
    with pytest.raises(PeerSilent) as info:
        beating["9999"].recv(from_host("never"), timeout_s=60)
    waited = time.monotonic() - started
    assert waited < 3, waited
    error = info.value
    assert (error.job_id, error.tag, error.peer, error.limit_s) == (JOB, "never", "host:10000", 0.6)
    assert 0.6 < error.silent_s < 3
    assert str(error).startswith(f"job {JOB}: host:10000 has been silent for ")
    assert "(no heartbeat; limit 0.6s) while waiting for 'never'" in str(error)


@pytest.fixture
def raw_stub(grpc_network_factory: Connect) -> Iterator[pb_grpc.GatewayStub]:
    net = grpc_network_factory(JOB, MEMBERS)
    channel = grpc.insecure_channel(f"127.0.0.1:{net['9999'].port}")
    yield pb_grpc.GatewayStub(channel)  # type: ignore[no-untyped-call]
    channel.close()


def test_heartbeats_from_strangers_are_refused_and_unknown_jobs_answered(raw_stub: pb_grpc.GatewayStub) -> None:
    with pytest.raises(grpc.RpcError) as info:
        raw_stub.Heartbeat(pb.HeartbeatRequest(job_id=JOB, from_party_id="4242"), timeout=2)
    call: grpc.Call = info.value  # type: ignore[assignment]
    assert call.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "party 4242 is not a party of this job" in (call.details() or "")
    reply = raw_stub.Heartbeat(pb.HeartbeatRequest(job_id="job-not-yet", from_party_id="4242"), timeout=2)
    assert codec.heartbeat_reply_from_proto(reply, "job-not-yet").job_state is JobState.UNKNOWN


def test_a_closed_job_releases_what_the_sender_kept(grpc_network_factory: Connect) -> None:
    net = grpc_network_factory(JOB, MEMBERS)
    net["10000"].send(to_guest("never-read", b"x"))
    assert len(net["10000"].outbox) == 1
    net["9999"].close_job(JOB)  # the guest finished without reading it
    assert net["10000"].heartbeat("9999", JOB).job_state is JobState.CLOSED
    assert len(net["10000"].outbox) == 0


def test_keeping_until_read_can_be_turned_off(grpc_network_factory: Connect) -> None:
    net = grpc_network_factory(JOB, MEMBERS, send=SendOptions(keep_until_read=False))
    net["10000"].send(to_guest("a", b"x"))
    assert len(net["10000"].outbox) == 0
    assert net["9999"].recv(from_host("a"), timeout_s=2) == b"x"


@pytest.mark.parametrize(("interval_s", "dead_after_s"), [(0, None), (1, -1)])
def test_bad_heartbeat_options_fail_before_a_gateway_starts(interval_s: float, dead_after_s: float | None) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        GrpcTransport("10000", heartbeats=Heartbeats(interval_s, dead_after_s))
