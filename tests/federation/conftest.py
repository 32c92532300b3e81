"""Fixtures for the federation tests: parties, port-0 gateways, and whole networks.

Every gRPC server started here is stopped in the fixture's teardown, so a
failing test never leaves a port bound or a thread running.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from fault_injection import Injector

from fedspark.common import PartyRef, Role
from fedspark.federation import GrpcTransport, LoopbackHub, SendOptions, TlsConfig, Transport, create_gateway
from fedspark.federation.transport import Gateway

GUEST = PartyRef(Role.GUEST, "9999")
HOST = PartyRef(Role.HOST, "10000")
HOST2 = PartyRef(Role.HOST, "10001")
# Shares a party id with HOST, as in FATE's standalone examples: one gateway, two roles.
ARBITER = PartyRef(Role.ARBITER, "10000")
PARTIES: tuple[PartyRef, ...] = (GUEST, HOST, HOST2, ARBITER)

# connect(job_id, parties) -> {party_id: transport}, with the job opened everywhere.
Network = Callable[[str, Sequence[PartyRef]], dict[str, Transport]]


_OURS = ("gateway-", "fedspark-")


@pytest.fixture(autouse=True)
def _no_thread_left_behind() -> Iterator[None]:
    """Every gateway worker, heartbeat and resend thread a test starts must end with it."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 3
    while True:
        left = [t.name for t in threading.enumerate() if t not in before and t.name.startswith(_OURS) and t.is_alive()]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not left, f"threads left behind: {left}"


@pytest.fixture
def inject(monkeypatch: pytest.MonkeyPatch) -> Injector:
    """Fault plans for gateways (``inject.gateway``) and transports (``inject.sender``), undone after the test."""
    return Injector(monkeypatch)


@pytest.fixture
def parties() -> tuple[PartyRef, ...]:
    return PARTIES


@pytest.fixture
def grpc_gateway(tmp_path: Path) -> Iterator[tuple[Gateway, int]]:
    """One port-0 gateway for party 9999 (with a tap in ``tmp_path/tap``)."""
    gateway, port = create_gateway("9999", tap_dir=tmp_path / "tap")
    yield gateway, port
    gateway.stop(grace_s=0)


@pytest.fixture
def loopback_network() -> Iterator[Network]:
    hubs: list[LoopbackHub] = []

    def connect(job_id: str, members: Sequence[PartyRef]) -> dict[str, Transport]:
        hub = LoopbackHub()
        hubs.append(hub)
        transports: dict[str, Transport] = {p.party_id: hub.transport(p.party_id) for p in members}
        for transport in transports.values():
            transport.open_job(job_id, members)
        return transports

    yield connect
    for hub in hubs:
        hub.close()


@pytest.fixture
def grpc_network(grpc_network_factory: Callable[..., dict[str, GrpcTransport]]) -> Network:
    def connect(job_id: str, members: Sequence[PartyRef]) -> dict[str, Transport]:
        return dict(grpc_network_factory(job_id, members, send=SendOptions(connect_deadline_s=2.0)))

    return connect


@pytest.fixture(scope="session")
def party_tls(tmp_path_factory: pytest.TempPathFactory) -> dict[str, TlsConfig]:
    """TLS material from one test CA for parties 9999, 10000 and 10001 (needs cryptography)."""
    pytest.importorskip("cryptography", reason="certificates are made with cryptography")
    from fedspark.federation import init_ca, issue_party_cert

    root = tmp_path_factory.mktemp("federation-ca")
    init_ca(root / "ca", days=2)
    return {pid: issue_party_cert(root / "ca", root / pid, pid, days=2).tls_config() for pid in ("9999", "10000", "10001")}
