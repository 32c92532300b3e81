"""One party's side of a ``hetero_lr_predict`` job: load its model share, align, score.

Each party loads only its own part of the trained model (weights and saved
feature transforms) from its run folder of the training job, reads its
scoring table with Spark, aligns ids with the other parties, numbers the
aligned rows in the agreed order and runs the scoring protocol. The guest
writes Parquet (id, score, predicted_label, label where present). Every party
reports how many of its own ids found no match: a count, never the ids.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fedspark.algorithms.feature import FeatureTransform, apply_transform
from fedspark.algorithms.hetero_lr import ROW, LRModelShare, check_complete, score_guest, score_host
from fedspark.algorithms.hetero_lr._alignment import check_alignment_guest, check_alignment_host, spark_id_digest
from fedspark.arrow_bridge import number_in_id_order, partitions_for
from fedspark.common import ConfigError, DataError, PartyRef, Role
from fedspark.engine._config import JobConfig
from fedspark.federation import Context

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

_METRICS_ROW_LIMIT = 5_000_000
"""AUC/KS of a labelled scoring table are computed on the guest's driver: only up to this many rows."""


def run_hetero_lr_predict(
    job: JobConfig, me: PartyRef, ctx: Context, out: Path, spark: SparkSession | None
) -> dict[str, Any]:
    if me.role is Role.ARBITER or spark is None:
        raise ConfigError(f"job {ctx.job_id}: scoring has no arbiter role; remove parties.arbiter")
    started = time.monotonic()
    model_dir = resolve_model_dir(job, me, runs_dir=out.parent.parent)
    model, transform = load_model_files(job, me, model_dir, spark)
    table, own_ids = _read(spark, job, me, model, transform)
    metrics = score_table(
        ctx, me, spark, table, own_ids, model, transform, align=job.align,
        output=job.scoring.output or str((out / "scores.parquet").resolve()),
    )
    metrics["model"] = str(model_dir)
    metrics["seconds"] = time.monotonic() - started
    metrics["rows_per_second"] = metrics["scored_rows"] / max(metrics["seconds"], 1e-9)
    return metrics


def score_table(
    ctx: Context, me: PartyRef, spark: SparkSession, table: DataFrame, own_rows: int, model: LRModelShare,
    transform: FeatureTransform | None, *, align: str, output: str,
) -> dict[str, Any]:
    """Align, number, transform and score one party's validated table; the guest writes ``output``.

    Shared by scoring jobs and ``fedspark bench scoring``, so the benchmark
    measures exactly what users run.
    """
    clock = _PhaseClock()
    aligned, n_rows = _align(ctx.sub("align"), align, me, table, own_rows, spark)
    clock.lap("align")
    numbered = number_in_id_order(aligned, partitions_for(n_rows), "id", ROW)
    clock.lap("number")
    if transform is not None:
        numbered = apply_transform(numbered, transform, where=f"{me} scoring table")
    metrics: dict[str, Any] = {
        "role": me.role.value, "own_rows": own_rows, "scored_rows": n_rows, "unmatched_rows": own_rows - n_rows,
    }
    if me.role is Role.HOST:
        score_host(ctx.sub("score"), numbered, model, n_rows)
        clock.lap("score_and_send")
        return {**metrics, **clock.phases}
    has_label = "label" in table.columns
    threshold = float(model.meta.get("decision_threshold", 0.5))  # type: ignore[arg-type]
    scores = score_guest(
        ctx.sub("score"), numbered, model, n_rows, spark, label_column="label" if has_label else None,
        threshold=threshold,
    )
    scores.write.mode("errorifexists").parquet(output)
    check_complete(ctx, spark.read.parquet(output))
    clock.lap("score_and_write")
    metrics["scores"] = output
    if has_label and n_rows <= _METRICS_ROW_LIMIT:
        metrics.update(_label_metrics(spark, output, threshold))
    return {**metrics, **clock.phases}


class _PhaseClock:
    """Seconds per scoring phase, reported in metrics (where the time goes on a large table)."""

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}
        self._last = time.monotonic()

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self.phases[f"phase_{name}_s"] = now - self._last
        self._last = now


def load_model_files(
    job: JobConfig, me: PartyRef, model_dir: str, spark: SparkSession
) -> tuple[LRModelShare, FeatureTransform | None]:
    """This party's model share and feature transform from ``model_dir``: a local folder or any
    URI ``fedspark.storage`` reads (``file://``, ``hdfs://`` through Spark's Hadoop FileSystem,
    ``webhdfs://``). A model saved without a transform (older runs) is scored without one."""
    from fedspark.storage import StorageFileError, read_file

    base = model_dir.rstrip("/")
    try:
        model = LRModelShare.from_bytes(read_file(f"{base}/model.json", spark=spark))
    except StorageFileError as exc:
        raise ConfigError(f"job {job.name}: {me} has no model.json in {model_dir} ({exc.detail})") from None
    try:
        transform = FeatureTransform.from_bytes(read_file(f"{base}/transforms.json", spark=spark))
    except StorageFileError as exc:
        if not exc.missing:
            raise
        transform = None
    return model, transform


def resolve_model_dir(job: JobConfig, me: PartyRef, runs_dir: Path) -> str:
    """This party's model folder: its ``model_dir`` (a path or URI), or its folder in the named training run."""
    folder = f"{me.role.value}-{me.party_id}"
    configured = job.party_config(me).model_dir
    if configured:
        return configured  # checked when read: it may live on another file system
    if job.scoring.model_job_id:
        path = runs_dir / job.scoring.model_job_id / folder
    elif job.scoring.model_job:
        runs = sorted(
            (p for p in runs_dir.glob(f"{job.scoring.model_job}-*") if (p / folder / "model.json").is_file()),
            key=lambda p: (p / folder / "model.json").stat().st_mtime,
        )
        if not runs:
            raise ConfigError(
                f"job {job.name}: no run of training job {job.scoring.model_job!r} under {runs_dir} "
                f"holds a model for {me}; run the training job first"
            )
        path = runs[-1] / folder
    else:
        raise ConfigError(f"job {job.name}: name the trained model (scoring.model_job, scoring.model_job_id "
                          "or parties.<role>.model_dir)")
    if not (path / "model.json").is_file():
        raise ConfigError(f"job {job.name}: {me} has no model.json in {path}")
    return str(path)


def _read(
    spark: SparkSession, job: JobConfig, me: PartyRef, model: LRModelShare, transform: FeatureTransform | None
) -> tuple[DataFrame, int]:
    from fedspark.storage import TableSpec, read_table

    cfg = job.party_config(me).data
    assert cfg is not None  # checked by JobConfig
    keep_missing = transform is not None and any(v is not None for v in transform.fill)
    spec = TableSpec(**{**cfg.model_dump(), "feature_columns": cfg.feature_columns or model.feature_names},
                     keep_missing=keep_missing)
    table = read_table(spark, spec, party=str(me))
    if table.feature_names != model.feature_names:
        raise DataError(f"{me}: scoring table {table.uri} has features {table.feature_names}, "
                        f"the model was trained on {model.feature_names}")
    return table.dataframe, table.n_rows


def _align(
    ctx: Context, align: str, me: PartyRef, df: DataFrame, own_rows: int, spark: SparkSession
) -> tuple[DataFrame, int]:
    """The rows every party holds and their count, each party knowing only the count of its own unmatched ids.

    With PSI, every party keeps the intersection and learns nothing about the
    other parties' ids outside it; with ``same_ids`` the parties prove (salted
    digest) that they hold the same ids and stop otherwise. ``own_rows`` is
    the reader's exact count of ``df`` (the table is not cached: counting it
    again would read and validate it again).
    """
    if align == "psi":
        from fedspark.algorithms.psi import align as psi_align

        aligned = psi_align(ctx, df, "id", spark).table
        return aligned, aligned.count()
    count = own_rows
    digest = lambda salt: spark_id_digest(df, salt)  # noqa: E731 - bound late, runs once
    if me.role is Role.GUEST:
        check_alignment_guest(ctx, None, count=count, digest=digest)
    else:
        check_alignment_host(ctx, None, count=count, digest=digest)
    return df, count


def _label_metrics(spark: SparkSession, path: str, threshold: float) -> dict[str, Any]:
    from fedspark.algorithms.evaluation import binary_metrics
    from fedspark.arrow_bridge import collect_arrow, column_view

    scored = collect_arrow(spark.read.parquet(path).select("label", "score")).combine_chunks()
    return binary_metrics(column_view(scored, "label"), column_view(scored, "score"), threshold)
