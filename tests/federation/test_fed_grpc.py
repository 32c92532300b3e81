"""What only the gRPC transport does: chunking, refusals on the wire, retries, the tap.

Every server runs on 127.0.0.1 port 0 and is stopped by its fixture.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from fedspark.common import PartyRef, Role
from fedspark.federation import (
    BindFailed,
    Envelope,
    Federation,
    GatewayOptions,
    GrpcTransport,
    MessageKey,
    NoRoute,
    PayloadKind,
    PeerUnreachable,
    RefusalReason,
    SendOptions,
    SendRefused,
    codec,
    create_gateway,
    encode_value,
)
from fedspark.federation import federation_pb2 as pb
from fedspark.federation import federation_pb2_grpc as pb_grpc
from fedspark.federation.transport import ChunkPart, Gateway, split

GUEST = PartyRef(Role.GUEST, "9999")
HOST = PartyRef(Role.HOST, "10000")
OUTSIDER = PartyRef(Role.HOST, "4242")
JOB = "job-grpc"

Connect = Callable[..., dict[str, GrpcTransport]]


def free_port() -> int:
    """A port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def stub(grpc_gateway: tuple[Gateway, int]) -> Iterator[pb_grpc.GatewayStub]:
    """A raw client of the ``grpc_gateway`` fixture (party 9999, job opened for GUEST/HOST)."""
    gateway, port = grpc_gateway
    gateway.open_job(JOB, [GUEST, HOST])
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield pb_grpc.GatewayStub(channel)  # type: ignore[no-untyped-call]
    channel.close()


def push(stub: pb_grpc.GatewayStub, parts: list[ChunkPart]) -> pb.PushAck:
    return stub.Push(iter([codec.chunk_to_proto(p) for p in parts]), timeout=5)  # type: ignore[no-any-return]


def to_guest(tag: str, payload: bytes, src: PartyRef = HOST, job: str = JOB, dst: PartyRef = GUEST) -> Envelope:
    return Envelope(MessageKey(job, tag, src, dst), payload)


def test_twenty_megabytes_travel_in_chunks(grpc_network_factory: Connect, monkeypatch: pytest.MonkeyPatch) -> None:
    net = grpc_network_factory(JOB, [GUEST, HOST], send=SendOptions(connect_deadline_s=2.0))
    payload = os.urandom(20 * 1024 * 1024)
    chunks_sent = 0
    real_chunk_to_proto = codec.transfer_chunk_to_proto

    def counting(part: ChunkPart) -> pb.TransferRequest:
        nonlocal chunks_sent
        chunks_sent += 1
        return real_chunk_to_proto(part)

    monkeypatch.setattr(codec, "transfer_chunk_to_proto", counting)
    started = time.monotonic()
    net["10000"].send(to_guest("big", payload))
    got = net["9999"].recv(MessageKey(JOB, "big", HOST, GUEST), timeout_s=10)
    assert chunks_sent == 20
    assert hashlib.sha256(got).digest() == hashlib.sha256(payload).digest()
    assert time.monotonic() - started < 10


def test_small_chunks_reassemble(grpc_network_factory: Connect) -> None:
    net = grpc_network_factory(JOB, [GUEST, HOST], send=SendOptions(chunk_bytes=1000))
    fed = Federation(JOB, HOST, [GUEST, HOST], net["10000"])
    value = {"blob": os.urandom(10_500), "n": 2**4096 - 3}
    fed.send("v", value, to=GUEST)
    assert Federation(JOB, GUEST, [GUEST, HOST], net["9999"]).recv("v", frm=HOST) == value


@pytest.mark.parametrize(
    ("envelope", "code", "reason", "says"),
    [
        (to_guest("t", b"x", job="job-unknown"), grpc.StatusCode.NOT_FOUND, RefusalReason.UNKNOWN_JOB,
         "gateway of party 9999 has no open job 'job-unknown'"),
        (to_guest("t", b"x", src=OUTSIDER), grpc.StatusCode.PERMISSION_DENIED, RefusalReason.NOT_A_MEMBER,
         "job job-grpc: sender host:4242 is not a party of this job"),
        (to_guest("t", b"x", dst=PartyRef(Role.GUEST, "7777")), grpc.StatusCode.PERMISSION_DENIED,
         RefusalReason.WRONG_RECIPIENT, "is addressed to guest:7777, but this gateway serves party 9999"),
        (to_guest("t", b"x", dst=PartyRef(Role.ARBITER, "9999")), grpc.StatusCode.PERMISSION_DENIED,
         RefusalReason.NOT_A_MEMBER, "receiver arbiter:9999 is not a party of this job"),
    ],
    ids=["unknown job", "non-member sender", "wrong party", "non-member receiver"],
)
def test_gateway_refuses_with_a_status_that_says_why(
    stub: pb_grpc.GatewayStub, envelope: Envelope, code: grpc.StatusCode, reason: RefusalReason, says: str
) -> None:
    with pytest.raises(grpc.RpcError) as info:
        push(stub, list(split(envelope)))
    call: grpc.Call = info.value  # type: ignore[assignment]
    assert call.code() == code
    assert says in (call.details() or "")
    assert ("fedspark-refusal", reason.value) in tuple(call.trailing_metadata() or ())


@pytest.mark.parametrize(
    ("tamper", "says"),
    [
        (lambda parts: [ChunkPart(0, parts[0].data, parts[0].crc32 ^ 1, parts[0].header), *parts[1:]],
         "checksum mismatch in chunk 0"),
        (lambda parts: [parts[0], parts[2], parts[1]], "chunk 2 arrived where chunk 1 was expected"),
        (lambda parts: parts[:-1], "stream ended after 2 chunks"),
        (lambda parts: [ChunkPart(0, p.data, p.crc32) if p.index == 0 else p for p in parts],
         "arrived first without a header"),
    ],
    ids=["checksum", "order", "missing chunk", "no header"],
)
def test_corrupt_streams_are_refused(
    stub: pb_grpc.GatewayStub, grpc_gateway: tuple[Gateway, int], tamper: Callable[[list[ChunkPart]], list[ChunkPart]], says: str
) -> None:
    parts = list(split(to_guest("t", b"abcdefghij"), chunk_bytes=4))
    with pytest.raises(grpc.RpcError) as info:
        push(stub, tamper(parts))
    call: grpc.Call = info.value  # type: ignore[assignment]
    assert call.code() == grpc.StatusCode.DATA_LOSS
    assert says in (call.details() or "")


def test_too_large_is_refused_before_streaming(tmp_path: Path) -> None:
    gateway, port = create_gateway("9999", max_message_bytes=1000)
    transport = GrpcTransport(gateway, {"9999": f"127.0.0.1:{port}"})
    try:
        transport.open_job(JOB, [GUEST, HOST])
        with pytest.raises(SendRefused) as info:
            transport.send(to_guest("huge", b"x" * 1001))
        assert info.value.reason is RefusalReason.TOO_LARGE
        assert "'huge' from host:10000 has 1001 bytes, more than this gateway accepts (1000)" in str(info.value)
    finally:
        transport.close()


def test_resent_message_is_acked_as_duplicate_and_delivered_once(
    stub: pb_grpc.GatewayStub, grpc_gateway: tuple[Gateway, int]
) -> None:
    gateway, _ = grpc_gateway
    parts = list(split(to_guest("once", b"value")))
    first, second = push(stub, parts), push(stub, parts)
    assert (first.duplicate, second.duplicate) == (False, True)
    key = MessageKey(JOB, "once", HOST, GUEST)
    assert gateway.take(key, timeout_s=1) == b"value"
    assert push(stub, parts).duplicate  # still a duplicate after delivery
    assert gateway.tap is not None and len(gateway.tap.records()) == 1


def test_unreachable_peer_fails_fast_with_a_small_deadline(grpc_gateway: tuple[Gateway, int]) -> None:
    gateway, _ = grpc_gateway
    address = f"127.0.0.1:{free_port()}"
    transport = GrpcTransport(gateway, {"10000": address}, send=SendOptions(connect_deadline_s=0.3))
    started = time.monotonic()
    with pytest.raises(PeerUnreachable) as info:
        transport.send(Envelope(MessageKey(JOB, "w", GUEST, HOST), b"x"))
    assert time.monotonic() - started < 3
    error = info.value
    assert (error.job_id, error.tag, error.peer, error.address) == (JOB, "w", "host:10000", address)
    assert str(error).startswith(f"job {JOB}: cannot deliver 'w' to host:10000 at {address}: UNAVAILABLE")


def test_send_retries_until_a_late_peer_comes_up(grpc_gateway: tuple[Gateway, int]) -> None:
    gateway, _ = grpc_gateway
    port = free_port()
    transport = GrpcTransport(gateway, {"10000": f"127.0.0.1:{port}"}, send=SendOptions(connect_deadline_s=10))
    late: list[GrpcTransport] = []

    def start_peer() -> None:
        peer_gateway, _ = create_gateway("10000", port=port)
        peer_gateway.open_job(JOB, [GUEST, HOST])
        late.append(GrpcTransport(peer_gateway))

    timer = threading.Timer(0.4, start_peer)
    timer.start()
    try:
        transport.send(Envelope(MessageKey(JOB, "early", GUEST, HOST), b"waited"))
        timer.join()
        assert late[0].recv(MessageKey(JOB, "early", GUEST, HOST), timeout_s=2) == b"waited"
    finally:
        timer.join()
        for peer in late:
            peer.close()


def test_missing_route_is_named(grpc_gateway: tuple[Gateway, int]) -> None:
    gateway, port = grpc_gateway
    transport = GrpcTransport(gateway, {"9999": f"127.0.0.1:{port}"})
    with pytest.raises(NoRoute, match=r"no route to party 10000 for 'w' to host:10000 \(routes known for: 9999\)"):
        transport.send(Envelope(MessageKey(JOB, "w", GUEST, HOST), b"x"))


def test_routes_can_be_set_after_construction_and_ping(grpc_network_factory: Connect) -> None:
    net = grpc_network_factory(JOB, [GUEST, HOST])
    assert net["9999"].ping("10000", timeout_s=2) == "10000"
    net["9999"].set_routes({})
    with pytest.raises(NoRoute):
        net["9999"].ping("10000")


def test_tap_records_what_crossed_the_boundary(grpc_network_factory: Connect, tmp_path: Path) -> None:
    net = grpc_network_factory(JOB, [GUEST, HOST], tap_root=tmp_path)
    value = {"masked_gradient": [0.25, -1.5]}
    Federation(JOB, HOST, [GUEST, HOST], net["10000"]).send("iter-0.grad", value, to=GUEST)
    assert Federation(JOB, GUEST, [GUEST, HOST], net["9999"]).recv("iter-0.grad", frm=HOST) == value
    headers = sorted((tmp_path / "9999").glob("*.json"))
    assert len(headers) == 1 and not list((tmp_path / "10000").glob("*"))
    header = json.loads(headers[0].read_text())
    assert header["job_id"] == JOB and header["tag"] == "iter-0.grad"
    assert (header["src"], header["dst"], header["seq"], header["kind"]) == ("host:10000", "guest:9999", 0, "value")
    payload = (tmp_path / "9999" / header["payload_file"]).read_bytes()
    assert payload == encode_value(value)
    assert header["sha256"] == hashlib.sha256(payload).hexdigest() and header["size"] == len(payload)


def test_raw_arrow_stream_payload_kind_travels(grpc_network_factory: Connect, tmp_path: Path) -> None:
    net = grpc_network_factory(JOB, [GUEST, HOST], tap_root=tmp_path)
    key = MessageKey(JOB, "table.part", HOST, GUEST, seq=3)
    net["10000"].send(Envelope(key, b"arrow-bytes", PayloadKind.ARROW_STREAM))
    assert net["9999"].recv(key, timeout_s=2) == b"arrow-bytes"
    (header,) = [json.loads(p.read_text()) for p in (tmp_path / "9999").glob("*.json")]
    assert (header["kind"], header["seq"]) == ("arrow_stream", 3)


def test_taken_port_is_a_bind_error(grpc_gateway: tuple[Gateway, int]) -> None:
    _, port = grpc_gateway
    with pytest.raises(BindFailed, match=f"party 10000: gateway cannot listen on 127.0.0.1:{port}"):
        create_gateway("10000", port=port)


def test_stopped_gateway_leaves_senders_unreachable(grpc_network_factory: Connect) -> None:
    net = grpc_network_factory(JOB, [GUEST, HOST], send=SendOptions(connect_deadline_s=0.3))
    net["9999"].close()
    with pytest.raises(PeerUnreachable):
        net["10000"].send(to_guest("after-stop", b"x"))


def test_transport_can_start_its_own_gateway(tmp_path: Path) -> None:
    """The engine's form: name the party, the transport binds port 0 and owns the server."""
    guest = GrpcTransport(GUEST, listen=GatewayOptions(host="127.0.0.1", port=0, tap_dir=tmp_path / "guest"))
    host = GrpcTransport("10000", send=SendOptions(connect_deadline_s=2.0))
    try:
        routes = {"9999": f"127.0.0.1:{guest.port}", "10000": f"127.0.0.1:{host.port}"}
        for transport in (guest, host):
            transport.set_routes(routes)
            transport.gateway.open_job(JOB, [GUEST, HOST])
        host.send(to_guest("hello", b"hi"))
        assert guest.recv(MessageKey(JOB, "hello", HOST, GUEST), timeout_s=2) == b"hi"
        assert len(list((tmp_path / "guest").glob("*.bin"))) == 1
    finally:
        guest.close()
        host.close()
