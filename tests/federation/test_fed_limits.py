"""Limits and bad input: sizes refused before streaming, undeclared kinds, pickle never."""

from __future__ import annotations

import pickle
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from fault_injection import FaultKind, FaultPlan, Injector

from fedspark.common import PartyRef, Role
from fedspark.federation import (
    CodecError,
    Envelope,
    Federation,
    GrpcTransport,
    MessageKey,
    PayloadKind,
    PayloadTooLarge,
    RefusalReason,
    SendOptions,
    SendRefused,
    codec,
    decode_value,
)
from fedspark.federation import federation_pb2 as pb
from fedspark.federation import federation_pb2_grpc as pb_grpc
from fedspark.federation.transport import REFUSAL_METADATA_KEY, ChunkPart, Header, checksum, header_of, split

GUEST = PartyRef(Role.GUEST, "9999")
HOST = PartyRef(Role.HOST, "10000")
JOB = "job-limits"
MEMBERS = [GUEST, HOST]

Connect = Callable[..., dict[str, GrpcTransport]]


def to_guest(tag: str, payload: bytes) -> Envelope:
    return Envelope(MessageKey(JOB, tag, HOST, GUEST), payload, PayloadKind.RAW)


@pytest.fixture
def chunks_sent(monkeypatch: pytest.MonkeyPatch) -> Counter[int]:
    counts: Counter[int] = Counter()
    real = codec.chunk_to_proto

    def counting(part: ChunkPart) -> pb.Chunk:
        counts[part.index] += 1
        return real(part)

    monkeypatch.setattr(codec, "chunk_to_proto", counting)
    return counts


def test_a_send_over_the_local_limit_fails_before_connecting(chunks_sent: Counter[int]) -> None:
    transport = GrpcTransport("10000", send=SendOptions(max_send_bytes=1000))  # no routes at all: it never gets that far
    try:
        with pytest.raises(PayloadTooLarge) as info:
            transport.send(to_guest("huge", b"x" * 1001))
    finally:
        transport.close()
    error = info.value
    assert (error.job_id, error.tag, error.peer, error.size, error.limit) == (JOB, "huge", "guest:9999", 1001, 1000)
    assert str(error) == (
        f"job {JOB}: 'huge' to guest:9999 is 1001 bytes, more than the 1000 bytes this transport may send "
        "(max_send_bytes); nothing was sent"
    )
    assert not chunks_sent


def test_the_receivers_limit_refuses_at_the_open_before_any_chunk(
    grpc_network_factory: Connect, chunks_sent: Counter[int]
) -> None:
    net = grpc_network_factory(JOB, MEMBERS, gateway_options={"9999": {"max_message_bytes": 5000}})
    with pytest.raises(SendRefused) as info:
        net["10000"].send(to_guest("huge", b"x" * 5001))
    error = info.value
    assert (error.job_id, error.tag, error.peer, error.reason) == (JOB, "huge", "guest:9999", RefusalReason.TOO_LARGE)
    assert "'huge' from host:10000 has 5001 bytes, more than this gateway accepts (5000)" in str(error)
    assert not chunks_sent  # the refusal answered the open; no data was streamed


def test_a_corrupt_chunk_is_resent_and_never_decoded(
    grpc_network_factory: Connect, monkeypatch: pytest.MonkeyPatch, inject: Injector
) -> None:
    net = grpc_network_factory(JOB, MEMBERS, send=SendOptions(chunk_bytes=64))
    plan = inject.gateway(net["9999"].gateway, FaultPlan.of(FaultKind.CORRUPT, 1))
    decoded: list[bytes] = []
    real = decode_value

    def recording(data: bytes) -> object:
        decoded.append(data)
        return real(data)

    monkeypatch.setattr("fedspark.federation._federation.decode_value", recording)
    value = {"w": list(range(40))}
    Federation(JOB, HOST, MEMBERS, net["10000"]).send("w", value, to=GUEST)
    assert Federation(JOB, GUEST, MEMBERS, net["9999"]).recv("w", frm=HOST) == value
    assert len(plan.fired) == 1 and decoded == [codec.encode_value(value)]


@pytest.fixture
def stub(grpc_network_factory: Connect) -> Iterator[pb_grpc.GatewayStub]:
    net = grpc_network_factory(JOB, MEMBERS)
    channel = grpc.insecure_channel(f"127.0.0.1:{net['9999'].port}")
    yield pb_grpc.GatewayStub(channel)  # type: ignore[no-untyped-call]
    channel.close()


def open_with(header: pb.Header) -> list[pb.TransferRequest]:
    return [pb.TransferRequest(open=pb.TransferOpen(header=header))]


def valid_header(**changes: int) -> pb.Header:
    message = codec.header_to_proto(header_of(to_guest("t", b"abcdef"), 4))
    for name, value in changes.items():
        setattr(message, name, value)
    return message


@pytest.mark.parametrize("kind", [0, 99], ids=["unspecified", "undeclared"])
@pytest.mark.parametrize("rpc", ["Transfer", "Push"])
def test_undeclared_payload_kinds_are_refused(stub: pb_grpc.GatewayStub, kind: int, rpc: str) -> None:
    header = valid_header(payload_kind=kind)
    with pytest.raises(grpc.RpcError) as info:
        if rpc == "Transfer":
            list(stub.Transfer(iter(open_with(header)), timeout=2))
        else:
            stub.Push(iter([pb.Chunk(header=header, index=0, data=b"", crc32=0)]), timeout=2)
    call: grpc.Call = info.value  # type: ignore[assignment]
    assert call.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"unknown payload kind number {kind}; declared kinds are value, arrow_stream and raw" in (call.details() or "")
    assert (REFUSAL_METADATA_KEY, RefusalReason.UNSUPPORTED.value) in tuple(call.trailing_metadata() or ())


@pytest.mark.parametrize(
    ("requests", "says"),
    [
        (lambda: open_with(valid_header(chunk_count=3)), "6 bytes in chunks of 4 make 2 chunks, not 3"),
        (lambda: open_with(valid_header(chunk_bytes=64 << 20)), "announced chunk size 67108864 is outside"),
        (lambda: [pb.TransferRequest(chunk=pb.Chunk(index=0))], "a transfer must start with an open"),
        (lambda: [pb.TransferRequest()], "neither an open nor a chunk"),
    ],
    ids=["count", "chunk size", "chunk first", "empty request"],
)
def test_malformed_transfers_are_refused_before_any_data(
    stub: pb_grpc.GatewayStub, requests: Callable[[], list[pb.TransferRequest]], says: str
) -> None:
    with pytest.raises(grpc.RpcError) as info:
        list(stub.Transfer(iter(requests()), timeout=2))
    call: grpc.Call = info.value  # type: ignore[assignment]
    assert call.code() == grpc.StatusCode.DATA_LOSS
    assert says in (call.details() or "")


def test_a_second_open_in_one_stream_is_refused(stub: pb_grpc.GatewayStub) -> None:
    header = valid_header()
    with pytest.raises(grpc.RpcError) as info:
        list(stub.Transfer(iter(open_with(header) * 2), timeout=2))
    assert "a second open in one stream" in (info.value.details() or "")


class Exploit:
    """Unpickling this would run a command: the classic pickle payload."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return (os.system, ("echo pwned",))


def test_pickle_bytes_are_refused_and_never_unpickled(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: object, **kwargs: object) -> object:
        raise AssertionError("pickle must never run on received bytes")

    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "Unpickler", forbidden)
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        with pytest.raises(CodecError):
            decode_value(pickle.dumps(Exploit(), protocol=protocol))


def test_pickle_sent_as_a_value_fails_at_the_receiver_naming_the_message(grpc_network_factory: Connect) -> None:
    net = grpc_network_factory(JOB, MEMBERS)
    net["10000"].send(Envelope(MessageKey(JOB, "evil", HOST, GUEST), pickle.dumps(Exploit()), PayloadKind.VALUE))
    with pytest.raises(CodecError) as info:
        Federation(JOB, GUEST, MEMBERS, net["9999"]).recv("evil", frm=HOST)
    assert (info.value.job_id, info.value.tag, info.value.peer) == (JOB, "evil", "host:10000")


def test_push_still_refuses_short_chunks_with_a_valid_checksum(stub: pb_grpc.GatewayStub) -> None:
    parts = list(split(to_guest("t", b"abcdefghij"), chunk_bytes=4))
    short = ChunkPart(1, b"ef", checksum(b"ef"))
    with pytest.raises(grpc.RpcError) as info:
        stub.Push(iter([codec.chunk_to_proto(p) for p in (parts[0], short, parts[2])]), timeout=2)
    assert "chunk 1 has 2 bytes, 4 were announced" in (info.value.details() or "")


def test_header_equality_ignores_the_announced_chunk_size() -> None:
    key = MessageKey(JOB, "t", HOST, GUEST)
    assert Header(key, PayloadKind.RAW, 6, 2, 4) == Header(key, PayloadKind.RAW, 6, 2)
    assert codec.header_from_proto(codec.header_to_proto(Header(key, PayloadKind.RAW, 6, 2, 4))).chunk_bytes == 4


def test_tap_of_a_spilled_message_matches_what_was_sent(grpc_network_factory: Connect, tmp_path: Path) -> None:
    net = grpc_network_factory(
        JOB, MEMBERS, tap_root=tmp_path / "tap",
        gateway_options={"9999": {"memory_limit_bytes": 0, "work_dir": tmp_path / "work"}},
    )
    net["10000"].send(to_guest("t", b"z" * 5000))
    (recorded,) = (tmp_path / "tap" / "9999").glob("*.bin")
    assert recorded.read_bytes() == b"z" * 5000
