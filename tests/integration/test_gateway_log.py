"""`fedspark run` writes each party's gateway log to its run folder: one INFO line per message."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cli_helpers import breast_job, leftover_processes, run_cli

pytestmark = pytest.mark.integration

LINE = re.compile(
    r"INFO fedspark\.federation\.gateway: stored job=(?P<job>\S+) tag=(?P<tag>\S+) seq=\d+ "
    r"src=(?P<src>\S+) dst=(?P<dst>\S+) kind=\S+ bytes=(?P<bytes>\d+) duration_ms=[0-9.]+"
)


def test_each_party_logs_every_message_it_stored(tmp_path: Path, test_data: Path, fresh_job_id: str) -> None:
    job = breast_job(test_data, federation={"timeout_s": 300}, params={"learning_rate": 0.15, "max_iter": 1, "batch_size": 240, "seed": 7})
    proc = run_cli(tmp_path, job, fresh_job_id, timeout=300)
    assert proc.returncode == 0, proc.stderr
    run_dir = tmp_path / "runs" / fresh_job_id
    for party in ("guest-9999", "host-10000", "arbiter-10001"):
        lines = [m for m in map(LINE.search, (run_dir / party / "gateway.log").read_text().splitlines()) if m]
        assert lines, f"{party} logged no stored message"
        for match in lines:
            assert match["job"] == fresh_job_id and match["dst"] == party.replace("-", ":")
            assert match["src"] != match["dst"] and int(match["bytes"]) > 0
        assert any(m["tag"] == "pubkey" or m["tag"].endswith("wx") or "." in m["tag"] for m in lines)
    assert leftover_processes(fresh_job_id) == []
