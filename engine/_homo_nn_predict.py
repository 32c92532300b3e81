"""``fedspark predict``: score one party's table with a trained homo_nn model as a Spark job.

The table is read and validated by storage (errors name the file and column),
scored partition by partition in the executors (``score_kernel`` through
``mapInArrow``: torch runs there, not in the driver) and written as Parquet
with columns ``id``, ``score``, ``prediction``.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def predict_table(spark: SparkSession, model_path: Path, table_uri: str, out: Path, *, id_column: str = "id",
                  threshold: float = 0.5) -> dict[str, Any]:
    from fedspark.algorithms.homo_nn._score import SCORE_SCHEMA, model_params, score_kernel
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
