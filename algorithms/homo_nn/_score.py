"""Scoring a table with a trained homo_nn model: :func:`predict_table`, and its pure kernel over Arrow batches.

:func:`predict_table` reads and validates the table with storage (errors name the
file and column), scores it partition by partition in the executors
(:func:`score_kernel` through ``mapInArrow``: torch runs there, not in the
driver) and writes Parquet with columns ``id``, ``score``, ``prediction``.

Runs in Spark executors (``mapInArrow``): each task builds the network from the
model's JSON description once, loads the weights, and scores its batches with
torch over numpy views of the feature columns. Output per row: ``id``,
``score`` (P(y=1) for ``bce``, the class for ``cross_entropy``, the value for
``mse``) and ``prediction``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from fedspark.algorithms.homo_nn._errors import NetworkError
from fedspark.algorithms.homo_nn._local import predict
from fedspark.algorithms.homo_nn._network import as_tensor, build_network
from fedspark.algorithms.homo_nn._params import HomoNNParams

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

SCORE_SCHEMA = "id string, score double, prediction double"


def predict_table(spark: SparkSession, model_path: Path, table_uri: str, out: Path, *, id_column: str = "id",
                  threshold: float = 0.5) -> dict[str, Any]:
    """Score ``table_uri`` with the homo_nn model at ``model_path`` into the Parquet folder ``out``."""
    from fedspark.arrow_bridge import map_in_arrow
    from fedspark.common import ConfigError
    from fedspark.storage import TableSpec, read_table

    try:
        model = json.loads(model_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"model file {model_path} cannot be read: {exc}") from None
    model_params(model)
    spec = TableSpec(uri=table_uri, id_column=id_column, feature_columns=list(model["feature_names"]))
    table = read_table(spark, spec, party="predict")
    kernel = functools.partial(score_kernel, model_json=json.dumps(model), threshold=threshold)
    scored = map_in_arrow(table.dataframe, kernel, SCORE_SCHEMA)
    scored.write.mode("overwrite").parquet(str(out))
    return {"rows": spark.read.parquet(str(out)).count(), "out": str(out)}


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
