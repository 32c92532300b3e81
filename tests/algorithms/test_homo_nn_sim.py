"""Simulation: virtual clients trained as Spark tasks must compute exactly what the same
clients compute in one process, with the real arbiter; masked simulated rounds agree with
plain ones to within the quantisation bound."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fedspark.algorithms.homo_nn import (  # noqa: E402
    ArrayRows,
    HomoNNParams,
    LocalTrainer,
    Simulation,
    SimulationSettings,
    fedavg,
    select_clients,
)
from fedspark.storage import TableSpec  # noqa: E402


def _params(**overrides: Any) -> HomoNNParams:
    base: dict[str, Any] = {"network": {"learning_rate": 0.1}, "rounds": 2, "batch_size": 8, "seed": 3,
                            "selection": {"fraction": 0.5, "min_clients": 3, "seed": 2}, "secure": {"mode": "none"}}
    return HomoNNParams.model_validate({**base, **overrides})


def _sim(test_data: Path) -> SimulationSettings:
    table = TableSpec(uri=str(test_data / "breast_homo_guest.csv"), label_column="y")
    return SimulationSettings(clients=8, data=table, dirichlet_alpha=0.5, seed=1, partitions=2)


def test_spark_tasks_train_like_in_process_clients(spark: Any, test_data: Path) -> None:
    torch.set_num_threads(1)
    params = _params()
    simulation = Simulation(spark, _sim(test_data), params, "sim-test", timeout_s=120)
    result = simulation.run()
    assert [len(r["reported"]) for r in result.rounds] == [4, 4]
    assert sum(result.client_rows) == 227 and min(result.client_rows) >= 2

    # The same rounds in this process: same split, same selection, same trainer, same FedAvg.
    import pandas as pd

    table = pd.read_csv(test_data / "breast_homo_guest.csv").sort_values("id", key=lambda s: s.astype(str))
    x, y = table[[f"x{j}" for j in range(30)]].to_numpy(), table["y"].to_numpy(dtype=np.float64)
    w = simulation.initial
    ids = [f"c{i:04d}" for i in range(8)]
    for round_no in range(params.rounds):
        chosen = [ids.index(c) for c in select_clients(ids, params.selection, round_no)]
        outs = [LocalTrainer(ArrayRows(x[simulation.owner == c], y[simulation.owner == c]), params).train(w, round_no)
                for c in chosen]
        w = fedavg([o.weights for o in outs], [o.n_samples for o in outs])
    np.testing.assert_allclose(result.weights, w, rtol=0, atol=1e-12)


def test_masked_simulated_rounds_match_plain_ones(spark: Any, test_data: Path) -> None:
    torch.set_num_threads(1)
    plain = Simulation(spark, _sim(test_data), _params(), "sim-plain", timeout_s=120).run()
    masked = Simulation(spark, _sim(test_data), _params(secure={"mode": "masking"}), "sim-masked", timeout_s=120).run()
    assert [r["reported"] for r in masked.rounds] == [r["reported"] for r in plain.rounds]
    assert masked.weights is not None and plain.weights is not None
    assert np.max(np.abs(masked.weights - plain.weights)) < 1e-5


def test_packed_paillier_simulated_rounds_match_plain_ones(spark: Any, test_data: Path) -> None:
    """Clients encrypt in their Spark tasks; the arbiter only adds ciphertexts; the model the
    clients decrypt equals plain FedAvg to within the packing's quantisation."""
    torch.set_num_threads(1)
    plain = Simulation(spark, _sim(test_data), _params(), "sim-plain-p", timeout_s=120).run()
    secure = {"mode": "paillier", "key_size": 1024, "allow_insecure_key_size": True}
    sealed = Simulation(spark, _sim(test_data), _params(secure=secure), "sim-paillier", timeout_s=120).run()
    assert [r["reported"] for r in sealed.rounds] == [r["reported"] for r in plain.rounds]
    assert all("loss" not in r for r in sealed.rounds)  # the arbiter cannot read the aggregate
    assert sealed.weights is not None and plain.weights is not None
    assert np.max(np.abs(sealed.weights - plain.weights)) < 1e-5
