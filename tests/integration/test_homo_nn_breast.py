"""The horizontal breast job end to end: two client processes and an arbiter, real gRPC,
Spark reading each client's table, torch training, pairwise-masked aggregation.

One run serves several checks: test accuracy against centralised training of the
same network for the same number of epochs, the per-round record, and what
crossed the wire into the arbiter (a recording tap at every gateway).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from cli_helpers import leftover_processes, run_cli

pytest.importorskip("torch")

pytestmark = pytest.mark.integration

JOB_ID = "it-homo-breast"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("homo")
    job = yaml.safe_load((REPO / "jobs" / "homo_nn_breast.yaml").read_text())
    job["debug"] = {"record_gradients": True}
    # Relative data/ paths that do not exist yet: the run generates the homo split first.
    proc = run_cli(tmp, job, JOB_ID, "--tap-dir", str(tmp / "tap"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "generated example table data/breast_homo_guest.csv" in proc.stderr
    return {"tmp": tmp, "job": job, "proc": proc, "run_dir": tmp / "runs" / JOB_ID, "tap": tmp / "tap"}


def _read(run_dir: Path, folder: str, name: str) -> Any:
    return json.loads((run_dir / folder / name).read_text())


def test_accuracy_matches_centralised_training(finished_run: dict[str, Any], test_data: Path) -> None:
    import torch

    from fedspark.algorithms.homo_nn import ArrayRows, HomoNNParams, LocalTrainer

    torch.set_num_threads(1)
    params = HomoNNParams.model_validate(finished_run["job"]["params"])
    frames = [pd.read_csv(test_data / f"breast_homo_{name}.csv") for name in ("guest", "host")]
    train, test = pd.concat(frames), pd.read_csv(test_data / "breast_homo_test.csv")
    features = [f"x{j}" for j in range(30)]
    central = params.model_copy(update={"local_epochs": params.rounds * params.local_epochs})
    trainer = LocalTrainer(ArrayRows(train[features].to_numpy(), train["y"].to_numpy(dtype=np.float64)), central)
    weights = trainer.train(trainer.initial_weights(), 0).weights
    scores = trainer.predict(weights, test[features].to_numpy())
    baseline = float(np.mean((scores >= 0.5) == (test["y"].to_numpy() == 1)))
    for folder in ("guest-9999", "host-10000"):
        metrics = _read(finished_run["run_dir"], folder, "metrics.json")
        assert metrics["n"] == len(test)
        assert metrics["accuracy"] >= baseline - 0.02, (folder, metrics["accuracy"], baseline)
        assert metrics["accuracy"] >= 0.9


def test_rounds_are_recorded_and_reported(finished_run: dict[str, Any]) -> None:
    rounds = _read(finished_run["run_dir"], "arbiter-10001", "rounds.json")
    assert [r["round"] for r in rounds] == list(range(10))
    for record in rounds:
        assert sorted(record["selected"]) == record["reported"] == ["10000", "9999"]
        assert record["late"] == [] and record["dropped"] == [] and record["seconds"] > 0
    assert rounds[-1]["loss"] < rounds[0]["loss"]
    assert finished_run["proc"].stderr.count("round ") >= 10  # one progress line per round
    guest = _read(finished_run["run_dir"], "guest-9999", "model.json")
    host = _read(finished_run["run_dir"], "host-10000", "model.json")
    assert guest["weights"] == host["weights"] and len(guest["feature_names"]) == 30


def test_arbiter_never_receives_a_plaintext_update(finished_run: dict[str, Any]) -> None:
    tap = finished_run["tap"]
    inbox = b"".join(p.read_bytes() for p in (tap / "arbiter-10001").rglob("*.bin"))
    assert any("masked" in p.name for p in (tap / "arbiter-10001").rglob("*.bin"))
    frac_bits = finished_run["job"]["params"]["secure"]["frac_bits"]
    checked = 0
    for folder in ("guest-9999", "host-10000"):
        recorded = _read(finished_run["run_dir"], folder, "updates.json")
        n = recorded["n_samples"]
        for update in recorded["updates"]:
            w = np.asarray(update)
            forms = [w, w * n, np.round(w * n * 2.0**frac_bits).astype(np.int64)]
            for form in forms:
                for start in range(0, 64, 16):  # several 3-value windows of each form
                    assert form[start : start + 3].tobytes() not in inbox
                    checked += 1
    assert checked >= 2 * 10 * 3 * 4
    # Positive control: the same search finds the global model in a client's inbox.
    final = np.asarray(_read(finished_run["run_dir"], "guest-9999", "model.json")["weights"])
    client_inbox = b"".join(p.read_bytes() for p in (tap / "guest-9999").rglob("*.bin"))
    assert final[:3].tobytes() in client_inbox


def test_no_process_left_behind(finished_run: dict[str, Any]) -> None:
    assert leftover_processes(JOB_ID) == []


def test_clients_authenticated_each_other_with_certified_keys_over_mtls(finished_run: dict[str, Any]) -> None:
    """`fedspark run` gives every party a certificate carrying its sealing key: the masked rounds' keys were
    MAC'd under certified pair keys, and every party travelled over mTLS (issue 20)."""
    for folder in ("guest-9999", "host-10000"):
        metrics = _read(finished_run["run_dir"], folder, "metrics.json")
        assert metrics["secure"] == "masking"
        assert metrics["client_keys"].startswith("pair keys, certified"), metrics["client_keys"]
    for folder in ("guest-9999", "host-10000", "arbiter-10001"):
        assert _read(finished_run["run_dir"], folder, "metrics.json")["transport"] == "mtls"
    assert not list((finished_run["run_dir"] / "certs").rglob("*.key")), "a private key outlived the run"
