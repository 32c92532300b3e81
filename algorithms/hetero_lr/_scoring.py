"""Federated batch scoring with a trained vertical LR model, as Spark jobs.

Rows are paired by position: every party's scoring table has been aligned to
the same ids and numbered 0..n-1 in one agreed order (column ``_row``). Each
host computes its partial score X_h·w_h per row in ``mapInArrow`` and sends
the table (``_row``, ``partial``) to the guest as a distributed table; the
guest's own ``mapInArrow`` tasks add their part and the intercept to the
hosts' partials of the same rows (read by position, no join), apply the
sigmoid and keep id, score, predicted label and, where it has one, the true
label.

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
from fedspark.federation import Context, RowCursor, TableRows

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

    Each guest task pairs its rows with the hosts' partials by position: the
    guest's partitions hold contiguous row numbers, so a task reads exactly its
    range of every host's received table (:class:`~fedspark.federation.TableRows`)
    instead of joining two large tables on the row number (a shuffle of both).
    Rows keep the guest's partition order; ids are in every row.
    """
    from pyspark.sql.types import DoubleType, IntegerType, StringType, StructField, StructType

    host_rows = []
    for reported, host in zip(ctx.hosts.get("rows"), ctx.hosts):
        if reported != n_rows:
            raise ProtocolError(
                f"job {ctx.job_id}: host {host.party} aligned {reported} rows for scoring, the guest {n_rows}"
            )
        host_rows.append(host.get_table_rows("partial"))
    keep = [id_column, *([label_column] if label_column else [])]
    schema = StructType([
        StructField("id", StringType()), StructField("score", DoubleType()),
        StructField("predicted_label", IntegerType()),
        *([StructField("label", DoubleType())] if label_column else []),
    ])
    kernel = functools.partial(
        guest_score_batches, feature_names=model.feature_names, weights=model.weights,
        intercept=float(model.intercept or 0.0), keep=keep, hosts=host_rows, threshold=threshold,
    )
    return map_in_arrow(numbered.select(ROW, *keep, *model.feature_names), kernel, schema)


def guest_score_batches(
    batches: Iterator[pa.RecordBatch], *, feature_names: Sequence[str], weights: Sequence[float], intercept: float,
    keep: Sequence[str], hosts: Sequence[TableRows], threshold: float,
) -> Iterator[pa.RecordBatch]:
    """Kernel: (id, score, predicted_label[, label]) per numbered guest row, each host's partial added by position.

    A row whose partial some host did not send (its table ended early, or its
    row number differs) gets a null score, never a guess: :func:`check_complete`
    refuses the result.
    """
    w = np.asarray(weights, dtype=np.float64)
    cursors: list[RowCursor] | None = None
    for batch in batches:
        if batch.num_rows == 0:
            continue
        rows = batch.column(ROW).to_numpy()
        if cursors is None:  # this task's first row: every host table is read from there on
            cursors = [host.cursor(int(rows[0])) for host in hosts]
        linear = feature_matrix(batch, list(feature_names)) @ w + intercept
        paired = np.ones(batch.num_rows, dtype=bool)
        for cursor in cursors:
            paired &= _add_partials(cursor, rows, linear)
        with np.errstate(over="ignore"):
            score = 1.0 / (1.0 + np.exp(-linear))
        missing = ~paired
        columns = [
            batch.column(keep[0]).cast(pa.string()),
            pa.array(score, pa.float64(), mask=missing),
            pa.array((score >= threshold).astype(np.int32), pa.int32(), mask=missing),
            *(batch.column(name).cast(pa.float64()) for name in keep[1:]),
        ]
        yield pa.RecordBatch.from_arrays(columns, names=["id", "score", "predicted_label", *(["label"] if keep[1:] else [])])


def _add_partials(cursor: RowCursor, rows: np.ndarray, linear: np.ndarray) -> np.ndarray:
    """Add one host's partials for ``rows`` (in place); True where the host sent that very row."""
    theirs = cursor.take(len(rows))
    paired = np.zeros(len(rows), dtype=bool)
    if theirs is None:
        return paired
    n = theirs.num_rows
    their_rows = theirs.column(ROW).to_numpy()
    paired[:n] = their_rows == rows[:n]
    linear[:n] += theirs.column(PARTIAL).to_numpy()
    return paired


def check_complete(ctx: Context, scores: DataFrame) -> None:
    """Refuse a scoring result with rows some host sent no partial score for."""
    from pyspark.sql import functions as F

    missing = scores.where(F.col("score").isNull()).count()
    if missing:
        hosts = ", ".join(str(party) for party in ctx.hosts.parties)
        raise ProtocolError(
            f"job {ctx.job_id}: {missing} aligned row(s) got no partial score from the host(s) {hosts} "
            "(their table ended early or numbered the rows differently)"
        )
