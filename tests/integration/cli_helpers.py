"""Helpers for integration tests: run the real CLI, which spawns real party processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

FEDSPARK = [sys.executable, "-c", "from fedspark.engine.cli import main; main()"]


def breast_job(data_dir: Path, **overrides: Any) -> dict[str, Any]:
    """The breast job on the given tables, with test-sized keys (recorded as insecure)."""
    job: dict[str, Any] = {
        "name": "hetero_lr_breast_test",
        "algorithm": "hetero_lr",
        "parties": {
            "guest": {"party_id": "9999",
                      "data": {"uri": str(data_dir / "breast_hetero_guest.csv"), "label_column": "y"}},
            "hosts": [{"party_id": "10000", "data": {"uri": str(data_dir / "breast_hetero_host.csv")}}],
            "arbiter": {"party_id": "10001"},
        },
        "params": {"learning_rate": 0.15, "alpha": 0.01, "max_iter": 8, "batch_size": 240, "seed": 7},
        "security": {"key_size": 1024},
        "federation": {"timeout_s": 60},
        "spark": {"spark.master": "local[1]", "spark.driver.memory": "512m"},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(job.get(key), dict):
            job[key] = {**job[key], **value}
        else:
            job[key] = value
    return job


def run_cli(tmp_path: Path, job: dict[str, Any], job_id: str, *extra: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """``fedspark run`` on ``job``; a job with a test-sized key gets ``--min-key-size`` for it (the parties' own floor)."""
    job_file = tmp_path / f"{job_id}.yaml"
    job_file.write_text(yaml.safe_dump(job))
    key_size = int(job.get("security", {}).get("key_size", 2048))
    floor = ["--min-key-size", str(key_size)] if key_size < 2048 and "--min-key-size" not in extra else []
    return subprocess.run(
        [*FEDSPARK, "run", str(job_file), "--job-id", job_id, "--runs-dir", str(tmp_path / "runs"), *floor, *extra],
        capture_output=True, text=True, timeout=timeout, cwd=tmp_path,
        env={**os.environ, "COLUMNS": "200"},
    )


def leftover_processes(job_id: str) -> list[str]:
    """Command lines of processes that still mention this job id (party processes, JVMs)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if job_id in cmdline and "pytest" not in cmdline:
            found.append(f"{proc.name}: {cmdline[:200]}")
    return found
