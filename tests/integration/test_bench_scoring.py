"""`fedspark bench scoring` at a tiny size: one JSON object, federated scores equal plaintext ones."""

from __future__ import annotations

import json
import subprocess

import pytest
from cli_helpers import FEDSPARK

pytestmark = pytest.mark.integration


def test_bench_scoring_prints_one_json_object_with_agreeing_scores() -> None:
    proc = subprocess.run([*FEDSPARK, "bench", "scoring", "--rows", "20000", "--memory", "512m"],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout)
    assert {"bench", "params", "results", "baseline", "ratio", "target", "meets_target"} <= result.keys()
    assert result["bench"] == "scoring" and result["params"]["rows"] == 20000
    federated, plaintext = result["results"]["federated"], result["results"]["plaintext_joined"]
    assert federated["unit"] == plaintext["unit"] == "rows/s" and federated["rate"] > 0 and plaintext["rate"] > 0
    assert result["ratio"] == pytest.approx(federated["rate"] / plaintext["rate"])
    agreement = result["results"]["agreement"]
    assert agreement["sample_ids_found"] and agreement["max_abs_score_diff_sample"] < 1e-9
    common = {"phase_load_model_s", "phase_salt_s", "phase_read_s", "phase_align_s"}
    assert set(result["results"]["guest_phases_s"]) == common | {"phase_score_and_write_s"}
    assert set(result["results"]["host_phases_s"]) == common | {"phase_score_and_send_s"}
