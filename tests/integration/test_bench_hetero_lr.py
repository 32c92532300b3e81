"""`fedspark bench hetero-lr` at a toy size: one JSON object with the agreed keys,
from real party processes reading Parquet tables."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_bench_prints_one_json_object(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "from fedspark.engine.cli import main; main()", "bench", "hetero-lr",
         "--rows", "1500", "--guest-features", "3", "--host-features", "4", "--bits", "1024",
         "--batch-size", "500", "--compute", "driver"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert {"bench", "params", "results", "baseline", "ratio", "target", "meets_target"} <= result.keys()
    assert result["bench"] == "hetero-lr" and result["params"]["insecure_key_size"] is True
    assert result["results"]["fedspark_epoch"]["rate"] > 0
    assert 0.5 < result["results"]["fedspark_train_auc"]["rate"] <= 1.0
    assert result["baseline"]["phe_epoch"]["estimated_from_slice"] is True
    assert result["ratio"] == pytest.approx(
        result["baseline"]["phe_epoch"]["rate"] / result["results"]["fedspark_epoch"]["rate"]
    )
    assert isinstance(result["meets_target"], bool)


def test_bench_scale_reports_throughput_and_driver_memory_per_party(tmp_path: Path) -> None:
    """``--scale`` at a toy size: the executor path on two table sizes and the driver path, one JSON object."""
    proc = subprocess.run(
        [sys.executable, "-c", "from fedspark.engine.cli import main; main()", "bench", "hetero-lr", "--scale",
         "--rows", "1200", "--scale-factor", "2", "--guest-features", "3", "--host-features", "4",
         "--bits", "1024", "--batch-size", "400"],
        capture_output=True, text=True, timeout=900, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert {"bench", "params", "results", "baseline", "ratio", "target", "meets_target", "rss_growth"} <= result.keys()
    assert result["params"]["large_rows"] == 2400
    large, small = result["results"]["executors_large"], result["results"]["executors_small"]
    driver = result["baseline"]["driver_small"]
    assert result["ratio"] == pytest.approx(large["rate"] / driver["rate"])
    for run, compute in ((large, "executors"), (small, "executors"), (driver, "driver")):
        assert run["rate"] > 0 and 0.5 < run["auc"] <= 1.0
        for party in ("guest:9999", "host:10000"):
            assert run["parties"][party]["compute"] == compute
            assert run["parties"][party]["python_mib"] > 0 and run["parties"][party]["jvm_mib"] > 0
    assert result["rss_growth"] > 0 and isinstance(result["meets_target"], bool)
