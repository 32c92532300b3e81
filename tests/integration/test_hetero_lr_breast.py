"""The breast job end to end: three real party processes, real gRPC, Paillier, Spark.

One run serves several checks: AUC against a centralised baseline, what each
party wrote, and what crossed the wire (a recording tap at every gateway).
"""

from __future__ import annotations

import json
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from cli_helpers import breast_job, leftover_processes, run_cli
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler

pytestmark = pytest.mark.integration

JOB_ID = "it-breast"


@pytest.fixture(scope="module")
def finished_run(test_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("breast")
    # Relative paths under data/ that do not exist yet: the run generates the example
    # tables first (they equal the public ones, which the checks below read).
    job = breast_job(Path("data"), examples="breast", debug={"record_gradients": True})
    proc = run_cli(tmp, job, JOB_ID, "--tap-dir", str(tmp / "tap"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "generated example table data/breast_hetero_guest.csv" in proc.stderr
    return {"tmp": tmp, "proc": proc, "run_dir": tmp / "runs" / JOB_ID, "tap": tmp / "tap"}


def _read(run_dir: Path, folder: str, name: str) -> Any:
    return json.loads((run_dir / folder / name).read_text())


def test_auc_matches_centralised_logistic_regression(finished_run: dict[str, Any], test_data: Path) -> None:
    guest = pd.read_csv(test_data / "breast_hetero_guest.csv")
    host = pd.read_csv(test_data / "breast_hetero_host.csv")
    joined = guest.merge(host, on="id", suffixes=("_g", "_h"))
    x = StandardScaler().fit_transform(joined.drop(columns=["id", "y"]).to_numpy())
    baseline = roc_auc_score(joined["y"], LogisticRegression(max_iter=1000).fit(x, joined["y"]).predict_proba(x)[:, 1])
    metrics = _read(finished_run["run_dir"], "guest-9999", "metrics.json")
    assert metrics["auc"] >= baseline - 0.01, (metrics["auc"], baseline)
    assert metrics["auc"] >= 0.98
    assert 0 < metrics["ks"] <= 1 and 0.5 < metrics["accuracy"] <= 1
    losses = metrics["loss_history"]
    assert len(losses) == metrics["epochs"] and losses[-1] < losses[0]


def test_each_party_keeps_only_its_own_model(finished_run: dict[str, Any]) -> None:
    run_dir = finished_run["run_dir"]
    assert sorted(p.name for p in run_dir.iterdir()) == ["arbiter-10001", "certs", "guest-9999", "host-10000",
                                                         "sealing"]
    # the run's certificates stay, their private keys do not (the sealing keys stay only because this run
    # records with a tap, whose recordings open only with them)
    assert not list((run_dir / "certs").rglob("*.key"))
    guest = _read(run_dir, "guest-9999", "model.json")
    host = _read(run_dir, "host-10000", "model.json")
    assert len(guest["weights"]) == 10 and guest["intercept"] is not None
    assert len(host["weights"]) == 20 and host["intercept"] is None
    assert not (run_dir / "arbiter-10001" / "model.json").exists()
    guest_text = "".join(p.read_text() for p in (run_dir / "guest-9999").glob("*.json"))
    assert not any(f"{w:.6f}" in guest_text for w in host["weights"] if abs(w) > 1e-3)
    for party in ("guest-9999", "host-10000", "arbiter-10001"):
        assert (run_dir / party / "report.md").read_text().startswith(f"# {JOB_ID}")
        assert _read(run_dir, party, "metrics.json")["insecure_key_size"] is True


def test_cli_reports_and_leaves_no_process(finished_run: dict[str, Any]) -> None:
    assert "guest:9999" in finished_run["proc"].stdout
    assert leftover_processes(JOB_ID) == []


# --- the wire -----------------------------------------------------------------

def _encodings(values: np.ndarray, dtypes: list[str]) -> list[bytes]:
    out = []
    for dtype, order in product(dtypes, "<>"):
        out.append(np.asarray(values).astype(np.dtype(dtype).newbyteorder(order)).tobytes())
    return out


def _windows(column: np.ndarray, width: int) -> list[np.ndarray]:
    return [column[i : i + width] for i in range(0, len(column) - width + 1)]


def _tap_bytes(tap: Path) -> bytes:
    files = [p for p in tap.rglob("*") if p.is_file()]
    assert files, "the tap recorded nothing"
    return b"\x00".join(p.read_bytes() for p in files)


def test_no_host_feature_run_crosses_the_wire(finished_run: dict[str, Any], test_data: Path) -> None:
    wire = _tap_bytes(finished_run["tap"])
    host = pd.read_csv(test_data / "breast_hetero_host.csv")
    for order in (host, host.assign(k=host["id"].astype(str)).sort_values("k")):
        for name in [c for c in host.columns if c != "id"]:
            col = order[name].to_numpy(np.float64)
            for window in _windows(col, 8)[::4]:
                for pattern in _encodings(window, ["f8", "f4"]):
                    assert pattern not in wire, f"8 values of host column {name} crossed the wire"


def test_no_label_run_crosses_the_wire(finished_run: dict[str, Any], test_data: Path) -> None:
    wire = _tap_bytes(finished_run["tap"])
    guest = pd.read_csv(test_data / "breast_hetero_guest.csv")
    for order in (guest, guest.assign(k=guest["id"].astype(str)).sort_values("k")):
        labels = order["y"].to_numpy()
        # Runs like fifteen 0s and one 1 also occur as padding in any binary format;
        # a run with at least four of each class does not occur by chance.
        mixed = [w for w in _windows(labels, 16) if 4 <= w.sum() <= 12]
        assert len(mixed) > 100
        for window in mixed:
            for pattern in _encodings(window, ["f8", "f4", "i8", "i1"]):
                assert pattern not in wire, "16 consecutive labels crossed the wire"


def test_no_weight_or_gradient_vector_crosses_the_wire(finished_run: dict[str, Any]) -> None:
    wire = _tap_bytes(finished_run["tap"])
    run_dir = finished_run["run_dir"]
    vectors = []
    for party in ("guest-9999", "host-10000"):
        model = _read(run_dir, party, "model.json")
        vectors.append(np.asarray(model["weights"]))
        vectors += [np.asarray(g) for g in _read(run_dir, party, "gradients.json")]
    assert len(vectors) > 10
    for vector in vectors:
        for window in _windows(vector, 4):
            for pattern in _encodings(window, ["f8", "f4"]):
                assert pattern not in wire, "a plaintext weight or gradient vector crossed the wire"
