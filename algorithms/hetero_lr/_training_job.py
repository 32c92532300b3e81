"""``hetero_lr`` as the engine runs it: one entry point for every role of a training job.

Called by the party process once the federation is up, with the engine's neutral
:class:`~fedspark.algorithms.Task`; the protocol itself only sees the ``Context``
and this party's own data.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from fedspark.algorithms import Task
from fedspark.algorithms.evaluation import binary_metrics, binary_metrics_frame
from fedspark.algorithms.hetero_lr._arbiter import train_arbiter
from fedspark.algorithms.hetero_lr._common import VerticalData
from fedspark.algorithms.hetero_lr._compute import PartyCompute, compute_factory
from fedspark.algorithms.hetero_lr._executor import executor_factory
from fedspark.algorithms.hetero_lr._guest import train_guest
from fedspark.algorithms.hetero_lr._host import train_host
from fedspark.algorithms.hetero_lr._params import HeteroLRParams
from fedspark.common import ConfigError, DataError, Role
from fedspark.crypto import SECURE_MIN_KEY_SIZE, PublicKey
from fedspark.storage import write_json

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def run_training(task: Task) -> dict[str, Any]:
    """One party's side of a ``hetero_lr`` job (every role): load its table, train its role, report metrics.

    ``task.min_key_size`` is this party's own floor for the Paillier key (its setting, not the job's).
    """
    params: HeteroLRParams = task.params
    me, ctx, out, spark, min_key_size = task.me, task.ctx, task.out, task.spark, task.min_key_size
    started = time.monotonic()
    security = {
        "key_size": task.security.key_size,
        "min_key_size": min_key_size,
        "insecure_key_size": task.security.key_size < SECURE_MIN_KEY_SIZE,
    }

    def on_epoch(epoch: int, loss: float | None) -> None:
        task.emit("epoch", epoch=epoch + 1, total=params.max_iter, loss=loss)

    if me.role is Role.ARBITER:
        arbiter = train_arbiter(
            ctx,
            params,
            key_size=task.security.key_size,
            min_key_size=min_key_size,
            on_epoch=on_epoch,
        )
        seconds = time.monotonic() - started
        return {**security, "role": "arbiter", "epochs": arbiter.epochs, "converged": arbiter.converged,
                "loss_history": arbiter.loss_history, **arbiter.metrics(), "seconds": seconds}

    assert spark is not None  # guest and hosts start one in run_party
    frame, alignment = _aligned_frame(spark, task)
    backend, reason = choose_backend(task.compute.backend, alignment["rows"], len(frame.feature_names),
                                     task.security.key_size)
    task.emit("log", message=f"hetero_lr compute: {backend} ({reason})")
    if backend == "executors":
        data, factory = _executor_rows(spark, task, frame, alignment["rows"], params)
    else:
        data, x = _driver_rows(frame)
        factory = compute_factory(x, params, intercept=me.role is Role.GUEST, spark=spark,
                                  partitions=task.compute.partitions)
    train = train_guest if me.role is Role.GUEST else train_host
    load_seconds = time.monotonic() - started
    started = time.monotonic()
    result = train(ctx, data, params, factory, on_epoch=on_epoch, record_gradients=task.debug.record_gradients,
                   min_key_size=min_key_size)
    seconds = time.monotonic() - started
    result.model.save(out / "model.json")
    model_dir = task.model_dir
    if model_dir:  # also where the party keeps its models: a path or a file://, hdfs://, webhdfs:// URI
        from fedspark.storage import write_file

        base = model_dir.rstrip("/")
        write_file(f"{base}/model.json", result.model.to_bytes(), spark=spark)
        write_file(f"{base}/transforms.json", (out / "transforms.json").read_bytes(), spark=spark)
    if task.debug.record_gradients:
        write_json(out / "gradients.json", result.gradients)
    metrics: dict[str, Any] = {
        **security,
        "role": me.role.value,
        "n_rows": data.n_rows,
        "n_features": len(data.feature_names),
        "epochs": result.epochs,
        "converged": result.converged,
        "loss_history": result.loss_history,
        "seconds": seconds,
        "load_seconds": load_seconds,
        "seconds_per_epoch": seconds / max(result.epochs, 1),
        "compute": backend,
        "compute_reason": reason,
        **result.compute,
        **{k: v for k, v in alignment.items() if k != "rows"},
    }
    if me.role is Role.GUEST and result.scores is not None:
        if isinstance(result.scores, np.ndarray):
            assert data.labels is not None  # the driver path's guest holds them
            metrics.update(binary_metrics(data.labels, result.scores, params.decision_threshold))
        else:
            metrics.update(binary_metrics_frame(result.scores, params.decision_threshold))
    result.release()
    return metrics


AUTO_EXECUTOR_CELLS = 20_000_000
"""``compute.backend: auto`` keeps a table of fewer (rows × features) cells in the driver (16 bytes a
cell there: features and their quantised copy), and trains a larger one on the executors.

Measured (``fedspark bench hetero-lr --scale``, docs/benchmarks.md): the driver path has no Spark job
per batch, so up to the size a driver holds comfortably it is as fast or faster; the executor path's
point is that its driver memory does not grow with the table."""


EXECUTOR_PARTITION_BYTES = 256 << 20
"""About this many bytes of features per partition on the executor path: task counts follow the data,
and no cached partition is one block of gigabytes (a 10M-row table in two partitions ran a 3 GiB JVM
out of heap while caching them)."""

MAX_EXECUTOR_BATCH_ROWS = 500_000
"""The largest mini-batch the executor path takes: its [[u]] and [[e]] (256–512 bytes a row, more as
Python ints) pass through the drivers."""


def choose_backend(configured: str, n_rows: int, n_features: int, key_size: int) -> tuple[str, str]:
    """``driver`` (the table held by the driver) or ``executors`` (a persisted DataFrame), and why.

    ``key_size`` does not move the threshold: it scales both paths' Paillier work alike.
    """
    if configured == "driver":
        return "driver", "compute.backend: driver"
    if configured == "spark":
        return "executors", "compute.backend: spark"
    cells = n_rows * (n_features + 1)
    if cells > AUTO_EXECUTOR_CELLS:
        return "executors", f"auto: {n_rows} rows x {n_features} features = {cells:,} cells > {AUTO_EXECUTOR_CELLS:,}"
    return "driver", f"auto: {n_rows} rows x {n_features} features = {cells:,} cells <= {AUTO_EXECUTOR_CELLS:,}"


@dataclasses.dataclass
class _AlignedFrame:
    """This party's aligned, transformed table, still in Spark, and the column that orders its rows."""

    df: DataFrame
    order: str
    feature_names: list[str]
    label: str | None


def _aligned_frame(spark: SparkSession, task: Task) -> tuple[_AlignedFrame, dict[str, int]]:
    """Read this party's table, align it (PSI when the job asks) and run the feature steps, in Spark.

    With PSI the rows are ordered by PSI's agreed order column (row i is the
    same person everywhere) and only the intersection is kept; the feature
    statistics are then those of the intersection. Without it, by id. The
    fitted transform is saved as ``transforms.json`` beside the model share, so
    prediction applies exactly the training-time fill and scaling.
    """
    from fedspark.algorithms.feature import FeatureTransform, apply_transform, fit_transform
    from fedspark.storage import read_table

    me, ctx, out = task.me, task.ctx, task.out
    assert task.data is not None  # checked by the job's configuration
    spec = dataclasses.replace(task.data, keep_missing=task.features.fill != "none")
    party_table = read_table(spark, spec, party=str(me))
    where = f"{me} table {party_table.uri}"
    df, order, alignment = party_table.dataframe, "id", {"rows": party_table.n_rows}
    if task.align == "psi":
        from fedspark.algorithms.psi import align

        result = align(ctx.sub("psi_align"), df, "id", spark, keep_order_key=True)
        df, order = result.table, result.order_column
        alignment = {"own_ids": result.own_ids, "matched": result.matched, "unmatched": result.unmatched,
                     "rows": result.matched}
    transform = FeatureTransform.identity(party_table.feature_names)
    if task.features.active:
        transform = fit_transform(
            df, party_table.feature_names, fill=task.features.fill, scale=task.features.scale, where=where
        )
        df = apply_transform(df, transform, where)
    transform.save(out / "transforms.json")
    label = "label" if "label" in df.columns else None
    return _AlignedFrame(df, order, list(party_table.feature_names), label), alignment


def _driver_rows(frame: _AlignedFrame) -> tuple[VerticalData, np.ndarray]:
    """The driver path: the aligned table collected once, in the agreed order."""
    from fedspark.arrow_bridge import collect_arrow, column_view, feature_matrix

    table = collect_arrow(frame.df.orderBy(frame.order)).combine_chunks()  # bounded: auto picks this path <= 20M cells
    if frame.order != "id":
        table = table.drop_columns([frame.order])
    data = VerticalData(
        ids=[str(i) for i in table.column("id").to_pylist()],
        feature_names=frame.feature_names,
        labels=column_view(table, "label") if frame.label else None,
    )
    return data, feature_matrix(table, frame.feature_names)


def _executor_rows(
    spark: SparkSession, task: Task, frame: _AlignedFrame, n_rows: int, params: HeteroLRParams
) -> tuple[VerticalData, Callable[[PublicKey], PartyCompute]]:
    """The executor path: the aligned table numbered in the agreed order and kept in Spark; nothing collected."""
    from pyspark.sql import functions as F

    from fedspark.algorithms.hetero_lr._alignment import digest_aggregates, digest_from_sums
    from fedspark.algorithms.hetero_lr._executor import LABEL, RANK, feature_column
    from fedspark.arrow_bridge import order_key, with_row_index
    from fedspark.common import column_ref

    largest = n_rows if params.batch_size <= 0 else min(n_rows, 2 * params.batch_size)
    if largest > MAX_EXECUTOR_BATCH_ROWS:
        raise ConfigError(
            f"job {task.ctx.job_id}: {task.me} trains {n_rows} rows on the executors with batch_size "
            f"{params.batch_size}: a batch's ciphertexts pass through the driver, so batches of up to "
            f"{MAX_EXECUTOR_BATCH_ROWS:,} rows are allowed there; set params.batch_size (10,000 is typical)"
        )
    guest = task.me.role is Role.GUEST
    n_features = len(frame.feature_names) + (1 if guest else 0)
    partitions = max(task.compute.partitions, spark.sparkContext.defaultParallelism,
                     -(-n_rows * (n_features + 3) * 8 // EXECUTOR_PARTITION_BYTES))
    # A global sort into exactly that many range partitions, numbered and kept (with_row_index checkpoints
    # it): every batch has rows in every partition, so its jobs use every core.
    ranked = with_row_index(frame.df.repartitionByRange(partitions, frame.order).sortWithinPartitions(frame.order),
                            RANK)
    if guest and frame.label is not None:
        _check_labels_in_spark(task, ranked)
    features = [F.col(column_ref(name)).cast("double").alias(feature_column(j))
                for j, name in enumerate(frame.feature_names)]
    if guest:
        features.append(F.lit(1.0).alias(feature_column(len(frame.feature_names))))  # the intercept's column
    labels = [F.col("label").cast("double").alias(LABEL)] if guest and frame.label else []
    rows = ranked.select(RANK, *features, *labels)  # no copy of its own: each epoch persists one sorted by batch
    counted = rows.count()
    if counted != n_rows:
        n_rows = counted  # the table's own count is the truth; the alignment check compares it with the peers'

    def digest(salt: bytes) -> bytes:
        sums = digest_aggregates(order_key("id", salt))
        row = ranked.agg(*(e.alias(n) for n, e in sums.items())).first()
        assert row is not None
        return digest_from_sums(row["digest_low"], row["digest_high"])

    data = VerticalData(ids=None, feature_names=frame.feature_names, count=n_rows, digest=digest,
                        labels_in_compute=guest and frame.label is not None)
    return data, executor_factory(spark, rows, n_rows, n_features, params)


def _check_labels_in_spark(task: Task, ranked: DataFrame) -> None:
    """hetero_lr needs 0/1 labels: name the first row's id that has another (one row collected at most)."""
    from pyspark.sql import functions as F

    bad = ranked.where(F.col("label").isNull() | ~F.col("label").cast("double").isin(0.0, 1.0))
    first = bad.select(F.col("id").cast("string").alias("id"), F.col("label").cast("string").alias("label")).first()
    if first is not None:
        raise DataError(f"job {task.ctx.job_id}: hetero_lr needs binary labels 0/1, "
                        f"but row id={first['id']} has label {first['label']!r}")
