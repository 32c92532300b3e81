"""Federated batch scoring with a trained vertical LR model, as Spark jobs.

Rows are paired by position: every party's scoring table has been aligned to
the same ids and numbered 0..n-1 in one agreed order (column ``_row``). Each
host computes its partial score X_h·w_h per row in ``mapInArrow`` and sends
the table (``_row``, ``partial``) to the guest as a distributed table; the
guest adds its own part and the intercept, applies the sigmoid and keeps id,
score, predicted label and, where it has one, the true label.

What crosses the wire: one float per aligned row per host (the host's share of
the linear predictor, as in FATE's hetero LR prediction) and a row count. No
weights, no features, no ids: the guest sees the sum a host contributes to
each aligned row, never how it splits over the host's features.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from fedspark.algorithms.hetero_lr._model import LRModelShare
from fedspark.arrow_bridge import feature_matrix, map_in_arrow
from fedspark.common import ProtocolError
from fedspark.federation import Context

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

ROW = "_row"
PARTIAL = "partial"


def partial_score_batches(
    batches: Iterator[pa.RecordBatch], *, feature_names: Sequence[str], weights: Sequence[float],
    intercept: float, keep: Sequence[str],
) -> Iterator[pa.RecordBatch]:
    """Kernel: (``_row``, *keep, ``partial``) with partial = X·w + intercept for each row."""
    w = np.asarray(weights, dtype=np.float64)
    for batch in batches:
        u = feature_matrix(batch, list(feature_names)) @ w + intercept
        columns = [batch.column(ROW), *(batch.column(name) for name in keep), pa.array(u, pa.float64())]
        yield pa.RecordBatch.from_arrays(columns, names=[ROW, *keep, PARTIAL])


def partial_scores(df: DataFrame, model: LRModelShare, keep: Sequence[str] = ()) -> DataFrame:
    """This party's part of the linear predictor for each numbered row of ``df``."""
    from pyspark.sql.types import DoubleType, LongType, StructField, StructType

    kept = [df.schema[name] for name in keep]
    schema = StructType([StructField(ROW, LongType(), False), *kept, StructField(PARTIAL, DoubleType(), False)])
    kernel = functools.partial(
        partial_score_batches, feature_names=model.feature_names, weights=model.weights,
        intercept=float(model.intercept or 0.0), keep=list(keep),
    )
    return map_in_arrow(df.select(ROW, *keep, *model.feature_names), kernel, schema)


def score_host(ctx: Context, numbered: DataFrame, model: LRModelShare, n_rows: int) -> None:
    """Send the guest this host's partial score of every numbered row."""
    ctx.guest.put("rows", n_rows)
    ctx.guest.put_table("partial", partial_scores(numbered, model))


def score_guest(
    ctx: Context, numbered: DataFrame, model: LRModelShare, n_rows: int, spark: SparkSession,
    *, id_column: str = "id", label_column: str | None = None, threshold: float = 0.5,
) -> DataFrame:
    """Scores of every numbered row: id, score, predicted_label (and label).

    Rows come out in the join's order, not sorted: a global sort of a large
    table costs a shuffle and nothing downstream needs it (ids are in every row).
    """
    from pyspark.sql import functions as F

    keep = [id_column, *([label_column] if label_column else [])]
    total = partial_scores(numbered, model, keep)
    host_columns = []
    for i, (host_rows, host) in enumerate(zip(ctx.hosts.get("rows"), ctx.hosts)):
        if host_rows != n_rows:
            raise ProtocolError(
                f"job {ctx.job_id}: host {host.party} aligned {host_rows} rows for scoring, the guest {n_rows}"
            )
        name = f"_host{i}"
        theirs = host.get_table("partial", spark).withColumnRenamed(PARTIAL, name)
        # Spark cannot size a received table (it reads spilled files in a mapInArrow over a
        # range) and would broadcast it: at millions of rows that exhausts the driver. Both
        # sides are large; a sort-merge join on the row number is the right plan.
        total = total.join(theirs.hint("merge"), ROW, "left")
        host_columns.append(name)
    linear = F.col(PARTIAL)
    for name in host_columns:
        linear = linear + F.col(name)
    # A row a host left out has a null partial: its score is null, never a guess,
    # and check_complete() counts such rows in the written result.
    score = (F.lit(1.0) / (F.lit(1.0) + F.exp(-linear))).alias("score")
    return total.select(
        F.col(id_column).alias("id"), score,
        (score >= F.lit(threshold)).cast("int").alias("predicted_label"),
        *([F.col(label_column).alias("label")] if label_column else []),
    )


def check_complete(ctx: Context, scores: DataFrame) -> None:
    """Refuse a scoring result with rows some host sent no partial score for."""
    from pyspark.sql import functions as F

    missing = scores.where(F.col("score").isNull()).count()
    if missing:
        raise ProtocolError(f"job {ctx.job_id}: the hosts sent no partial score for {missing} aligned row(s)")
