"""Federated batch scoring with a trained vertical LR model, as Spark jobs.

Rows are paired by position: every party's scoring table has been aligned to
the same ids, and each party puts its rows in the same order on its own
(:func:`fedspark.arrow_bridge.in_key_order`: bucket, then ``xxhash64`` of
the id with the job's salt, agreed by commit-reveal (``_alignment.agree_salt``),
column ``_key``). Each host
computes its partial score X_h·w_h per row in ``mapInArrow``, orders the
(``_key``, ``partial``) rows and sends them to the guest as a distributed
table; bucket b is the host's partition b. Each guest task holds one bucket:
it adds its own part and the intercept (a Spark SQL expression, so the
features never cross to Python) to the hosts' partials of the same rows,
read by position from the bucket's first row (no join), checks that every
host's key is its own, and applies the sigmoid. Ids and labels stay in the
JVM (:func:`fedspark.arrow_bridge.arrow_column`).

What crosses the wire: one float and one salted 64-bit hash of the id per
aligned row per host (the host's share of the linear predictor, as in FATE's
hetero LR prediction, and the key the guest can compute itself from ids it
holds: a host sends keys only after its own check that its ids are the
guest's, by PSI or the same_ids equality test), and a row count. No weights, no features, no ids: the guest sees the
sum a host contributes to each aligned row, never how it splits over the
host's features, and the order of the host's file stays with the host.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from fedspark.algorithms.hetero_lr._model import LRModelShare
from fedspark.arrow_bridge import arrow_column, buckets_for, feature_matrix, in_key_order, map_in_arrow
from fedspark.common import DataError, ProtocolError, column_ref
from fedspark.federation import Context, RowCursor, TableRows

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

KEY = "_key"
PARTIAL = "partial"
_LINEAR = "_linear"
REPEATED_KEY = "fedspark: a scoring table repeats a row key"
"""How :func:`guest_score_arrays` fails on a repeated key (matched in the driver's error)."""


class RepeatedKey(DataError):
    """Two of a task's rows share a key: the table repeats an id (or, with odds near 2^-64 per pair, a hash collides)."""


def partial_score_batches(
    batches: Iterator[pa.RecordBatch], *, feature_names: Sequence[str], weights: Sequence[float], intercept: float,
) -> Iterator[pa.RecordBatch]:
    """Kernel: (``_key``, ``partial``) with partial = X·w + intercept for each row."""
    w = np.asarray(weights, dtype=np.float64)
    for batch in batches:
        u = feature_matrix(batch, list(feature_names)) @ w + intercept
        yield pa.RecordBatch.from_arrays([batch.column(KEY), pa.array(u, pa.float64())], names=[KEY, PARTIAL])


def partial_scores(df: DataFrame, model: LRModelShare) -> DataFrame:
    """This party's part of the linear predictor for each keyed row of ``df``."""
    from pyspark.sql.types import DoubleType, LongType, StructField, StructType

    schema = StructType([StructField(KEY, LongType(), False), StructField(PARTIAL, DoubleType(), False)])
    kernel = functools.partial(
        partial_score_batches, feature_names=model.feature_names, weights=model.weights,
        intercept=float(model.intercept or 0.0),
    )
    return map_in_arrow(df.select(KEY, *map(column_ref, model.feature_names)), kernel, schema)


def score_host(
    ctx: Context, keyed: DataFrame, model: LRModelShare, n_rows: int, check_values: Callable[[], None] = lambda: None,
) -> None:
    """Send the guest this host's partial score of every keyed row, in the agreed order.

    The partials are computed before the rows are ordered, so the shuffle
    moves two numbers per row instead of every feature. ``check_values``
    raises if the pass that computed them met a value it cannot use (the
    reader's checks, run in this pass): the guest is told, never which value.
    """
    ctx.guest.put("rows", n_rows)
    ctx.guest.put_table("partial", in_key_order(partial_scores(keyed, model), KEY, buckets_for(n_rows)))
    try:
        check_values()
    except DataError:
        ctx.guest.put("values", "its table has a value it cannot use (named in its own log)")
        raise
    ctx.guest.put("values", "")


def score_guest(
    ctx: Context, keyed: DataFrame, model: LRModelShare, offsets: Sequence[int], n_rows: int,
    *, id_column: str = "id", label_column: str | None = None, threshold: float = 0.5,
) -> DataFrame:
    """Scores of every keyed row: id, score, predicted_label (and label).

    ``offsets`` are the first rows of the buckets (:func:`fedspark.arrow_bridge.bucket_offsets`),
    so a task knows where its bucket starts in every host's table
    (:class:`~fedspark.federation.TableRows`) and reads exactly that range
    instead of joining two large tables (a shuffle of both).
    """
    from pyspark.sql import functions as F

    host_rows = []
    for reported, host in zip(ctx.hosts.get("rows"), ctx.hosts):
        if reported != n_rows:
            raise ProtocolError(
                f"job {ctx.job_id}: host {host.party} aligned {reported} rows for scoring, the guest {n_rows}"
            )
        host_rows.append(host.get_table_rows("partial"))
    refused = [f"host {host.party}: {note}" for note, host in zip(ctx.hosts.get("values"), ctx.hosts) if note]
    if refused:
        raise DataError(f"job {ctx.job_id}: no scores, the hosts' partial scores cannot be used ({'; '.join(refused)})")
    if len(offsets) != buckets_for(n_rows):
        raise ValueError(f"{len(offsets)} bucket offsets for {n_rows} rows; expected {buckets_for(n_rows)}")
    kept = [id_column, *([label_column] if label_column else [])]
    ordered = in_key_order(keyed.select(KEY, *kept, linear_expression(model).alias(_LINEAR)), KEY, len(offsets))
    kernel = functools.partial(guest_score_arrays, offsets=list(offsets), hosts=host_rows)
    score = arrow_column(kernel, "double", F.spark_partition_id(), F.col(KEY), F.col(_LINEAR))
    # Two projections: the predicted label reads the kernel's output, it does not run the kernel again.
    scored = ordered.select(*kept, score.alias("score"))
    return scored.select(
        F.col(id_column).cast("string").alias("id"), "score",
        F.when(F.col("score").isNotNull(), (F.col("score") >= F.lit(threshold)).cast("int")).alias("predicted_label"),
        *([F.col(label_column).cast("double").alias("label")] if label_column else []),
    )


def linear_expression(model: LRModelShare) -> Column:
    """``intercept + Σ w_j·x_j`` over this party's feature columns, as a Spark SQL expression."""
    from pyspark.sql import functions as F

    linear = F.lit(float(model.intercept or 0.0))
    for name, weight in zip(model.feature_names, model.weights, strict=True):
        linear = linear + F.col(column_ref(name)) * F.lit(float(weight))
    return linear


def guest_score_arrays(
    batches: Iterator[tuple[pa.Array, ...]], *, offsets: Sequence[int], hosts: Sequence[TableRows],
) -> Iterator[pa.Array]:
    """Kernel: one task's (bucket, key, guest linear part) batches in, the score of each row out.

    The task's rows are one bucket in key order; every host's rows of that
    bucket start at ``offsets[bucket]`` of its table. A row whose partial some
    host did not send (its table ended early, or holds another key there)
    gets a null score, never a guess: :func:`check_complete` refuses the
    result. Keys must increase strictly: an equal neighbour means a repeated
    id, and the task stops (:data:`REPEATED_KEY`).
    """
    cursors: list[RowCursor] | None = None
    previous: int | None = None
    for bucket, key, linear in batches:
        if len(key) == 0:
            yield pa.array([], pa.float64())
            continue
        keys = key.to_numpy()
        if cursors is None:  # this task's first row: every host table is read from its bucket's start
            cursors = [host.cursor(offsets[int(bucket[0].as_py())]) for host in hosts]
        if (previous is not None and keys[0] == previous) or bool(np.any(keys[1:] == keys[:-1])):
            raise RepeatedKey(f"{REPEATED_KEY} (two rows of bucket {bucket[0].as_py()})")
        previous = int(keys[-1])
        total = np.array(linear.to_numpy(), dtype=np.float64)  # a writable copy
        paired = np.ones(len(keys), dtype=bool)
        for cursor in cursors:
            paired &= _add_partials(cursor, keys, total)
        with np.errstate(over="ignore"):
            score = 1.0 / (1.0 + np.exp(-total))
        yield pa.array(score, pa.float64(), mask=~paired)


def _add_partials(cursor: RowCursor, keys: np.ndarray, linear: np.ndarray) -> np.ndarray:
    """Add one host's partials for the rows ``keys`` (in place); True where the host sent that very key."""
    theirs = cursor.take(len(keys))
    paired = np.zeros(len(keys), dtype=bool)
    if theirs is None:
        return paired
    n = theirs.num_rows
    paired[:n] = theirs.column(KEY).to_numpy() == keys[:n]
    linear[:n] += theirs.column(PARTIAL).to_numpy()
    return paired


def counting_unscored(scores: DataFrame) -> tuple[DataFrame, Callable[[], int]]:
    """``scores``, and the number of null scores, counted by whatever action writes them.

    The count is a Spark observation on the same pass, so checking the result
    costs no second read of it. Call the returned function only after that
    action succeeded (an observation waits for its frame's first action).
    """
    import uuid

    from pyspark.sql import Observation
    from pyspark.sql import functions as F

    observation = Observation(f"fedspark-unscored-{uuid.uuid4().hex}")
    observed = scores.observe(observation, F.count_if(F.col("score").isNull()).alias("unscored"))
    return observed, lambda: int(observation.get["unscored"] or 0)


def check_complete(ctx: Context, missing: int) -> None:
    """Refuse a scoring result with ``missing`` rows some host sent no partial score for."""
    if missing:
        hosts = ", ".join(str(party) for party in ctx.hosts.parties)
        raise ProtocolError(
            f"job {ctx.job_id}: {missing} aligned row(s) got no partial score from the host(s) {hosts} "
            "(their table ended early or ordered the rows differently)"
        )
