"""A standalone ``psi`` job from ``fedspark run``: guest and two hosts as real processes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from cli_helpers import leftover_processes, run_cli

pytestmark = pytest.mark.integration


def _csv(path: Path, ids: list[Any]) -> str:
    path.write_text("id,x\n" + "".join(f"{i},{n * 0.5}\n" for n, i in enumerate(ids)))
    return str(path)


def _order(run_dir: Path, party: str) -> list[str]:
    table = pq.read_table(run_dir / party / "aligned_ids.parquet").sort_by("__psi_order")
    return [str(i) for i in table.column("id").to_pylist()]


def test_psi_job_aligns_three_parties(tmp_path: Path, fresh_job_id: str) -> None:
    guest_ids = list(range(0, 300))
    host1_ids = [f"{i:05d}" for i in range(100, 400)]  # text with leading zeros: id_type int makes them meet
    host2_ids = [*range(0, 200), *range(250, 301)]
    job = {
        "name": "psi_three_parties",
        "algorithm": "psi",
        "parties": {
            "guest": {"party_id": "9999", "data": {"uri": _csv(tmp_path / "g.csv", guest_ids)}},
            "hosts": [
                {"party_id": "10000", "data": {"uri": _csv(tmp_path / "h1.csv", host1_ids)}},
                {"party_id": "10001", "data": {"uri": _csv(tmp_path / "h2.csv", host2_ids)}},
            ],
        },
        "params": {"id_type": "int"},
        "federation": {"timeout_s": 300},
        "spark": {"spark.master": "local[1]", "spark.driver.memory": "512m"},
    }
    proc = run_cli(tmp_path, job, fresh_job_id, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_dir = tmp_path / "runs" / fresh_job_id
    metrics = {p: json.loads((run_dir / p / "metrics.json").read_text()) for p in ("guest-9999", "host-10000", "host-10001")}
    assert {p: m["matched"] for p, m in metrics.items()} == {"guest-9999": 150, "host-10000": 150, "host-10001": 150}
    assert metrics["guest-9999"]["peer_ids"] == {"host:10000": 300, "host:10001": 251}
    assert metrics["host-10000"]["unmatched"] == 150 and metrics["host-10000"]["peer_ids"] == {"guest:9999": 300}
    orders = {p: _order(run_dir, p) for p in metrics}
    assert [int(i) for i in orders["host-10000"]] == [int(i) for i in orders["guest-9999"]] == [
        int(i) for i in orders["host-10001"]
    ]
    assert sorted(int(i) for i in orders["guest-9999"]) == list(range(100, 200)) + list(range(250, 300))
    assert "in the intersection: 150" in (run_dir / "host-10001" / "psi.md").read_text()
    assert not leftover_processes(fresh_job_id)
