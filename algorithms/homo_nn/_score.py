"""Scoring a table with a trained homo_nn model: a pure kernel over Arrow batches.

Runs in Spark executors (``mapInArrow``): each task builds the network from the
model's JSON description once, loads the weights, and scores its batches with
torch over numpy views of the feature columns. Output per row: ``id``,
``score`` (P(y=1) for ``bce``, the class for ``cross_entropy``, the value for
``mse``) and ``prediction``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa

from fedspark.algorithms.homo_nn._errors import NetworkError
from fedspark.algorithms.homo_nn._local import predict
from fedspark.algorithms.homo_nn._network import as_tensor, build_network
from fedspark.algorithms.homo_nn._params import HomoNNParams

SCORE_SCHEMA = "id string, score double, prediction double"


def model_params(model: dict[str, Any]) -> HomoNNParams:
    if model.get("algorithm") != "homo_nn" or "weights" not in model or "feature_names" not in model:
        raise NetworkError("the model file is not a homo_nn model (needs algorithm, network, feature_names, weights)")
    return HomoNNParams.model_validate({"network": model["network"], "seed": model.get("seed", 0)})


def score_kernel(batches: Iterable[pa.RecordBatch], *, model_json: str, threshold: float = 0.5) -> Iterator[pa.RecordBatch]:
    """Score every row of every batch (see the module docstring)."""
    import torch

    torch.set_num_threads(1)
    model = json.loads(model_json)
    params = model_params(model)
    names: list[str] = list(model["feature_names"])
    network = build_network(params.network, len(names), params.seed)
    weights = np.asarray(model["weights"], dtype=np.float64)
    for batch in batches:
        if batch.num_rows == 0:
            continue
        x = np.column_stack([batch.column(name).to_numpy(zero_copy_only=False) for name in names])
        scores = predict(network, weights, as_tensor(np.ascontiguousarray(x, dtype=np.float64)), params)
        labels = (scores >= threshold).astype(np.float64) if params.network.loss == "bce" else scores
        yield pa.RecordBatch.from_arrays(
            [batch.column("id").cast(pa.string()), pa.array(scores), pa.array(labels)],
            names=["id", "score", "prediction"],
        )
