"""Scoring with a homo_nn model as a Spark job: the Parquet scores equal in-process scoring."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")


def test_predict_writes_the_scores_of_the_model(spark: Any, test_data: Path, tmp_path: Path) -> None:
    from fedspark.algorithms.homo_nn import ArrayRows, HomoNNParams, LocalTrainer, predict_table
    from fedspark.common import ConfigError

    torch.set_num_threads(1)
    train = pd.read_csv(test_data / "breast_homo_guest.csv")
    names = [f"x{j}" for j in range(30)]
    params = HomoNNParams.model_validate({"network": {"layers": [{"units": 4}]}, "local_epochs": 3, "seed": 2})
    trainer = LocalTrainer(ArrayRows(train[names].to_numpy(), train["y"].to_numpy(dtype=np.float64)), params)
    weights = trainer.train(trainer.initial_weights(), 0).weights
    model = tmp_path / "model.json"
    model.write_text(json.dumps({"algorithm": "homo_nn", "network": params.network.model_dump(), "seed": 2,
                                 "feature_names": names, "weights": weights.tolist()}))

    result = predict_table(spark, model, str(test_data / "breast_homo_test.csv"), tmp_path / "scores")
    scores = pd.read_parquet(tmp_path / "scores").sort_values("id", key=lambda s: s.astype(int))
    test = pd.read_csv(test_data / "breast_homo_test.csv").sort_values("id")
    assert result["rows"] == len(test) == len(scores)
    assert list(scores.columns) == ["id", "score", "prediction"]
    expected = trainer.predict(weights, test[names].to_numpy())
    np.testing.assert_allclose(scores["score"].to_numpy(), expected, rtol=0, atol=1e-12)
    assert set(scores["prediction"]) <= {0.0, 1.0}
    assert np.mean(scores["prediction"].to_numpy() == test["y"].to_numpy()) > 0.85

    model.write_text(json.dumps({"algorithm": "hetero_lr"}))
    with pytest.raises(ConfigError, match="not a homo_nn model"):
        predict_table(spark, model, str(test_data / "breast_homo_test.csv"), tmp_path / "scores2")
