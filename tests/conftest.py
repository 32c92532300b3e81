"""Shared fixtures: one SparkSession per test session, the public data folder,
real gRPC networks on loopback, and an environment cleaner so a developer's
settings never leak into a test."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from fedspark.common import PartyRef
    from fedspark.federation import GrpcTransport

REPO_ROOT = Path(__file__).resolve().parent.parent


def _find_test_data() -> Path | None:
    configured = os.environ.get("FEDSPARK_TEST_DATA")
    candidates = [Path(configured)] if configured else []
    candidates.append(REPO_ROOT.parent / "shared" / "data")
    for candidate in candidates:
        if (candidate / "breast_hetero_guest.csv").is_file():
            return candidate
    return None


@pytest.fixture(scope="session")
def test_data() -> Path:
    """The public example tables; skip (or fail under CI=true) when absent."""
    found = _find_test_data()
    if found is None:
        reason = "public test tables not found: set FEDSPARK_TEST_DATA or provide ../shared/data"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return found


@pytest.fixture(scope="session")
def spark() -> Iterator[object]:
    """One local[2] SparkSession for the whole test session (Arrow on)."""
    from fedspark.engine import build_session

    # local[2,2]: two cores, and a failed task is retried once (as on a cluster), so tests
    # can show that a retried task does not duplicate what it sent.
    session = build_session("fedspark-tests", {"spark.driver.memory": "2g", "spark.master": "local[2,2]"})
    yield session
    session.stop()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove fedspark settings inherited from the developer's shell."""
    for key in list(os.environ):
        if key.startswith("FEDSPARK_") and key != "FEDSPARK_TEST_DATA":
            monkeypatch.delenv(key, raising=False)


@pytest.fixture
def grpc_network_factory() -> Iterator[Callable[..., dict[str, GrpcTransport]]]:
    """Port-0 gateways and transports for a job's parties, routed to each other; closed after the test.

    Options: ``GrpcTransport``'s (``send=SendOptions(...)``, ``heartbeats``, ``security``), a tap
    (see ``grpc_network`` in tests/federation for the plain form).
    """
    from fedspark.federation import GrpcTransport, create_gateway

    started: list[GrpcTransport] = []

    def connect(
        job_id: str,
        members: Sequence[PartyRef],
        tap_root: Path | None = None,
        gateway_options: Mapping[str, Mapping[str, Any]] | None = None,
        transport_options: Mapping[str, Mapping[str, Any]] | None = None,
        **options: Any,
    ) -> dict[str, GrpcTransport]:
        """``gateway_options`` (``create_gateway``'s) and ``transport_options`` (``GrpcTransport``'s) are per
        party id, ``options`` (``GrpcTransport``'s) for all transports."""
        transports: dict[str, GrpcTransport] = {}
        for party_id in dict.fromkeys(p.party_id for p in members):
            tap_dir = tap_root / party_id if tap_root is not None else None
            gateway, _ = create_gateway(party_id, tap_dir=tap_dir, **(gateway_options or {}).get(party_id, {}))
            own = {**options, **(transport_options or {}).get(party_id, {})}
            transport = GrpcTransport(gateway, **own)
            started.append(transport)
            transports[party_id] = transport
        # As the embedded runner does: bind port 0 first, hand out routes after.
        routes = {pid: f"127.0.0.1:{t.gateway.port}" for pid, t in transports.items()}
        for transport in transports.values():
            transport.set_routes(routes)
            transport.open_job(job_id, members)
        return transports

    yield connect
    for transport in started:
        transport.close()
