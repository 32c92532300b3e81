"""`fedspark ping` against real gateways (plaintext and mTLS), run as a user types it."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from fedspark.federation import create_gateway
from fedspark.federation.transport import Gateway

FEDSPARK = [sys.executable, "-c", "from fedspark.engine.cli import main; main()"]


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*FEDSPARK, *args], capture_output=True, text=True, cwd=cwd, timeout=120,
                          env={**os.environ, "COLUMNS": "200"})


def _dead_address() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def certs(tmp_path: Path) -> Path:
    from fedspark.federation import init_ca, issue_party_cert

    init_ca(tmp_path / "certs" / "ca", days=2)
    for party in ("9999", "10000"):
        issue_party_cert(tmp_path / "certs" / "ca", tmp_path / "certs" / party, party, days=2)
    return tmp_path / "certs"


@pytest.fixture
def gateways() -> Iterator[list[Gateway]]:
    started: list[Gateway] = []
    yield started
    for gateway in started:
        gateway.stop(grace_s=0)


def _conf(tmp_path: Path, routes: dict[str, str], tls: dict[str, str] | None = None) -> Path:
    path = tmp_path / "conf" / "party-9999.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump({"party_id": "9999", "routes": routes, **({"tls": tls} if tls else {})}))
    return path


def test_ping_prints_latency_and_names_the_unreachable_peer(tmp_path: Path, gateways: list[Gateway]) -> None:
    gateway, port = create_gateway("10000")
    gateways.append(gateway)
    conf = _conf(tmp_path, {"10000": f"127.0.0.1:{port}", "10001": _dead_address()})
    proc = _cli("ping", "--conf", str(conf), "--timeout", "1", cwd=tmp_path)
    assert re.search(rf"party 10000 at 127\.0\.0\.1:{port}: ok, [0-9.]+ ms .*plaintext", proc.stdout), proc.stdout
    assert proc.returncode == 5, proc.stderr
    assert "party 9999 cannot reach 1 peer(s): party 10001: 127.0.0.1:" in proc.stderr
    # Only the reachable one: success.
    assert _cli("ping", "--conf", str(conf), "--party", "10000", cwd=tmp_path).returncode == 0
    missing = _cli("ping", "--conf", str(conf), "--party", "10002", cwd=tmp_path)
    assert missing.returncode == 5 and "party 10002: no route" in missing.stderr
    # --job: every other party the job names (here 10000 and 10003, which has no route).
    job = tmp_path / "job.yaml"
    job.write_text(yaml.safe_dump({"name": "j", "parties": {
        "guest": {"party_id": "9999", "data": {"uri": "g.csv", "label_column": "y"}},
        "hosts": [{"party_id": "10000", "data": {"uri": "h.csv"}}], "arbiter": {"party_id": "10003"}}}))
    by_job = _cli("ping", "--conf", str(conf), "--job", str(job), cwd=tmp_path)
    assert by_job.returncode == 5 and "party 10000 at" in by_job.stdout and "ok" in by_job.stdout
    assert "cannot reach 1 peer(s): party 10003: no route" in by_job.stderr


def test_ping_over_mtls_checks_the_peer_identity(tmp_path: Path, certs: Path, gateways: list[Gateway]) -> None:
    from fedspark.federation import TlsConfig

    gateway, port = create_gateway("10000", tls=TlsConfig.from_dir(certs / "10000", "10000"))
    gateways.append(gateway)
    own = {"ca_cert": "../certs/9999/ca.pem", "cert": "../certs/9999/party-9999.pem", "key": "../certs/9999/party-9999.key"}
    # 10001's route points at 10000's gateway: its certificate names the wrong party.
    conf = _conf(tmp_path, {"10000": f"127.0.0.1:{port}", "10001": f"127.0.0.1:{port}"}, own)
    proc = _cli("ping", "--conf", str(conf), "--party", "10000", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "ok" in proc.stdout and "mTLS, certificate names party 10000" in proc.stdout
    wrong = _cli("ping", "--conf", str(conf), "--party", "10001", "--timeout", "2", cwd=tmp_path)
    assert wrong.returncode == 5 and "party 10001" in wrong.stderr, wrong.stderr
