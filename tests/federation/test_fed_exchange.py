"""Star topology: parties reach each other only through an exchange that cannot read payloads.

Real gRPC servers on 127.0.0.1 port 0: two party gateways and one exchange,
every party route pointing at the exchange. Checked: values and large spilled
messages arrive once and intact, the exchange records only headers and sealed
bytes, a payload altered by the exchange is rejected naming the peer, an
unknown destination is refused naming it, the exchange acks nothing the
receiver did not store, faults between sender and exchange are survived, and
with mTLS a party cannot speak through the exchange in another's name.
"""

from __future__ import annotations

import json
import shutil
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import numpy as np
import pyarrow as pa
import pytest
from fault_injection import FaultKind, FaultPlan, Injector

from fedspark.common import PartyRef, Role
from fedspark.federation import (
    CodecError,
    Envelope,
    Federation,
    GatewayOptions,
    GrpcTransport,
    MessageKey,
    PayloadKind,
    PeerUnreachable,
    RefusalReason,
    SealBroken,
    Sealer,
    SealingKey,
    SealingKeyError,
    Security,
    SendOptions,
    SendRefused,
    codec,
    create_exchange,
    decode_value,
    encode_value,
    init_ca,
    issue_party_cert,
)
from fedspark.federation import federation_pb2_grpc as pb_grpc
from fedspark.federation.security import NONCE_TAG
from fedspark.federation.star import Exchange
from fedspark.federation.transport import REFUSAL_METADATA_KEY, split

GUEST = PartyRef(Role.GUEST, "9999")
HOST = PartyRef(Role.HOST, "10000")
MEMBERS = [GUEST, HOST]
JOB = "job-star"

Star = Callable[..., tuple[Exchange, dict[str, GrpcTransport]]]


def _sealers(*party_ids: str) -> dict[str, Sealer]:
    keys = {p: SealingKey.generate() for p in party_ids}
    table = {p: bytes.fromhex(k.public_hex) for p, k in keys.items()}
    return {p: Sealer(p, keys[p], table) for p in party_ids}


@pytest.fixture
def star(tmp_path: Path) -> Iterator[Star]:
    """Start an exchange (tap in ``tmp_path/exchange-tap``) and sealed transports routed through it."""
    started: list[tuple[Exchange, list[GrpcTransport]]] = []

    def make(**exchange_options: object) -> tuple[Exchange, dict[str, GrpcTransport]]:
        tls = exchange_options.pop("party_tls", None)
        memory_limits: dict[str, int] = exchange_options.pop("memory_limit_bytes", {})  # type: ignore[assignment]
        sending: dict[str, dict[str, float]] = exchange_options.pop("send", {})  # type: ignore[assignment]
        sealers = _sealers(GUEST.party_id, HOST.party_id)
        exchange = create_exchange(tap_dir=tmp_path / "exchange-tap", **exchange_options)  # type: ignore[arg-type]
        transports: dict[str, GrpcTransport] = {}
        for ref in MEMBERS:
            pid = ref.party_id
            listen = GatewayOptions(work_dir=tmp_path / pid)
            if pid in memory_limits:
                listen = GatewayOptions(work_dir=tmp_path / pid, memory_limit_bytes=memory_limits[pid])
            transports[pid] = GrpcTransport(
                ref,
                listen=listen,
                send=SendOptions(**{"connect_deadline_s": 5, **sending.get(pid, {})}),  # type: ignore[arg-type]
                security=Security(tls[pid] if isinstance(tls, dict) else None, sealers[pid], exchange.name),
            )
        exchange.set_routes({p: f"127.0.0.1:{t.port}" for p, t in transports.items()})
        for transport in transports.values():
            transport.set_routes({p: f"127.0.0.1:{exchange.port}" for p in transports})
            transport.open_job(JOB, MEMBERS)
        started.append((exchange, list(transports.values())))
        return exchange, transports

    yield make
    for exchange, transports in started:
        for transport in transports:
            transport.close()
        exchange.stop(grace_s=0)


def _federations(transports: dict[str, GrpcTransport]) -> tuple[Federation, Federation]:
    return (Federation(JOB, GUEST, MEMBERS, transports[GUEST.party_id], timeout_s=10),
            Federation(JOB, HOST, MEMBERS, transports[HOST.party_id], timeout_s=10))


def _carried(tap: Path) -> dict[tuple[str, str, int], bytes]:
    """What the exchange forwarded, message by message (chunks joined in index order)."""
    chunks: dict[tuple[str, str, int], dict[int, bytes]] = {}
    for header_file in sorted(tap.glob("*.json")):
        header = json.loads(header_file.read_text())
        key = (header["tag"], header["src"], header["seq"])
        chunks.setdefault(key, {})[header["index"]] = (tap / header["payload_file"]).read_bytes()
    return {key: b"".join(parts[i] for i in sorted(parts)) for key, parts in chunks.items()}


def _assert_opaque(data: bytes) -> None:
    with pytest.raises(CodecError):
        decode_value(data)
    with pytest.raises(pa.ArrowInvalid):
        pa.ipc.open_stream(pa.py_buffer(data)).read_all()
    assert b"ARROW1" not in data


def test_values_cross_the_star_and_the_exchange_sees_only_sealed_bytes(star: Star, tmp_path: Path) -> None:
    exchange, transports = star()
    guest, host = _federations(transports)
    secret = np.arange(2000, dtype=np.float64) * 0.001 + 12345.678
    guest.send("secret", secret, HOST)
    guest.send("text", {"token": "plaintext-marker-0123456789"}, HOST)
    np.testing.assert_array_equal(host.recv("secret", GUEST), secret)
    assert host.recv("text", GUEST) == {"token": "plaintext-marker-0123456789"}
    host.send("answer", 42, GUEST)
    assert guest.recv("answer", HOST) == 42

    carried = _carried(tmp_path / "exchange-tap")
    # Each party's receive-nonce announcement crossed too (sealed like the rest; see security._seal).
    assert set(carried) == {("secret", "guest:9999", 0), ("text", "guest:9999", 0), ("answer", "host:10000", 0),
                            (NONCE_TAG, "guest:9999", 0), (NONCE_TAG, "host:10000", 0)}
    for data in carried.values():
        _assert_opaque(data)
    for plain in (secret.tobytes()[:64], secret.tobytes()[8000:8064], b"plaintext-marker-0123456789",
                  encode_value({"token": "plaintext-marker-0123456789"})):
        assert all(plain not in data for data in carried.values())
    headers = [json.loads(p.read_text()) for p in (tmp_path / "exchange-tap").glob("*.json")]
    assert {h["dst"] for h in headers} == {"host:10000", "guest:9999"}
    assert all(h["job_id"] == JOB for h in headers)


def test_a_large_spilled_message_crosses_in_many_chunks(star: Star, tmp_path: Path) -> None:
    _, transports = star(memory_limit_bytes={"10000": 1 << 16}, send={"9999": {"chunk_bytes": 1 << 16}})
    guest, host = _federations(transports)
    table = pa.table({"x": np.random.default_rng(1).random(300_000)})  # 2.4 MB, 3 seal segments, ~37 chunks
    guest.send("big", table, HOST)
    assert host.recv("big", GUEST).equals(table)
    chunks = [json.loads(p.read_text()) for p in (tmp_path / "exchange-tap").glob("*.json")]
    chunks = [c for c in chunks if c["tag"] == "big"]
    assert len(chunks) > 30 and {c["chunk_count"] for c in chunks} == {len(chunks)}


def test_a_payload_altered_by_the_exchange_is_rejected_naming_the_peer(star: Star) -> None:
    def flip(key: MessageKey, index: int, data: bytes) -> bytes:
        return data if key.tag != "w" else data[:40] + bytes([data[40] ^ 1]) + data[41:]

    _, transports = star(tamper=flip)
    guest, host = _federations(transports)
    guest.send("w", np.ones(100), HOST)  # the receiving gateway stores it: chunk checksums were fixed up
    with pytest.raises(SealBroken) as info:
        host.recv("w", GUEST)
    assert info.value.peer == "guest:9999"
    assert "guest:9999" in str(info.value) and "'w'" in str(info.value) and "altered" in str(info.value)
    guest.send("after", 7, HOST)  # untouched messages still open
    assert host.recv("after", GUEST) == 7


def test_a_payload_moved_to_another_tag_does_not_open() -> None:
    sealers = _sealers("9999", "10000")
    nonce = bytes(range(16))  # the receiver's nonce for the job
    key = MessageKey(JOB, "a", GUEST, HOST)
    sealed = sealers["9999"].seal(Envelope(key, b"attack at dawn"), nonce).payload
    assert sealers["10000"].open(key, PayloadKind.VALUE, sealed, nonce) == b"attack at dawn"
    for moved in (MessageKey(JOB, "b", GUEST, HOST), MessageKey(JOB, "a", GUEST, HOST, seq=1)):
        with pytest.raises(SealBroken, match="guest:9999"):
            sealers["10000"].open(moved, PayloadKind.VALUE, sealed, nonce)
    with pytest.raises(SealBroken, match="another run of this job"):
        sealers["10000"].open(key, PayloadKind.VALUE, sealed, bytes(16))  # another nonce: another run of the job
    with pytest.raises(SealBroken, match="not sealed"):
        sealers["10000"].open(key, PayloadKind.VALUE, encode_value("in the clear, padded to some length"), nonce)
    with pytest.raises(SealingKeyError, match="party 4242"):
        sealers["9999"].seal(Envelope(MessageKey(JOB, "a", GUEST, PartyRef(Role.HOST, "4242")), b"x"), nonce)
    with pytest.raises(ValueError, match="16 bytes"):
        sealers["9999"].seal(Envelope(key, b"x"), b"")  # no nonce is never a nonce


def test_an_unknown_destination_is_refused_naming_it(star: Star) -> None:
    exchange, transports = star()
    exchange.set_routes({GUEST.party_id: exchange.routes[GUEST.party_id]})  # the host is not routed
    with pytest.raises(SendRefused) as info:
        transports[GUEST.party_id].send(Envelope(MessageKey(JOB, "w", GUEST, HOST), encode_value(1)))
    assert info.value.reason is RefusalReason.NO_ROUTE
    assert "no route to party 10000" in str(info.value) and "exchange exchange" in str(info.value)


def test_the_exchange_acks_nothing_the_receiver_did_not_store(star: Star) -> None:
    """With the receiver down, the send does not succeed; once it is up, the value arrives once."""
    exchange, transports = star()
    routes = exchange.routes
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    exchange.set_routes({**routes, HOST.party_id: f"127.0.0.1:{dead}"})
    sender = transports[GUEST.party_id]
    sender.connect_deadline_s = 1.0
    with pytest.raises(PeerUnreachable, match="UNAVAILABLE"):
        sender.send(Envelope(MessageKey(JOB, "w", GUEST, HOST), encode_value(1)))
    sender.connect_deadline_s = 10.0
    timer = threading.Timer(0.5, exchange.set_routes, args=(routes,))
    timer.start()
    try:
        sender.send(Envelope(MessageKey(JOB, "w", GUEST, HOST), encode_value(2)))
    finally:
        timer.join()
    assert decode_value(transports[HOST.party_id].recv(MessageKey(JOB, "w", GUEST, HOST), 5)) == 2


@pytest.mark.parametrize("kind", [FaultKind.CORRUPT, FaultKind.DROP, FaultKind.KILL_AFTER_WRITE])
def test_faults_on_the_way_to_the_exchange_still_deliver_once(star: Star, inject: Injector, kind: FaultKind) -> None:
    _, transports = star(send={"9999": {"chunk_bytes": 1024, "rpc_timeout_s": 2.0}})
    inject.sender(transports["9999"], FaultPlan.of(kind, 3, tag="w"))
    guest, host = _federations(transports)
    value = np.arange(5000, dtype=np.int64)
    guest.send("w", value, HOST)
    np.testing.assert_array_equal(host.recv("w", GUEST), value)
    with pytest.raises(Exception, match="no 'w'"):
        transports[HOST.party_id].recv(MessageKey(JOB, "w", GUEST, HOST), 0.3)


@pytest.mark.parametrize("kind", [FaultKind.KILL_AFTER_WRITE, FaultKind.KILL, FaultKind.CORRUPT])
def test_faults_at_the_receiving_gateway_reach_the_sender_through_the_exchange(
    star: Star, inject: Injector, kind: FaultKind
) -> None:
    """KILL_AFTER_WRITE: the receiver wrote chunk 3 and the ack was lost; the resend resumes after it."""
    _, transports = star(send={"9999": {"chunk_bytes": 1024}})
    plan = inject.gateway(transports["10000"].gateway, FaultPlan.of(kind, 3, tag="w"))
    guest, host = _federations(transports)
    value = np.arange(5000, dtype=np.int64)
    guest.send("w", value, HOST)
    np.testing.assert_array_equal(host.recv("w", GUEST), value)
    assert [event.kind for event in plan.fired] == [kind]


def test_the_receivers_refusal_passes_through_the_exchange_with_its_reason(star: Star) -> None:
    """Pushed straight at the exchange: a sealing transport would not seal for a job it has not opened."""
    exchange, _ = star()
    key = MessageKey("no-such-job", "w", GUEST, HOST)
    with grpc.insecure_channel(f"127.0.0.1:{exchange.port}") as channel:
        stub = pb_grpc.GatewayStub(channel)  # type: ignore[no-untyped-call]
        with pytest.raises(grpc.RpcError) as info:
            stub.Push(codec.chunk_to_proto(part) for part in split(Envelope(key, encode_value(1))))
    assert (REFUSAL_METADATA_KEY, RefusalReason.UNKNOWN_JOB.value) in tuple(info.value.trailing_metadata())
    assert "gateway of party 10000 has no open job 'no-such-job'" in info.value.details()


def test_a_push_through_the_exchange_is_relayed_but_an_unsealed_payload_is_refused(star: Star) -> None:
    """The older Push RPC is relayed too; a payload nobody sealed is rejected by the receiver, never decoded."""
    exchange, transports = star()
    key = MessageKey(JOB, "pushed", GUEST, HOST)
    with grpc.insecure_channel(f"127.0.0.1:{exchange.port}") as channel:
        stub = pb_grpc.GatewayStub(channel)  # type: ignore[no-untyped-call]
        ack = stub.Push(codec.chunk_to_proto(part) for part in split(Envelope(key, encode_value("clear"))))
    assert ack.stored_bytes > 0 and not ack.duplicate
    with pytest.raises(SealBroken, match="not sealed"):
        transports[HOST.party_id].recv(key, 5)


def test_heartbeats_and_pings_travel_through_the_exchange(star: Star) -> None:
    _, transports = star()
    reply = transports[GUEST.party_id].heartbeat(HOST.party_id, JOB)
    assert reply.party_id == HOST.party_id and reply.job_state.value == "open"
    assert transports[HOST.party_id].ping(GUEST.party_id) == GUEST.party_id


def test_with_mtls_a_party_cannot_speak_through_the_exchange_in_another_name(star: Star, tmp_path: Path) -> None:
    init_ca(tmp_path / "ca", days=2)
    files = {p: issue_party_cert(tmp_path / "ca", tmp_path / p, p, days=2) for p in ("9999", "10000", "exchange")}
    tls = {p: f.tls_config() for p, f in files.items()}
    _, transports = star(tls=tls["exchange"], party_tls=tls)
    guest, host = _federations(transports)
    guest.send("w", [1, 2, 3], HOST)
    assert host.recv("w", GUEST) == [1, 2, 3]
    forged = Envelope(MessageKey(JOB, "forged", HOST, GUEST), encode_value("I am the host"))
    with pytest.raises(SendRefused) as info:
        transports[GUEST.party_id].send(forged)  # the guest claims to be the host
    assert info.value.reason is RefusalReason.IDENTITY
    assert "names party 9999" in str(info.value)


# ------------------------------------------------------------------ sealing keys the CA vouches for


def _sealing_folder(tmp_path: Path, party_id: str, key: SealingKey, certs: list[Path], ca: Path) -> Path:
    folder = tmp_path / f"sealing-{party_id}"
    (folder / "peers").mkdir(parents=True)
    key.save(folder / "sealing.key")
    shutil.copyfile(ca, folder / "ca.pem")
    for cert in certs:
        shutil.copyfile(cert, folder / "peers" / cert.name)
    return folder


def test_sealing_keys_in_certificates_are_checked_against_the_ca(tmp_path: Path) -> None:
    init_ca(tmp_path / "ca", days=2)
    init_ca(tmp_path / "other-ca", days=2)
    keys = {p: SealingKey.generate() for p in ("9999", "10000")}
    files = {p: issue_party_cert(tmp_path / "ca", tmp_path / p, p, days=2, sealing_key=bytes.fromhex(k.public_hex))
             for p, k in keys.items()}
    certs = [files[p].cert for p in keys]
    guest = Sealer.from_dir(_sealing_folder(tmp_path, "9999", keys["9999"], certs, files["9999"].ca_cert), "9999")
    host = Sealer.from_dir(_sealing_folder(tmp_path, "10000", keys["10000"], certs, files["10000"].ca_cert), "10000")
    key = MessageKey(JOB, "w", GUEST, HOST)
    nonce = bytes(16)
    sealed = guest.seal(Envelope(key, b"vouched for"), nonce).payload
    assert host.open(key, PayloadKind.VALUE, sealed, nonce) == b"vouched for"

    # A certificate for party 10000 from another CA, however its key was made, vouches for nothing.
    forged = issue_party_cert(tmp_path / "other-ca", tmp_path / "forged", "10000", days=2,
                              sealing_key=bytes.fromhex(SealingKey.generate().public_hex))
    folder = _sealing_folder(tmp_path, "9999b", keys["9999"], [files["9999"].cert, forged.cert], files["9999"].ca_cert)
    with pytest.raises(SealingKeyError, match=r"party-10000.pem.*not signed by the CA|party-10000.pem.*issued by"):
        Sealer.from_dir(folder, "9999")
    # A certificate without a sealing key, and a party whose own key does not match its certificate.
    plain = issue_party_cert(tmp_path / "ca", tmp_path / "plain", "10000", days=2)
    folder = _sealing_folder(tmp_path, "9999c", keys["9999"], [files["9999"].cert, plain.cert], files["9999"].ca_cert)
    with pytest.raises(SealingKeyError, match="party 10000 carries no sealing key"):
        Sealer.from_dir(folder, "9999")
    folder = _sealing_folder(tmp_path, "9999d", keys["10000"], certs, files["9999"].ca_cert)
    with pytest.raises(SealingKeyError, match="does not match"):
        Sealer.from_dir(folder, "9999")
