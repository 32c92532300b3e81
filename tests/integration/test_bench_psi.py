"""`fedspark bench psi` at a toy size: one JSON object with the agreed keys and a consistent ratio."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_bench_psi_prints_one_json_object(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "from fedspark.engine.cli import main; main()", "bench", "psi",
         "--rows", "400", "--overlap", "0.25", "--partitions", "2", "--rate-seconds", "0.2"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert {"bench", "params", "results", "baseline", "ratio", "target", "meets_target"} <= result.keys()
    assert result["bench"] == "psi" and result["params"]["rows_per_party"] == 400
    assert result["results"]["matched"]["rate"] == 100
    psi = result["results"]["psi"]
    assert psi["seconds"] > 0 and psi["rate"] == pytest.approx(400 / psi["seconds"])
    baseline = result["baseline"]
    t_hash, t_mult = 1 / baseline["hash_to_group"]["rate"], 1 / baseline["scalarmult"]["rate"]
    assert baseline["limit_s"] == pytest.approx(400 * (t_hash + 2 * t_mult))
    assert result["ratio"] == pytest.approx(baseline["limit_s"] / psi["seconds"])
    assert result["target"]["ratio"] == 0.75 and isinstance(result["meets_target"], bool)
