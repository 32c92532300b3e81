"""`fedspark bench scoring` at a tiny size: one JSON object, federated scores equal plaintext ones, one core per party."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import pytest
from cli_helpers import FEDSPARK

pytestmark = pytest.mark.integration

PHASES = {"phase_load_model_s", "phase_salt_s", "phase_read_s", "phase_align_s"}


def _check_federated(figures: dict[str, Any], plaintext: dict[str, Any]) -> None:
    assert figures["unit"] == plaintext["unit"] == "rows/s" and figures["rate"] > 0 and plaintext["rate"] > 0
    assert set(figures["guest_phases_s"]) == PHASES | {"phase_score_and_write_s"}
    assert set(figures["host_phases_s"]) == PHASES | {"phase_score_and_send_s"}
    for party in ("guest:9999", "host:10000"):  # each party's process tree was seen: driver, JVM, Python workers
        assert {"driver", "jvm", "total"} <= figures["cpu_s"][party].keys() and figures["cpu_s"][party]["total"] > 0
    assert plaintext["cpu_s"]["jvm"] > 0


def test_bench_scoring_prints_one_json_object_with_agreeing_scores_and_one_core_per_party() -> None:
    proc = subprocess.run([*FEDSPARK, "bench", "scoring", "--rows", "20000", "--memory", "512m"],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout)
    assert {"bench", "params", "results", "baseline", "ratio", "ratio_two_cores", "target", "meets_target"} <= result.keys()
    assert result["bench"] == "scoring" and result["params"]["rows"] == 20000
    results = result["results"]
    federated, plaintext = results["federated"], results["plaintext_joined"]
    _check_federated(federated, plaintext)
    assert result["ratio_two_cores"] == pytest.approx(federated["rate"] / plaintext["rate"])
    agreement = results["agreement"]
    assert agreement["sample_ids_found"] and agreement["max_abs_score_diff_sample"] < 1e-9
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        assert "needs 2" in results["federated_one_core_per_party"]["skipped"] and result["ratio"] is None
        return
    one, plain_one = results["federated_one_core_per_party"], results["plaintext_joined_one_core"]
    _check_federated(one, plain_one)
    assert result["ratio"] == pytest.approx(one["rate"] / plain_one["rate"])
    # What each pinned process read back from the kernel after its run, and the master it then chose.
    assert one["pinned"] == {"guest:9999": {"cpus": cores[:1], "spark_master": "local[1]"},
                             "host:10000": {"cpus": cores[1:2], "spark_master": "local[1]"}}
    assert plain_one["cpus"] == cores[:1] and plain_one["spark_master"] == "local[1]"
    assert plaintext["cpus"] == cores and plaintext["spark_master"] == "local[2]"
    assert result["baseline"]["plaintext_joined_one_core"]["rate"] == pytest.approx(plain_one["rate"])
