"""`fedspark predict`: score a table with a trained vertical model, real party processes.

Bad tables met during scoring (repeated ids, a value found late) are checked party by party in
tests/engine/test_predict_parties.py, where each party's own message can be read.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from cli_helpers import FEDSPARK, breast_job, leftover_processes, run_cli

pytestmark = pytest.mark.integration

TRAIN_ID = "it-train-for-predict"


def _predict(tmp: Path, job: dict[str, Any], job_id: str, *extra: str) -> subprocess.CompletedProcess[str]:
    job_file = tmp / f"{job_id}.yaml"
    job_file.write_text(yaml.safe_dump(job))
    return subprocess.run(
        [*FEDSPARK, "predict", str(job_file), "--job-id", job_id, "--runs-dir", "runs", *extra],  # relative, as users type it
        capture_output=True, text=True, timeout=900, cwd=tmp, env={**os.environ, "COLUMNS": "200"},
    )


def _scoring_job(data: Path, host_table: Path | None = None, **scoring: Any) -> dict[str, Any]:
    return {
        "name": "predict_breast_test",
        "algorithm": "hetero_lr_predict",
        "parties": {
            "guest": {"party_id": "9999",
                      "data": {"uri": str(data / "breast_hetero_guest.csv"), "label_column": "y"}},
            "hosts": [{"party_id": "10000", "data": {"uri": str(host_table or data / "breast_hetero_host.csv")}}],
        },
        "scoring": {"model_job_id": TRAIN_ID, **scoring},
        "align": "same_ids",
        "federation": {"timeout_s": 240},
        "spark": {"spark.master": "local[1]", "spark.driver.memory": "512m"},
    }


@pytest.fixture(scope="module")
def trained(test_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("predict")
    job = breast_job(test_data, params={"max_iter": 3, "early_stop": False, "seed": 5},
                     features={"scale": "standard"}, federation={"timeout_s": 240})
    # The guest also keeps its model under a file:// URI: written and later read through Spark's
    # Hadoop FileSystem API, the code path of hdfs://.
    job["parties"]["guest"]["model_dir"] = f"file://{tmp}/models/guest"
    proc = run_cli(tmp, job, TRAIN_ID)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return tmp


def test_scores_equal_the_models_applied_to_the_joined_table(trained: Path, test_data: Path) -> None:
    proc = _predict(trained, _scoring_job(test_data), "it-predict", "--tap-dir", str(trained / "tap"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert leftover_processes("it-predict") == []
    run = trained / "runs" / "it-predict"
    guest_metrics = json.loads((run / "guest-9999" / "metrics.json").read_text())
    host_metrics = json.loads((run / "host-10000" / "metrics.json").read_text())
    assert guest_metrics["scored_rows"] == host_metrics["scored_rows"] == 569
    assert guest_metrics["unmatched_rows"] == host_metrics["unmatched_rows"] == 0
    assert "scores.parquet" in proc.stdout.replace("\n", "")

    scores = pq.read_table(run / "guest-9999" / "scores.parquet").to_pandas()
    assert list(scores.columns) == ["id", "score", "predicted_label", "label"]
    assert sorted(scores["id"].astype(int)) == sorted(pd.read_csv(test_data / "breast_hetero_guest.csv")["id"])

    # Expected: each party's saved model and transform applied to its own columns, summed.
    guest = pd.read_csv(test_data / "breast_hetero_guest.csv").set_index("id")
    host = pd.read_csv(test_data / "breast_hetero_host.csv").set_index("id")
    u = np.zeros(len(scores))
    ids = scores["id"].astype(int).to_numpy()
    for folder, table in (("guest-9999", guest), ("host-10000", host)):
        model = json.loads((trained / "runs" / TRAIN_ID / folder / "model.json").read_text())
        transform = json.loads((trained / "runs" / TRAIN_ID / folder / "transforms.json").read_text())
        x = (table.loc[ids, model["feature_names"]].to_numpy() - transform["centre"]) / transform["scale"]
        u += x @ np.asarray(model["weights"]) + (model["intercept"] or 0.0)
    np.testing.assert_allclose(scores["score"].to_numpy(), 1 / (1 + np.exp(-u)), rtol=1e-9)
    np.testing.assert_array_equal(scores["label"].to_numpy(), guest.loc[ids, "y"].to_numpy())
    assert guest_metrics["auc"] > 0.97

    # The host's weights and features never reached the guest: only partial scores did.
    received = b"".join(p.read_bytes() for p in (trained / "tap" / "guest-9999").rglob("*.bin"))
    assert received
    host_model = json.loads((trained / "runs" / TRAIN_ID / "host-10000" / "model.json").read_text())
    for value in [*host_model["weights"], *host.iloc[:50, 0].tolist()]:
        assert np.float64(value).tobytes() not in received


def test_differing_id_sets_stop_scoring_with_a_clear_error(trained: Path, test_data: Path) -> None:
    host = pd.read_csv(test_data / "breast_hetero_host.csv").iloc[:500]
    host.to_csv(trained / "host_500.csv", index=False)
    proc = _predict(trained, _scoring_job(test_data, trained / "host_500.csv"), "it-predict-mismatch")
    assert proc.returncode != 0
    assert "host #0 has 500 ids, guest has 569" in proc.stdout + proc.stderr
    assert leftover_processes("it-predict-mismatch") == []


def test_an_existing_output_is_refused_before_any_table_is_read(trained: Path, test_data: Path) -> None:
    (trained / "taken").mkdir(exist_ok=True)
    (trained / "taken" / "part-0.parquet").write_bytes(b"earlier scores")
    proc = _predict(trained, _scoring_job(test_data, output=str(trained / "taken")), "it-predict-taken")
    out = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode != 0
    assert f"scoring output {trained / 'taken'} already exists" in out
    assert (trained / "taken" / "part-0.parquet").read_bytes() == b"earlier scores"  # nothing lost
    assert leftover_processes("it-predict-taken") == []


def test_missing_model_names_the_party_and_the_folder(trained: Path, test_data: Path) -> None:
    proc = _predict(trained, _scoring_job(test_data) | {"scoring": {"model_job_id": "nope"}},
                    "it-predict-nomodel")
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "has no model.json in" in out and "nope" in out
    assert leftover_processes("it-predict-nomodel") == []


def test_a_model_uri_without_a_model_names_the_party_and_the_uri(trained: Path, test_data: Path) -> None:
    job = _scoring_job(test_data)
    job["parties"]["guest"]["model_dir"] = f"file://{trained}/models/nowhere"
    proc = _predict(trained, job, "it-predict-nouri")
    assert proc.returncode != 0
    out = " ".join((proc.stdout + proc.stderr).split())  # rich wraps long lines
    assert f"guest:9999 has no model.json in file://{trained}/models/nowhere (no such file)" in out
    assert leftover_processes("it-predict-nouri") == []


def test_psi_scores_the_intersection_and_counts_what_had_no_match(trained: Path, test_data: Path) -> None:
    host = pd.read_csv(test_data / "breast_hetero_host.csv").iloc[:500]
    host.to_csv(trained / "host_500_psi.csv", index=False)
    job = _scoring_job(test_data, trained / "host_500_psi.csv") | {"align": "psi"}
    job["parties"]["guest"]["model_dir"] = f"file://{trained}/models/guest"  # the copy training wrote by URI
    assert (trained / "models" / "guest" / "model.json").read_bytes() == (
        trained / "runs" / TRAIN_ID / "guest-9999" / "model.json").read_bytes()
    proc = _predict(trained, job, "it-predict-psi")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run = trained / "runs" / "it-predict-psi"
    guest = json.loads((run / "guest-9999" / "metrics.json").read_text())
    host_metrics = json.loads((run / "host-10000" / "metrics.json").read_text())
    assert (guest["own_rows"], guest["scored_rows"], guest["unmatched_rows"]) == (569, 500, 69)
    assert guest["model"] == f"file://{trained}/models/guest"
    assert (host_metrics["own_rows"], host_metrics["scored_rows"], host_metrics["unmatched_rows"]) == (500, 500, 0)
    scores = pq.read_table(run / "guest-9999" / "scores.parquet").to_pandas()
    assert sorted(scores["id"].astype(int)) == sorted(host["id"])
    assert leftover_processes("it-predict-psi") == []
