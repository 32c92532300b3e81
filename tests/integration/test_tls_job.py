"""``fedspark run`` without mTLS (``federation.tls: false``): only on loopback, and every output says so.

mTLS is the default (its run, the key clean-up and the attacks it stops are in
tests/security/test_transport.py); this is the opt-out a developer may take
on one machine.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import breast_job, leftover_processes, run_cli

pytestmark = pytest.mark.integration


def test_a_plaintext_job_runs_on_loopback_and_every_output_says_plaintext(
    tmp_path: Path, test_data: Path, fresh_job_id: str
) -> None:
    job = breast_job(test_data, federation={"timeout_s": 60, "tls": False}, params={
        "learning_rate": 0.15, "max_iter": 3, "batch_size": 240, "seed": 7})
    proc = run_cli(tmp_path, job, fresh_job_id, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "federation.tls: false" in proc.stderr and "plaintext" in proc.stderr
    assert "federation transport: plaintext (loopback)" in proc.stdout
    run_dir = tmp_path / "runs" / fresh_job_id
    metrics = json.loads((run_dir / "guest-9999" / "metrics.json").read_text())
    assert metrics["epochs"] == 3 and metrics["auc"] > 0.97
    for party in ("guest-9999", "host-10000", "arbiter-10001"):
        assert json.loads((run_dir / party / "metrics.json").read_text())["transport"] == "plaintext (loopback)"
        assert "plaintext gRPC (plaintext (loopback))" in (run_dir / party / "report.md").read_text()
        assert "federation over PLAINTEXT gRPC" in (run_dir / party / "gateway.log").read_text()
    assert not (run_dir / "certs").exists()
    assert leftover_processes(fresh_job_id) == []


def test_tls_false_off_loopback_is_refused_before_any_party_starts(
    tmp_path: Path, test_data: Path, fresh_job_id: str
) -> None:
    job = breast_job(test_data, federation={"timeout_s": 60, "tls": False, "host": "0.0.0.0"})
    proc = run_cli(tmp_path, job, fresh_job_id, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "federation.tls: false" in proc.stderr and "'0.0.0.0'" in proc.stderr, proc.stderr
    assert not (tmp_path / "runs" / fresh_job_id).exists()
