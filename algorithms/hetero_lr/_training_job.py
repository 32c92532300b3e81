"""``hetero_lr`` as the engine runs it: one entry point for every role of a training job.

Called by the party process once the federation is up, with the engine's neutral
:class:`~fedspark.algorithms.Task`; the protocol itself only sees the ``Context``
and this party's own data.
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from fedspark.algorithms import Task
from fedspark.algorithms.evaluation import binary_metrics
from fedspark.algorithms.hetero_lr._arbiter import train_arbiter
from fedspark.algorithms.hetero_lr._common import VerticalData
from fedspark.algorithms.hetero_lr._compute import compute_factory
from fedspark.algorithms.hetero_lr._guest import train_guest
from fedspark.algorithms.hetero_lr._host import train_host
from fedspark.algorithms.hetero_lr._params import HeteroLRParams
from fedspark.common import Role
from fedspark.crypto import SECURE_MIN_KEY_SIZE
from fedspark.storage import write_json

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


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
                "loss_history": arbiter.loss_history, "seconds": seconds}

    assert spark is not None  # guest and hosts start one in run_party
    data, x, alignment = _load_table(spark, task)
    use_spark = task.compute.backend == "spark"
    factory = compute_factory(
        x, params, intercept=me.role is Role.GUEST, spark=spark if use_spark else None,
        partitions=task.compute.partitions,
    )
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
        "n_rows": len(data.ids),
        "n_features": len(data.feature_names),
        "epochs": result.epochs,
        "converged": result.converged,
        "loss_history": result.loss_history,
        "seconds": seconds,
        "load_seconds": load_seconds,
        "seconds_per_epoch": seconds / max(result.epochs, 1),
        "compute": "spark" if use_spark else "driver",
        **alignment,
    }
    if me.role is Role.GUEST and result.scores is not None and data.labels is not None:
        metrics.update(binary_metrics(data.labels, result.scores, params.decision_threshold))
    return metrics


def _load_table(spark: SparkSession, task: Task) -> tuple[VerticalData, np.ndarray, dict[str, int]]:
    """Read this party's table, align it (PSI when the job asks), run the feature steps, bring it to the driver.

    With PSI the rows come back in the order every party agreed on (row i is the
    same person everywhere) and only the intersection is kept; the feature
    statistics are then those of the intersection. The fitted transform is saved
    as ``transforms.json`` beside the model share, so prediction applies exactly
    the training-time fill and scaling.
    """
    from fedspark.algorithms.feature import FeatureTransform, apply_transform, fit_transform
    from fedspark.arrow_bridge import collect_arrow, column_view, feature_matrix
    from fedspark.storage import read_table

    me, ctx, out = task.me, task.ctx, task.out
    assert task.data is not None  # checked by the job's configuration
    spec = dataclasses.replace(task.data, keep_missing=task.features.fill != "none")
    party_table = read_table(spark, spec, party=str(me))
    where = f"{me} table {party_table.uri}"
    df, order, alignment = party_table.dataframe, None, {}
    if task.align == "psi":
        from fedspark.algorithms.psi import align

        result = align(ctx.sub("psi_align"), df, "id", spark, keep_order_key=True)
        df, order = result.table, result.order_column
        alignment = {"own_ids": result.own_ids, "matched": result.matched, "unmatched": result.unmatched}
    transform = FeatureTransform.identity(party_table.feature_names)
    if task.features.active:
        transform = fit_transform(
            df, party_table.feature_names, fill=task.features.fill, scale=task.features.scale, where=where
        )
        df = apply_transform(df, transform, where)
    transform.save(out / "transforms.json")
    if order is None:
        table = collect_arrow(df).sort_by("id").combine_chunks()
    else:
        table = collect_arrow(df.orderBy(order)).drop_columns([order]).combine_chunks()
    feature_names = [c for c in table.column_names if c not in ("id", "label")]
    data = VerticalData(
        ids=[str(i) for i in table.column("id").to_pylist()],
        feature_names=feature_names,
        labels=column_view(table, "label") if "label" in table.column_names else None,
    )
    return data, feature_matrix(table, feature_names), alignment
