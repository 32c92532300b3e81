"""hetero_lr on the executor path with real party processes: the table stays in Spark.

One run on a synthetic table (guest 10 features + label, host 40, 20,000 rows ≈ 8 MB of
floats per party) with ``spark.driver.maxResultSize`` at 1 MB, so a collect of the table
anywhere on the training path fails the job, and with ``spark.memory.fraction`` so small
that the persisted table cannot fit in storage memory and must spill to disk.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from cli_helpers import breast_job, leftover_processes, run_cli

pytestmark = pytest.mark.integration

ROWS, GUEST_FEATURES, HOST_FEATURES = 20_000, 10, 40
JOB_ID = "it-executors"


def _tables(folder: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((ROWS, GUEST_FEATURES + HOST_FEATURES))
    logits = x @ rng.normal(0, 0.5, x.shape[1])
    y = (rng.random(ROWS) < 1 / (1 + np.exp(-logits))).astype(int)
    ids = rng.permutation(ROWS)  # files in no particular id order
    guest = pd.DataFrame({"id": ids, "y": y, **{f"g{j}": x[:, j] for j in range(GUEST_FEATURES)}})
    host = pd.DataFrame({"id": ids, **{f"h{j}": x[:, GUEST_FEATURES + j] for j in range(HOST_FEATURES)}})
    paths = folder / "guest.csv", folder / "host.csv"
    guest.to_csv(paths[0], index=False)
    host.sample(frac=1.0, random_state=1).to_csv(paths[1], index=False)  # another row order at the host
    return paths


@pytest.fixture(scope="module")
def executor_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("executors")
    guest, host = _tables(tmp)
    job = breast_job(
        tmp,
        parties={
            "guest": {"party_id": "9999", "data": {"uri": str(guest), "label_column": "y"}},
            "hosts": [{"party_id": "10000", "data": {"uri": str(host)}}],
            "arbiter": {"party_id": "10001"},
        },
        params={"max_iter": 1, "batch_size": 2000, "seed": 3, "learning_rate": 0.5, "early_stop": False},
        compute={"backend": "spark", "partitions": 2},
        federation={"timeout_s": 240},
        spark={"spark.driver.maxResultSize": "1m", "spark.memory.fraction": "0.04"},
    )
    proc = run_cli(tmp, job, JOB_ID)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert leftover_processes(JOB_ID) == []
    run_dir = tmp / "runs" / JOB_ID
    return {party: json.loads((run_dir / party / "metrics.json").read_text())
            for party in ("guest-9999", "host-10000", "arbiter-10001")}


def test_the_executor_path_trains_with_no_table_in_the_driver(executor_run: dict[str, Any]) -> None:
    guest, host = executor_run["guest-9999"], executor_run["host-10000"]
    for metrics in (guest, host):
        assert metrics["compute"] == "executors" and metrics["compute_reason"] == "compute.backend: spark"
        assert metrics["n_rows"] == ROWS
    assert guest["n_features"] == GUEST_FEATURES and host["n_features"] == HOST_FEATURES
    assert guest["auc"] > 0.8  # one epoch of 10 batches on a learnable synthetic table
    assert guest["n"] == ROWS


def test_a_table_larger_than_storage_memory_spills_and_finishes(executor_run: dict[str, Any]) -> None:
    """The host's persisted copies (numbered, and sorted for the epoch) are several times its storage memory."""
    host = executor_run["host-10000"]
    assert host["table_disk_bytes"] > 0, host
    assert host["table_memory_bytes"] + host["table_disk_bytes"] > 2 * host["storage_memory_limit_bytes"], host
