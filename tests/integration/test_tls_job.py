"""The breast job over mTLS: the runner issues a job CA and one certificate per party,
each party holds only its own key, and the job trains as over plaintext gRPC."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import breast_job, leftover_processes, run_cli

pytestmark = pytest.mark.integration


def test_breast_job_over_mtls(tmp_path: Path, test_data: Path, fresh_job_id: str) -> None:
    job = breast_job(test_data, federation={"timeout_s": 60, "tls": True}, params={
        "learning_rate": 0.15, "max_iter": 3, "batch_size": 240, "seed": 7})
    proc = run_cli(tmp_path, job, fresh_job_id, timeout=300)
    assert proc.returncode == 0, proc.stderr
    run_dir = tmp_path / "runs" / fresh_job_id
    metrics = json.loads((run_dir / "guest-9999" / "metrics.json").read_text())
    assert metrics["epochs"] == 3 and metrics["auc"] > 0.97
    certs = run_dir / "certs"
    for party in ("9999", "10000", "10001"):
        keys = sorted(p.name for p in (certs / party).glob("*.key"))
        assert keys == [f"party-{party}.key"]
    assert leftover_processes(fresh_job_id) == []
