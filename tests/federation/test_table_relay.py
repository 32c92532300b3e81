"""Executors hand table partitions to their OWN gateway, which forwards them (issue 5, item 6).

Real gRPC gateways on 127.0.0.1 port 0, the session's local Spark (executors
are separate Python worker processes), real certificates and sealing keys.
Checked: with mTLS a table crosses while executors hold no key and the peer
sees the sending *gateway's* certificate; the in-party hop refuses a wrong or
missing token, another party's message and an unregistered tag; in a sealed
star the table crosses from executors (not through the driver) and the
exchange's tap holds nothing Arrow-decodable.
"""

from __future__ import annotations

import dataclasses
import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from fault_injection import FaultKind, FaultPlan, Injector
from pyspark.sql import SparkSession

from fedspark.common import PartyRef, Role
from fedspark.federation import (
    CodecError,
    Context,
    Envelope,
    Federation,
    GatewayOptions,
    GrpcTransport,
    MessageKey,
    PayloadKind,
    PeerTimeout,
    RefusalReason,
    Sealer,
    SealingKey,
    Security,
    SendOptions,
    SendRefused,
    TlsConfig,
    create_exchange,
    create_gateway,
    decode_value,
)
from fedspark.federation import federation_pb2_grpc as pb_grpc
from fedspark.federation.security import NONCE_TAG
from fedspark.federation.star import Exchange
from fedspark.federation.tables import SinkTarget, encode_partition, part_seq, push_partition
from fedspark.federation.transport import SendSettings, dial_in_party, transfer

GUEST = PartyRef(Role.GUEST, "9999")
HOST = PartyRef(Role.HOST, "10000")
MEMBERS = [GUEST, HOST]
JOB = "relay-job"

Connect = Callable[..., dict[str, GrpcTransport]]


def _identities_seen(monkeypatch: pytest.MonkeyPatch, transport: GrpcTransport) -> list[tuple[int, str | None]]:
    """(seq, certified identity) of every Transfer the receiving gateway admits (it runs in this process)."""
    seen: list[tuple[int, str | None]] = []
    gateway = transport.gateway
    original = gateway.open_transfer

    def open_transfer(header, pending=(), *, identity=None):  # type: ignore[no-untyped-def]
        seen.append((header.key.seq, identity))
        return original(header, pending, identity=identity)

    monkeypatch.setattr(gateway, "open_transfer", open_transfer)
    return seen


def _partition(rows: int = 10) -> pa.Buffer:
    table = pa.table({"id": list(range(rows))})
    return encode_partition(table.schema, iter(table.to_batches()))[0]


def _with_tls(party_tls: dict[str, TlsConfig]) -> dict[str, Any]:
    """``grpc_network_factory`` options giving parties 9999 and 10000 their certificates."""
    parties = ("9999", "10000")
    return {
        "gateway_options": {pid: {"tls": party_tls[pid]} for pid in parties},
        "transport_options": {pid: {"security": Security(tls=party_tls[pid])} for pid in parties},
    }


def test_with_mtls_executors_hold_no_key_and_the_peer_sees_the_sending_gateways_certificate(
    spark: SparkSession, grpc_network_factory: Connect, party_tls: dict[str, TlsConfig],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    net = grpc_network_factory(JOB, MEMBERS, **_with_tls(party_tls))
    sender, receiver = net["10000"], net["9999"]
    seen = _identities_seen(monkeypatch, receiver)

    target = sender.table_sink(MessageKey(JOB, "t", HOST, GUEST))
    # What executors get: the party's own gateway (its in-party port), a token and the public CA. No key.
    names = {f.name for f in dataclasses.fields(SinkTarget)}
    assert not names & {"key", "cert", "key_path", "cert_path"}
    assert target.address == sender.gateway.in_party_address
    assert target.address not in (sender.routes["9999"], f"127.0.0.1:{sender.port}")
    assert target.ca_pem == Path(party_tls["10000"].ca_cert).read_bytes()
    key_pem = Path(party_tls["10000"].key).read_bytes()
    shipped = json.dumps({k: v.decode() if isinstance(v, bytes) else v for k, v in dataclasses.asdict(target).items()})
    assert b"PRIVATE KEY" not in shipped.encode() and key_pem.decode() not in shipped
    assert str(party_tls["10000"].key) not in shipped and str(party_tls["10000"].cert) not in shipped

    df = spark.range(0, 3000, numPartitions=3).selectExpr("id", "id * 3 as y")
    Context(Federation(JOB, HOST, MEMBERS, sender)).guest.put_table("t", df)
    got = Context(Federation(JOB, GUEST, MEMBERS, receiver)).hosts[0].get_table("t", spark)
    assert got.toArrow().equals(df.toArrow())
    # Every message reached the guest over a connection certified as party 10000: the
    # executors (which have no certificate) never dialled it; the host's gateway did.
    assert sorted(seen) == [(0, "10000"), *[(part_seq(p, 0), "10000") for p in range(3)]]


def test_the_in_party_port_presents_the_gateway_certificate_but_a_peer_cannot_deliver_through_it(
    grpc_network_factory: Connect, party_tls: dict[str, TlsConfig]
) -> None:
    """Without a client certificate nobody passes as a party: an inbound message there is refused."""
    net = grpc_network_factory(JOB, MEMBERS, **_with_tls(party_tls))
    guest_gateway = net["9999"].gateway
    address = guest_gateway.in_party_address
    assert address is not None
    channel = dial_in_party(address, Path(party_tls["9999"].ca_cert).read_bytes(), "9999")
    try:
        envelope = Envelope(MessageKey(JOB, "forged", HOST, GUEST, 1), b"x" * 100, PayloadKind.RAW)
        with pytest.raises(SendRefused) as info:
            transfer(pb_grpc.GatewayStub(channel), envelope, address, SendSettings(1 << 20, 2.0, 10.0))  # type: ignore[no-untyped-call]
    finally:
        channel.close()
    assert info.value.reason is RefusalReason.IDENTITY
    assert "certificate names no party" in str(info.value)


@pytest.fixture
def plain(grpc_network_factory: Connect) -> dict[str, GrpcTransport]:
    return grpc_network_factory(JOB, MEMBERS, send=SendOptions(connect_deadline_s=2.0))


def test_a_wrong_token_is_refused_with_a_clear_error(plain: dict[str, GrpcTransport]) -> None:
    target = plain["10000"].table_sink(MessageKey(JOB, "scores", HOST, GUEST))
    with pytest.raises(SendRefused) as info:
        push_partition(dataclasses.replace(target, token="not-the-token"), 0, 0, _partition())
    assert info.value.reason is RefusalReason.RELAY_REFUSED
    assert "party 10000's gateway will not forward 'scores' to guest:9999: wrong relay token" in str(info.value)
    # The right token still works, and nothing refused reached the guest.
    push_partition(target, 0, 1, _partition())
    got = plain["9999"].recv_payload(MessageKey(JOB, "scores", HOST, GUEST, part_seq(0, 1)), 5)
    assert pa.ipc.open_stream(got.buffer()).read_all().num_rows == 10
    assert len(plain["9999"].gateway.mailbox) == 0


def test_a_missing_token_another_partys_message_an_unregistered_tag_and_a_manifest_are_refused(
    plain: dict[str, GrpcTransport],
) -> None:
    sender = plain["10000"]
    target = sender.table_sink(MessageKey(JOB, "scores", HOST, GUEST))
    address = target.address
    channel = dial_in_party(address, None, "10000")
    stub = pb_grpc.GatewayStub(channel)  # type: ignore[no-untyped-call]
    settings = SendSettings(1 << 20, 2.0, 10.0)
    with_token = dataclasses.replace(settings, metadata=(("fedspark-relay-token", target.token),))

    def refused(key: MessageKey, how: SendSettings) -> str:
        with pytest.raises(SendRefused) as info:
            transfer(stub, Envelope(key, _partition().to_pybytes(), PayloadKind.ARROW_STREAM), address, how)
        assert info.value.reason is RefusalReason.RELAY_REFUSED
        return str(info.value)

    try:
        assert "carries no relay token" in refused(MessageKey(JOB, "scores", HOST, GUEST, 1), settings)
        # The guest's name, even with the host's token: a gateway forwards only its own party's messages.
        assert "forwards only its own party's messages" in refused(
            MessageKey(JOB, "scores", PartyRef(Role.ARBITER, "9999"), GUEST, 1), with_token
        )
        assert "no relay token registered" in refused(MessageKey(JOB, "other", HOST, GUEST, 1), with_token)
        # The token is for partitions only: the manifest (seq 0) comes from the driver.
        assert "only table partitions are forwarded" in refused(MessageKey(JOB, "scores", HOST, GUEST, 0), with_token)
    finally:
        channel.close()
    assert len(plain["9999"].gateway.mailbox) == 0


def test_a_closed_job_revokes_its_tokens(plain: dict[str, GrpcTransport]) -> None:
    target = plain["10000"].table_sink(MessageKey(JOB, "scores", HOST, GUEST))
    plain["10000"].close_job(JOB)
    with pytest.raises(SendRefused, match="no relay token registered"):
        push_partition(target, 0, 0, _partition())


# ------------------------------------------------------------ star with sealing


SealedStar = Callable[..., tuple[Exchange, dict[str, GrpcTransport]]]


@pytest.fixture
def sealed_star_factory(tmp_path: Path) -> Iterator[SealedStar]:
    """An exchange (tap in ``tmp_path/exchange-tap``) and two sealing parties routed through it."""
    started: list[tuple[Exchange, list[GrpcTransport]]] = []

    def make(**send_options: Any) -> tuple[Exchange, dict[str, GrpcTransport]]:
        keys = {p.party_id: SealingKey.generate() for p in MEMBERS}
        table = {p: bytes.fromhex(k.public_hex) for p, k in keys.items()}
        exchange = create_exchange(tap_dir=tmp_path / "exchange-tap")
        transports: dict[str, GrpcTransport] = {}
        for party in MEMBERS:
            transports[party.party_id] = GrpcTransport(
                party,
                listen=GatewayOptions(work_dir=tmp_path / party.party_id),
                send=SendOptions(**{"connect_deadline_s": 5, **send_options}),
                security=Security(sealer=Sealer(party.party_id, keys[party.party_id], table), exchange=exchange.name),
            )
        started.append((exchange, list(transports.values())))
        exchange.set_routes({p: f"127.0.0.1:{t.port}" for p, t in transports.items()})
        for transport in transports.values():
            transport.set_routes({p: f"127.0.0.1:{exchange.port}" for p in transports})
            transport.open_job(JOB, MEMBERS)
        return exchange, transports

    yield make
    for exchange, transports in started:
        for transport in transports:
            transport.close()
        exchange.stop(grace_s=0)


@pytest.fixture
def sealed_star(sealed_star_factory: SealedStar) -> tuple[Exchange, dict[str, GrpcTransport]]:
    return sealed_star_factory()


def test_a_sealed_star_table_crosses_from_executors_and_the_exchange_sees_no_arrow(
    spark: SparkSession, sealed_star: tuple[Exchange, dict[str, GrpcTransport]], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, transports = sealed_star
    sender = transports["10000"]
    driver_sends: list[Envelope] = []
    original_send = sender.send
    monkeypatch.setattr(sender, "send", lambda envelope: (driver_sends.append(envelope), original_send(envelope))[1])

    df = spark.range(0, 20_000, numPartitions=4).selectExpr("id", "id * 0.5 as x", "concat('p', id) as name")
    Context(Federation(JOB, HOST, MEMBERS, sender, timeout_s=30)).guest.put_table("scores", df)
    got = Context(Federation(JOB, GUEST, MEMBERS, transports["9999"], timeout_s=30)).hosts[0].get_table("scores", spark)
    assert got.toArrow().equals(df.toArrow())
    # The driver sent only the manifest: the partitions came from executors through the gateway.
    assert [e.key.seq for e in driver_sends] == [0]

    carried: dict[int, dict[int, bytes]] = {}
    tap = tmp_path / "exchange-tap"
    for header_file in tap.glob("*.json"):
        header = json.loads(header_file.read_text())
        if header["tag"] == NONCE_TAG:
            continue  # each party's receive-nonce announcement (sealed too, see security._seal)
        assert header["tag"] == "scores" and header["src"] == "host:10000"
        carried.setdefault(header["seq"], {})[header["index"]] = (tap / header["payload_file"]).read_bytes()
    assert sorted(carried) == [0, *[part_seq(p, 0) for p in range(4)]]
    for chunks in carried.values():
        data = b"".join(chunks[i] for i in sorted(chunks))
        assert data.startswith(b"FSEAL\x01") and b"ARROW1" not in data
        with pytest.raises(pa.ArrowInvalid):
            pa.ipc.open_stream(pa.py_buffer(data)).read_all()
        with pytest.raises(CodecError):
            decode_value(data)
    # Nothing is left in the host gateway's outbound spill once forwarded.
    assert not list((tmp_path / "10000").rglob("*.msg"))


@pytest.mark.parametrize("kind", [FaultKind.KILL_AFTER_WRITE, FaultKind.CORRUPT, FaultKind.KILL])
def test_faults_between_executor_and_its_sealing_gateway_still_deliver_once(
    sealed_star_factory: SealedStar, inject: Injector, kind: FaultKind
) -> None:
    """Store-and-forward resumes the in-party hop like any transfer; the peer gets the partition once."""
    _, transports = sealed_star_factory(chunk_bytes=1024)
    plan = inject.gateway(transports["10000"].gateway, FaultPlan.of(kind, 3, tag="scores"))
    target = transports["10000"].table_sink(MessageKey(JOB, "scores", HOST, GUEST))
    payload = _partition(2000)
    push_partition(target, 0, 0, payload)
    assert [event.kind for event in plan.fired] == [kind]
    key = MessageKey(JOB, "scores", HOST, GUEST, part_seq(0, 0))
    with transports["9999"].recv_payload(key, 5) as got:
        assert got.read() == payload.to_pybytes()
    push_partition(target, 0, 0, payload)  # a late retry of the same attempt: answered, not sent again
    with pytest.raises(PeerTimeout):
        transports["9999"].recv_payload(key, 0.3)


@pytest.mark.parametrize("kind", [FaultKind.KILL_AFTER_WRITE, FaultKind.CORRUPT])
def test_faults_at_the_peer_reach_the_executor_through_its_gateway_and_it_resumes(
    grpc_network_factory: Connect, inject: Injector, kind: FaultKind
) -> None:
    """Cut-through: the peer's acks and failures pass the relay unchanged, so the executor's resume works."""
    net = grpc_network_factory(JOB, MEMBERS, send=SendOptions(connect_deadline_s=5.0),
                               transport_options={"10000": {"send": SendOptions(chunk_bytes=1024, connect_deadline_s=5.0)}})
    plan = inject.gateway(net["9999"].gateway, FaultPlan.of(kind, 3, tag="scores"))
    payload = _partition(2000)
    push_partition(net["10000"].table_sink(MessageKey(JOB, "scores", HOST, GUEST)), 0, 0, payload)
    assert [event.kind for event in plan.fired] == [kind]
    key = MessageKey(JOB, "scores", HOST, GUEST, part_seq(0, 0))
    with net["9999"].recv_payload(key, 5) as got:
        assert got.read() == payload.to_pybytes()


def test_a_forward_that_fails_is_a_clear_final_error_for_the_executor(
    sealed_star: tuple[Exchange, dict[str, GrpcTransport]],
) -> None:
    exchange, transports = sealed_star
    exchange.set_routes({"10000": exchange.routes["10000"]})  # the exchange lost its route to the guest
    target = transports["10000"].table_sink(MessageKey(JOB, "scores", HOST, GUEST))
    for _ in range(2):  # a retry of the same attempt gets the same answer, without forwarding again
        with pytest.raises(SendRefused) as info:
            push_partition(target, 0, 0, _partition())
        assert info.value.reason is RefusalReason.FORWARD_FAILED
        assert "party 10000's gateway could not forward 'scores' to guest:9999" in str(info.value)
        assert "exchange exchange has no route to party 9999" in str(info.value)


def test_a_wildcard_gateway_is_advertised_to_executors_by_this_machines_name() -> None:
    # Plaintext on every interface: refused unless the party opts in (tests/security/test_transport.py).
    gateway, port = create_gateway("10000", "0.0.0.0", 0, insecure_plaintext=True)
    try:
        assert gateway.in_party_address == f"{socket.getfqdn()}:{port}"
    finally:
        gateway.stop(grace_s=0)
