"""Retries without duplicates, shown against injected faults on both sides of a stream.

Every case either delivers the exact value exactly once (and the tap holds one
copy), or ends with an error that names the job, the tag and the peer.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from fault_injection import ALWAYS, FaultKind, FaultPlan, Injector

from fedspark.common import FederationError, PartyRef, Role
from fedspark.federation import (
    DeliveryFailed,
    Envelope,
    Federation,
    GrpcTransport,
    MessageKey,
    PayloadKind,
    PeerTimeout,
    PeerUnreachable,
    RefusalReason,
    SendOptions,
    SendRefused,
    codec,
)
from fedspark.federation import federation_pb2 as pb
from fedspark.federation import federation_pb2_grpc as pb_grpc
from fedspark.federation.transport import ChunkPart, header_of, split

GUEST = PartyRef(Role.GUEST, "9999")
HOST = PartyRef(Role.HOST, "10000")
JOB = "job-faults"
MEMBERS = [GUEST, HOST]
CHUNK = 1000
PAYLOAD = os.urandom(7 * CHUNK + 500)  # 8 chunks
LAST = 7

Connect = Callable[..., dict[str, GrpcTransport]]


def message(tag: str = "w") -> Envelope:
    return Envelope(MessageKey(JOB, tag, HOST, GUEST), PAYLOAD, PayloadKind.RAW)


def network(connect: Connect, tmp_path: Path, inject: Injector, *, sender: FaultPlan | None = None,
            gateway: FaultPlan | None = None, **options: float) -> dict[str, GrpcTransport]:
    """Host sends to guest; ``sender`` damages what the host sends, ``gateway`` what the guest's gateway gets."""
    settings = {"chunk_bytes": CHUNK, "connect_deadline_s": 3.0, **options}
    net = connect(JOB, MEMBERS, tap_root=tmp_path, send=SendOptions(**settings))  # type: ignore[arg-type]
    if sender is not None:
        inject.sender(net["10000"], sender)
    if gateway is not None:
        inject.gateway(net["9999"].gateway, gateway)
    return net


def assert_delivered_once(net: dict[str, GrpcTransport], tmp_path: Path, tag: str = "w") -> None:
    key = MessageKey(JOB, tag, HOST, GUEST)
    assert net["9999"].recv(key, timeout_s=5) == PAYLOAD
    with pytest.raises(PeerTimeout):
        net["9999"].recv(key, timeout_s=0.2)
    assert len(list((tmp_path / "9999").glob("*.bin"))) == 1  # stored once


@pytest.fixture
def sent_indices(monkeypatch: pytest.MonkeyPatch) -> Counter[int]:
    """How often each chunk index was encoded for sending (a chunk the sender's faults drop counts too)."""
    counts: Counter[int] = Counter()
    real = codec.transfer_chunk_to_proto

    def counting(part: ChunkPart) -> pb.TransferRequest:
        counts[part.index] += 1
        return real(part)

    monkeypatch.setattr(codec, "transfer_chunk_to_proto", counting)
    return counts


RECOVERABLE = [
    ("drop", 3, {}),
    ("drop", LAST, {}),
    ("delay", 2, {"delay_s": 0.2}),
    ("delay", 2, {"delay_s": 1.2}),  # longer than one attempt may take: the stream times out, then resumes
    ("truncate", 4, {}),
    ("corrupt", 0, {}),
    ("corrupt", LAST, {}),
    ("kill", 5, {}),
    ("kill_after_write", 3, {}),
    ("kill_after_write", LAST, {}),
]
IDS = [f"{kind}@{chunk}" + ("-long" if extra.get("delay_s", 0) > 1 else "") for kind, chunk, extra in RECOVERABLE]


@pytest.mark.parametrize("side", ["sender", "gateway"])
@pytest.mark.parametrize(("kind", "chunk", "extra"), RECOVERABLE, ids=IDS)
def test_each_fault_ends_with_the_value_delivered_once(
    grpc_network_factory: Connect,
    tmp_path: Path,
    inject: Injector,
    sent_indices: Counter[int],
    side: str,
    kind: str,
    chunk: int,
    extra: dict[str, float],
) -> None:
    plan = FaultPlan.of(kind, chunk, tag="w", delay_s=extra.get("delay_s", 0.0))
    faults = {"sender": plan} if side == "sender" else {"gateway": plan}
    net = network(grpc_network_factory, tmp_path, inject, rpc_timeout_s=0.8, **faults)  # type: ignore[arg-type]
    net["10000"].send(message())
    assert [(event.kind, event.chunk) for event in plan.fired] == [(FaultKind(kind), chunk)]
    assert_delivered_once(net, tmp_path)
    assert max(sent_indices.values()) <= 2
    if side == "gateway":
        # The gateway wrote every chunk before the faulty one: the retry resumed after them,
        # whether or not their acks got through. (A sender-side kill also loses unacked
        # chunks still in flight; those are rightly sent again.)
        assert all(sent_indices[i] == 1 for i in range(chunk))


def test_a_lost_final_ack_is_a_duplicate_not_a_second_value(
    grpc_network_factory: Connect, tmp_path: Path, inject: Injector, sent_indices: Counter[int]
) -> None:
    """The gateway stores the whole message, then the stream dies before the 'complete' ack."""
    plan = FaultPlan.of(FaultKind.KILL_AFTER_WRITE, LAST)
    net = network(grpc_network_factory, tmp_path, inject, gateway=plan)
    value = {"gradient": [0.5, -1.25], "n": 2**100}
    Federation(JOB, HOST, MEMBERS, net["10000"]).send("g", value, to=GUEST)
    guest = Federation(JOB, GUEST, MEMBERS, net["9999"], timeout_s=0.3)
    assert guest.recv("g", frm=HOST) == value
    assert sum(sent_indices.values()) == 1  # one chunk, sent once; the retry's open learned it was complete
    assert len(list((tmp_path / "9999").glob("*.bin"))) == 1


def test_a_replayed_stream_after_delivery_yields_nothing(
    grpc_network_factory: Connect, tmp_path: Path, inject: Injector
) -> None:
    net = network(grpc_network_factory, tmp_path, inject)
    net["10000"].send(message())
    assert net["9999"].recv(message().key, timeout_s=2) == PAYLOAD
    channel = grpc.insecure_channel(f"127.0.0.1:{net['9999'].port}")
    try:
        stub = pb_grpc.GatewayStub(channel)  # type: ignore[no-untyped-call]
        header = header_of(message(), CHUNK)
        requests = [codec.transfer_open_to_proto(header)] + [codec.transfer_chunk_to_proto(p) for p in split(message(), CHUNK)]
        (reply,) = list(stub.Transfer(iter(requests), timeout=2))
    finally:
        channel.close()
    ack = codec.transfer_ack_from_proto(reply, JOB)
    assert (ack.complete, ack.duplicate) == (True, True)
    with pytest.raises(PeerTimeout):
        net["9999"].recv(message().key, timeout_s=0.2)


def test_a_chunk_corrupted_every_time_is_refused_not_decoded(
    grpc_network_factory: Connect, tmp_path: Path, inject: Injector
) -> None:
    plan = FaultPlan.of(FaultKind.CORRUPT, 2, times=ALWAYS)
    net = network(grpc_network_factory, tmp_path, inject, sender=plan)
    with pytest.raises(SendRefused) as info:
        net["10000"].send(message())
    error = info.value
    assert (error.job_id, error.tag, error.peer, error.reason) == (JOB, "w", "guest:9999", RefusalReason.CORRUPT)
    assert "checksum mismatch in chunk 2 (3 times in a row; giving up on this message)" in str(error)
    assert list((tmp_path / "9999").glob("*.bin")) == []


def test_a_chunk_truncated_every_time_is_refused(grpc_network_factory: Connect, tmp_path: Path, inject: Injector) -> None:
    """Truncation keeps the sender's checksum, so it is caught as a mismatch (a short chunk
    with a matching checksum is caught by its announced size: see test_fed_mailbox)."""
    net = network(grpc_network_factory, tmp_path, inject, gateway=FaultPlan.of(FaultKind.TRUNCATE, 1, times=ALWAYS))
    with pytest.raises(SendRefused, match=r"checksum mismatch in chunk 1 \(3 times in a row"):
        net["10000"].send(message())


def test_a_chunk_lost_every_time_ends_in_a_clear_error(
    grpc_network_factory: Connect, tmp_path: Path, inject: Injector
) -> None:
    net = network(grpc_network_factory, tmp_path, inject, sender=FaultPlan.of(FaultKind.DROP, 4, times=ALWAYS))
    with pytest.raises(DeliveryFailed) as info:
        net["10000"].send(message())
    error = info.value
    assert (error.job_id, error.tag, error.peer) == (JOB, "w", "guest:9999")
    assert "asked for chunk 4 of 8" in str(error) and "never got it intact" in str(error)


def test_a_stream_killed_every_time_ends_at_the_connect_deadline(
    grpc_network_factory: Connect, tmp_path: Path, inject: Injector
) -> None:
    plan = FaultPlan.of(FaultKind.KILL, 1, times=ALWAYS)
    net = network(grpc_network_factory, tmp_path, inject, gateway=plan, connect_deadline_s=0.5)
    with pytest.raises(PeerUnreachable) as info:
        net["10000"].send(message())
    assert (info.value.job_id, info.value.tag, info.value.peer) == (JOB, "w", "guest:9999")
    assert "UNAVAILABLE: fault injection: stream killed" in str(info.value)
    assert len(plan.fired) >= 2  # it was retried
    assert isinstance(info.value, FederationError)


def test_faults_can_be_combined_and_limited_to_a_tag(
    grpc_network_factory: Connect, tmp_path: Path, inject: Injector
) -> None:
    plan = FaultPlan.of("corrupt", 1, tag="w") + FaultPlan.of("drop", 1, tag="w") + FaultPlan.of("kill", 0, tag="other")
    net = network(grpc_network_factory, tmp_path, inject, sender=plan)
    net["10000"].send(message())
    assert [e.kind for e in plan.fired] == [FaultKind.CORRUPT, FaultKind.DROP]
    assert_delivered_once(net, tmp_path)
