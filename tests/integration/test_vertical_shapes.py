"""Vertical jobs in the shapes users run: two hosts, and feature steps before training.

Real party processes over real gRPC (the CLI), small keys, few epochs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from cli_helpers import breast_job, leftover_processes, run_cli

pytestmark = pytest.mark.integration

HOST_COLUMNS = [f"x{i}" for i in range(20)]
FIXED = {"max_iter": 5, "early_stop": False, "seed": 11}
PATIENT = {"timeout_s": 240}  # shared 2-core machines: reading and fitting may be slow


def _read(run_dir: Path, folder: str, name: str) -> Any:
    return json.loads((run_dir / folder / name).read_text())


def _two_hosts(data: Path) -> dict[str, Any]:
    host = str(data / "breast_hetero_host.csv")
    return {
        "guest": {"party_id": "9999", "data": {"uri": str(data / "breast_hetero_guest.csv"), "label_column": "y"}},
        "hosts": [
            {"party_id": "10000", "data": {"uri": host, "feature_columns": HOST_COLUMNS[:10]}},
            {"party_id": "10002", "data": {"uri": host, "feature_columns": HOST_COLUMNS[10:]}},
        ],
        "arbiter": {"party_id": "10001"},
    }


def test_two_hosts_train_the_same_model_as_one_host(test_data: Path, tmp_path: Path) -> None:
    one = breast_job(test_data, federation=PATIENT, params=FIXED)
    two = breast_job(test_data, federation=PATIENT, params=FIXED, parties=_two_hosts(test_data))
    runs = {}
    for job_id, job in (("it-one-host", one), ("it-two-hosts", two)):
        proc = run_cli(tmp_path, job, job_id)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert leftover_processes(job_id) == []
        runs[job_id] = tmp_path / "runs" / job_id

    auc_one = _read(runs["it-one-host"], "guest-9999", "metrics.json")["auc"]
    auc_two = _read(runs["it-two-hosts"], "guest-9999", "metrics.json")["auc"]
    assert abs(auc_one - auc_two) <= 0.005, (auc_one, auc_two)
    # The protocol is the same sum u = u_g + Σ u_h: the two hosts' weights are the
    # one host's weights, split by column (up to fixed-point rounding).
    w_one = _read(runs["it-one-host"], "host-10000", "model.json")
    first = _read(runs["it-two-hosts"], "host-10000", "model.json")
    second = _read(runs["it-two-hosts"], "host-10002", "model.json")
    assert first["feature_names"] == HOST_COLUMNS[:10] and second["feature_names"] == HOST_COLUMNS[10:]
    np.testing.assert_allclose(first["weights"] + second["weights"], w_one["weights"], atol=1e-3)
    assert sorted(p.name for p in runs["it-two-hosts"].iterdir()) == [
        "arbiter-10001", "certs", "guest-9999", "host-10000", "host-10002", "sealing"  # the run's certificates
        # and the parties' public sealing keys
    ]


def test_fill_and_scale_run_on_each_party_and_stay_there(test_data: Path, tmp_path: Path) -> None:
    """A host table with gaps trains once the job fills and scales; its statistics never cross the wire."""
    host = pd.read_csv(test_data / "breast_hetero_host.csv")
    rng = np.random.default_rng(3)
    gaps = host.copy()
    for column in ("x0", "x5", "x17"):
        gaps.loc[rng.choice(len(gaps), 40, replace=False), column] = np.nan
    gaps["x3"] = gaps["x3"] * 1000.0 + 7.0  # a column on another scale
    gaps.to_csv(tmp_path / "host_gaps.csv", index=False)
    job = breast_job(test_data, federation=PATIENT, params=FIXED, features={"fill": "mean", "scale": "standard"})
    job["parties"]["hosts"][0]["data"]["uri"] = str(tmp_path / "host_gaps.csv")

    proc = run_cli(tmp_path, job, "it-features", "--tap-dir", str(tmp_path / "tap"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_dir = tmp_path / "runs" / "it-features"
    assert _read(run_dir, "guest-9999", "metrics.json")["auc"] >= 0.98

    saved = _read(run_dir, "host-10000", "transforms.json")
    assert saved["columns"] == HOST_COLUMNS and saved["steps"] == {"fill": "mean", "scale": "standard"}
    means = gaps[HOST_COLUMNS].mean()  # pandas skips NaN: the fill value
    np.testing.assert_allclose(saved["fill"], means.to_numpy(), rtol=1e-9, atol=1e-9)
    filled = gaps[HOST_COLUMNS].fillna(means)
    np.testing.assert_allclose(saved["centre"], filled.mean().to_numpy(), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(saved["scale"], filled.std(ddof=0).to_numpy(), rtol=1e-9)
    assert _read(run_dir, "guest-9999", "transforms.json")["columns"] == [f"x{i}" for i in range(10)]

    # The host's statistics are its own: none of them reaches another party's gateway.
    received = b"".join(p.read_bytes() for p in (tmp_path / "tap").glob("guest-9999/**/*") if p.is_file())
    received += b"".join(p.read_bytes() for p in (tmp_path / "tap").glob("arbiter-10001/**/*") if p.is_file())
    assert received, "the tap recorded nothing"
    stat = float(saved["centre"][3])  # x3's mean, about 1000x the others
    for encoding in (np.float64(stat).tobytes(), np.float64(stat).byteswap().tobytes(), repr(stat).encode()):
        assert encoding not in received
    assert leftover_processes("it-features") == []


def test_missing_values_without_a_fill_step_name_party_file_and_column(test_data: Path, tmp_path: Path) -> None:
    host = pd.read_csv(test_data / "breast_hetero_host.csv")
    host.loc[5, "x7"] = np.nan
    host.to_csv(tmp_path / "host_gap.csv", index=False)
    job = breast_job(test_data, federation=PATIENT, params=FIXED)
    job["parties"]["hosts"][0]["data"]["uri"] = str(tmp_path / "host_gap.csv")
    proc = run_cli(tmp_path, job, "it-gap")
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "host:10000" in out and "host_gap.csv" in out and "x7" in out and "features.fill" in out
    assert leftover_processes("it-gap") == []


def test_psi_trains_on_exactly_the_intersection(test_data: Path, tmp_path: Path) -> None:
    """The host holds 80% of the guest's ids plus ids the guest does not have."""
    host = pd.read_csv(test_data / "breast_hetero_host.csv")
    rng = np.random.default_rng(8)
    kept = host.sample(frac=0.8, random_state=8)
    extra = kept.head(60).copy()
    extra["id"] = rng.choice(np.arange(100_000, 200_000), 60, replace=False)
    pd.concat([kept, extra]).sample(frac=1.0, random_state=1).to_csv(tmp_path / "host_partial.csv", index=False)
    job = breast_job(test_data, federation=PATIENT, params=FIXED, align="psi")
    job["parties"]["hosts"][0]["data"]["uri"] = str(tmp_path / "host_partial.csv")

    proc = run_cli(tmp_path, job, "it-psi-train")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_dir = tmp_path / "runs" / "it-psi-train"
    guest = _read(run_dir, "guest-9999", "metrics.json")
    host_metrics = _read(run_dir, "host-10000", "metrics.json")
    overlap = len(kept)
    assert guest["n_rows"] == host_metrics["n_rows"] == overlap
    assert (guest["own_ids"], guest["matched"], guest["unmatched"]) == (569, overlap, 569 - overlap)
    assert (host_metrics["own_ids"], host_metrics["matched"], host_metrics["unmatched"]) == (overlap + 60, overlap, 60)
    assert guest["auc"] >= 0.97
    assert leftover_processes("it-psi-train") == []


def test_default_credit_with_psi_and_scaling_matches_centralised_logistic_regression(
    test_data: Path, tmp_path: Path
) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.preprocessing import StandardScaler

    repo_job = yaml.safe_load((Path(__file__).resolve().parents[2] / "jobs" / "hetero_lr_default_credit.yaml").read_text())
    for role, name in (("guest", "default_credit_hetero_guest.csv"),):
        repo_job["parties"][role]["data"]["uri"] = str(test_data / name)
    repo_job["parties"]["hosts"][0]["data"]["uri"] = str(test_data / "default_credit_hetero_host.csv")
    repo_job["security"] = {"key_size": 1024}
    repo_job["params"]["seed"] = 3
    repo_job["spark"] = {"spark.master": "local[1]", "spark.driver.memory": "768m"}
    assert repo_job["align"] == "psi" and repo_job["features"]["scale"] == "standard"

    proc = run_cli(tmp_path, repo_job, "it-default-credit")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    metrics = _read(tmp_path / "runs" / "it-default-credit", "guest-9999", "metrics.json")

    guest = pd.read_csv(test_data / "default_credit_hetero_guest.csv")
    host = pd.read_csv(test_data / "default_credit_hetero_host.csv")
    joined = guest.merge(host, on="id")
    x = StandardScaler().fit_transform(joined.drop(columns=["id", "y"]).to_numpy())
    baseline = roc_auc_score(joined["y"], LogisticRegression(max_iter=1000).fit(x, joined["y"]).predict_proba(x)[:, 1])
    assert metrics["matched"] == len(joined) == metrics["n_rows"]
    assert metrics["auc"] >= baseline - 0.01, (metrics["auc"], baseline)
    assert leftover_processes("it-default-credit") == []


def test_two_hosts_stop_early_on_the_change_of_the_weights(test_data: Path, tmp_path: Path) -> None:
    """Without a loss (two hosts) the arbiter stops on the relative change of the whole weight vector."""
    params = {"max_iter": 10, "early_stop": True, "tol": 0.11, "seed": 7}  # about 0.12, 0.097 at epochs 3, 4
    job = breast_job(test_data, federation=PATIENT, params=params, parties=_two_hosts(test_data))
    proc = run_cli(tmp_path, job, "it-two-hosts-stop")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert leftover_processes("it-two-hosts-stop") == []
    run_dir = tmp_path / "runs" / "it-two-hosts-stop"
    arbiter = _read(run_dir, "arbiter-10001", "metrics.json")
    assert arbiter["converged"] is True and arbiter["epochs"] < params["max_iter"]
    assert arbiter["loss_history"] == [None] * arbiter["epochs"]  # no loss: only the weights could stop it
    assert arbiter["convergence"] == "weights" and arbiter["relative_change"] < params["tol"]
    for party in ("guest-9999", "host-10000", "host-10002"):
        metrics = _read(run_dir, party, "metrics.json")
        assert (metrics["converged"], metrics["epochs"]) == (True, arbiter["epochs"]), party
