"""The contract every Transport keeps, run once per backend.

``TransportContract`` holds the tests; each backend subclass only supplies the
``network`` fixture. A protocol that passes over loopback therefore meets the
same rules (ordering, de-duplication, refusals, timeouts) over gRPC.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from fedspark.common import PartyRef, Role
from fedspark.federation import (
    DuplicateRecv,
    DuplicateSend,
    Envelope,
    Federation,
    MessageKey,
    PayloadKind,
    PeerTimeout,
    RefusalReason,
    Security,
    SendOptions,
    SendRefused,
    Transport,
    TransportClosed,
    UnknownParty,
)

GUEST = PartyRef(Role.GUEST, "9999")
HOST = PartyRef(Role.HOST, "10000")
ARBITER = PartyRef(Role.ARBITER, "10000")
OUTSIDER = PartyRef(Role.HOST, "4242")
JOB = "job-contract"
MEMBERS = (GUEST, HOST, ARBITER)


def key(tag: str, src: PartyRef = GUEST, dst: PartyRef = HOST, seq: int = 0, job: str = JOB) -> MessageKey:
    return MessageKey(job, tag, src, dst, seq)


class TransportContract:
    __test__ = False

    @pytest.fixture
    def net(self, network: object) -> dict[str, Transport]:
        return network(JOB, MEMBERS)  # type: ignore[operator, no-any-return]

    @pytest.fixture
    def network(self) -> object:
        raise NotImplementedError("each backend's test class provides the network fixture")

    def test_send_then_recv_returns_payload(self, net: dict[str, Transport]) -> None:
        net["9999"].send(Envelope(key("a"), b"payload-a"))
        assert net["10000"].recv(key("a"), timeout_s=5) == b"payload-a"

    def test_empty_payload(self, net: dict[str, Transport]) -> None:
        net["9999"].send(Envelope(key("empty"), b"", PayloadKind.RAW))
        assert net["10000"].recv(key("empty"), timeout_s=5) == b""

    def test_recv_payload_hands_over_what_was_sent(self, net: dict[str, Transport]) -> None:
        net["9999"].send(Envelope(key("p"), b"x" * 100, PayloadKind.ARROW_STREAM))
        with net["10000"].recv_payload(key("p"), timeout_s=5) as payload:
            assert payload.read() == b"x" * 100 and payload.size == 100
            assert payload.kind in (PayloadKind.ARROW_STREAM, None)

    def test_recv_by_tag_is_order_independent(self, net: dict[str, Transport]) -> None:
        for tag in ("x", "y", "z"):
            net["9999"].send(Envelope(key(tag), tag.encode()))
        assert [net["10000"].recv(key(t), timeout_s=5) for t in ("z", "x", "y")] == [b"z", b"x", b"y"]

    def test_seq_and_role_separate_messages_under_one_tag(self, net: dict[str, Transport]) -> None:
        net["9999"].send(Envelope(key("part", seq=0), b"p0"))
        net["9999"].send(Envelope(key("part", seq=1), b"p1"))
        net["9999"].send(Envelope(key("part", dst=ARBITER), b"for-arbiter"))
        receiver = net["10000"]  # host and arbiter share party 10000
        assert receiver.recv(key("part", dst=ARBITER), timeout_s=5) == b"for-arbiter"
        assert receiver.recv(key("part", seq=1), timeout_s=5) == b"p1"
        assert receiver.recv(key("part", seq=0), timeout_s=5) == b"p0"

    def test_recv_waits_for_a_later_send(self, net: dict[str, Transport]) -> None:
        sender = threading.Timer(0.1, lambda: net["9999"].send(Envelope(key("later"), b"late")))
        sender.start()
        try:
            assert net["10000"].recv(key("later"), timeout_s=5) == b"late"
        finally:
            sender.join()

    def test_timeout_names_job_tag_and_peer(self, net: dict[str, Transport]) -> None:
        started = time.monotonic()
        with pytest.raises(PeerTimeout) as info:
            net["10000"].recv(key("never"), timeout_s=0.2)
        assert time.monotonic() - started < 2
        assert (info.value.job_id, info.value.tag, info.value.peer) == (JOB, "never", "guest:9999")
        assert str(info.value) == f"job {JOB}: no 'never' from guest:9999 after 0s"

    def test_resent_message_is_delivered_once(self, net: dict[str, Transport]) -> None:
        envelope = Envelope(key("once"), b"first")
        net["9999"].send(envelope)
        net["9999"].send(envelope)
        net["9999"].send(Envelope(key("once"), b"conflicting resend keeps the first"))
        assert net["10000"].recv(key("once"), timeout_s=5) == b"first"
        with pytest.raises(PeerTimeout):
            net["10000"].recv(key("once"), timeout_s=0.1)
        net["9999"].send(envelope)  # a retry after delivery is still not delivered again
        with pytest.raises(PeerTimeout):
            net["10000"].recv(key("once"), timeout_s=0.1)

    def test_unknown_job_is_refused(self, net: dict[str, Transport]) -> None:
        with pytest.raises(SendRefused) as info:
            net["9999"].send(Envelope(key("t", job="job-nobody-opened"), b"x"))
        assert info.value.reason is RefusalReason.UNKNOWN_JOB
        assert "no open job 'job-nobody-opened'" in str(info.value)
        assert info.value.peer == "host:10000"

    def test_sender_outside_the_job_is_refused(self, net: dict[str, Transport]) -> None:
        with pytest.raises(SendRefused) as info:
            net["9999"].send(Envelope(key("t", src=OUTSIDER), b"x"))
        assert info.value.reason is RefusalReason.NOT_A_MEMBER
        assert "host:4242 is not a party of this job" in str(info.value)

    def test_closing_wakes_a_waiting_receiver(self, net: dict[str, Transport]) -> None:
        closer = threading.Timer(0.1, net["10000"].close)
        closer.start()
        try:
            with pytest.raises(TransportClosed):
                net["10000"].recv(key("never"), timeout_s=10)
        finally:
            closer.join()

    def test_closed_job_drops_its_messages(self, net: dict[str, Transport]) -> None:
        net["9999"].send(Envelope(key("stale"), b"x"))
        net["10000"].close_job(JOB)
        with pytest.raises(SendRefused):
            net["9999"].send(Envelope(key("after-close"), b"x"))
        with pytest.raises(PeerTimeout):
            net["10000"].recv(key("stale"), timeout_s=0.1)

    # Federation on top of the transport: what algorithms rely on.

    def feds(self, net: dict[str, Transport], timeout_s: float = 5) -> dict[PartyRef, Federation]:
        return {p: Federation(JOB, p, MEMBERS, net[p.party_id], timeout_s) for p in MEMBERS}

    def test_federation_moves_typed_values(self, net: dict[str, Transport]) -> None:
        feds = self.feds(net)
        value = {"w": np.arange(6.0).reshape(2, 3), "n": 2**2048 + 1, "tags": ["a", None]}
        feds[GUEST].send("weights", value, to=ARBITER)
        got = feds[ARBITER].recv("weights", frm=GUEST)
        assert got["n"] == 2**2048 + 1 and got["tags"] == ["a", None]
        np.testing.assert_array_equal(got["w"], value["w"])

    def test_federation_streams_a_table(self, net: dict[str, Transport]) -> None:
        feds = self.feds(net)
        table = pa.table({"id": list(range(30)), "x": [0.5] * 30}).combine_chunks()
        batches = pa.Table.from_batches(table.to_batches(max_chunksize=7))
        feds[GUEST].send("table", batches, to=HOST)
        got = list(feds[HOST].recv_stream("table", frm=GUEST))
        assert [b.num_rows for b in got] == [7, 7, 7, 7, 2]
        assert pa.Table.from_batches(got).equals(batches)
        with pytest.raises(DuplicateRecv):
            feds[HOST].recv_stream("table", frm=GUEST)

    def test_duplicate_send_is_rejected(self, net: dict[str, Transport]) -> None:
        feds = self.feds(net)
        feds[GUEST].send("grad", 1, to=HOST)
        with pytest.raises(DuplicateSend) as info:
            feds[GUEST].send("grad", 2, to=HOST)
        assert "job-contract: 'grad' was already sent to host:10000" in str(info.value)
        feds[GUEST].send("grad", 3, to=ARBITER)  # same tag, other peer: fine
        assert feds[HOST].recv("grad", frm=GUEST) == 1
        with pytest.raises(DuplicateRecv):
            feds[HOST].recv("grad", frm=GUEST)

    def test_federation_timeout_and_strangers(self, net: dict[str, Transport]) -> None:
        feds = self.feds(net, timeout_s=0.1)
        with pytest.raises(PeerTimeout, match=f"job {JOB}: no 'loss' from guest:9999 after 0s"):
            feds[ARBITER].recv("loss", frm=GUEST)
        with pytest.raises(UnknownParty, match="host:4242 is not a party of this job"):
            feds[GUEST].send("x", 1, to=OUTSIDER)
        with pytest.raises(UnknownParty):
            feds[GUEST].recv("x", frm=OUTSIDER)


class TestLoopbackTransport(TransportContract):
    __test__ = True

    @pytest.fixture
    def network(self, loopback_network: object) -> object:
        return loopback_network


class TestGrpcTransport(TransportContract):
    __test__ = True

    @pytest.fixture
    def network(self, grpc_network: object) -> object:
        return grpc_network


def _per_party(members: list[PartyRef] | tuple[PartyRef, ...], options: Callable[[str], dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {p.party_id: options(p.party_id) for p in members}


class TestGrpcSpillingTransport(TransportContract):
    """gRPC with tiny chunks and a mailbox that keeps nothing in memory: every payload is a file."""

    __test__ = True

    @pytest.fixture
    def network(self, grpc_network_factory: Callable[..., dict[str, Transport]], tmp_path: Path) -> object:
        def connect(job_id: str, members: tuple[PartyRef, ...]) -> dict[str, Transport]:
            spill = _per_party(members, lambda pid: {"memory_limit_bytes": 0, "work_dir": tmp_path / pid})
            send = SendOptions(chunk_bytes=7, connect_deadline_s=2.0)
            return grpc_network_factory(job_id, members, gateway_options=spill, send=send)

        return connect


class TestGrpcTlsTransport(TransportContract):
    """gRPC with mutual TLS: every party presents its own certificate from one CA."""

    __test__ = True

    @pytest.fixture
    def network(
        self, grpc_network_factory: Callable[..., dict[str, Transport]], party_tls: dict[str, Any]
    ) -> object:
        def connect(job_id: str, members: tuple[PartyRef, ...]) -> dict[str, Transport]:
            tls = _per_party(members, lambda pid: {"tls": party_tls[pid]})
            security = _per_party(members, lambda pid: {"security": Security(tls=party_tls[pid])})
            return grpc_network_factory(
                job_id, members, gateway_options=tls, transport_options=security, send=SendOptions(connect_deadline_s=2.0)
            )

        return connect

    def test_sender_outside_the_job_is_refused(self, net: dict[str, Transport]) -> None:
        """Stricter than the contract: under TLS, party 9999 cannot even claim to be 4242."""
        with pytest.raises(SendRefused) as info:
            net["9999"].send(Envelope(key("t", src=OUTSIDER), b"x"))
        assert info.value.reason is RefusalReason.IDENTITY
        assert "claims to come from host:4242, but the sender's certificate names party 9999" in str(info.value)
