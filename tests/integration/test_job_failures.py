"""When a party fails or a peer never answers, the CLI exits non-zero, names the
party and the cause, and leaves no process behind."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from cli_helpers import breast_job, leftover_processes, run_cli

pytestmark = pytest.mark.integration


def test_silent_peer_times_out_with_job_tag_and_peer(tmp_path: Path, test_data: Path, fresh_job_id: str) -> None:
    job = breast_job(test_data, federation={"timeout_s": 4}, debug={"delay_s": {"host": 600}})
    proc = run_cli(tmp_path, job, fresh_job_id, timeout=240)
    assert proc.returncode != 0
    err = proc.stderr
    assert f"job {fresh_job_id}" in err
    assert "host:10000" in err and "after 4s" in err, err
    assert leftover_processes(fresh_job_id) == []


def test_bad_cell_stops_every_party_and_names_file_and_column(
    tmp_path: Path, test_data: Path, fresh_job_id: str
) -> None:
    host = pd.read_csv(test_data / "breast_hetero_host.csv", dtype=str)
    host.loc[5, "x3"] = "abc"
    bad = tmp_path / "host_bad.csv"
    host.to_csv(bad, index=False)
    job = breast_job(test_data)
    job["parties"]["hosts"][0]["data"]["uri"] = str(bad)
    proc = run_cli(tmp_path, job, fresh_job_id, timeout=240)
    assert proc.returncode != 0
    assert "host:10000" in proc.stderr and "host_bad.csv" in proc.stderr and "x3" in proc.stderr, proc.stderr
    assert f"id={host.loc[5, 'id']}" in proc.stderr
    assert leftover_processes(fresh_job_id) == []


def test_different_id_sets_ask_for_psi(tmp_path: Path, test_data: Path, fresh_job_id: str) -> None:
    host = pd.read_csv(test_data / "breast_hetero_host.csv", dtype=str).iloc[:-3]
    fewer = tmp_path / "host_fewer.csv"
    host.to_csv(fewer, index=False)
    job = breast_job(test_data)
    job["parties"]["hosts"][0]["data"]["uri"] = str(fewer)
    proc = run_cli(tmp_path, job, fresh_job_id, timeout=240)
    assert proc.returncode != 0
    assert "PSI alignment" in proc.stderr, proc.stderr
    assert leftover_processes(fresh_job_id) == []


def test_invalid_job_file_names_the_field(tmp_path: Path, test_data: Path, fresh_job_id: str) -> None:
    job = breast_job(test_data)
    job["params"] = {"learning_rate": 0.1}
    job["parties"]["guest"]["data"].pop("label_column")
    proc = run_cli(tmp_path, job, fresh_job_id, timeout=60)
    assert proc.returncode == 2
    assert "label_column" in proc.stderr and f"{fresh_job_id}.yaml" in proc.stderr
