"""One party's side of batch scoring: load its model share, read its table, align ids, score.

Each party loads only its own part of the trained model (weights and saved
feature transforms) from its model folder, reads its scoring table with Spark,
aligns ids with the other parties, keys the aligned rows for the agreed order
and runs the scoring protocol (``_scoring``). The guest writes Parquet (id,
score, predicted_label, label where present). Every party reports how many of
its own ids found no match: a count, never the ids.

With ``align="same_ids"`` a large table is read once before scoring: the
guest and the hosts agree on a salt first (commit-reveal), so the pass that
validates the table also sums the id digest and counts the rows per bucket (a
:class:`~fedspark.storage.Tally`).
That pass skips the reader's exact duplicate-id check (a group-by over every
id): equal digests (multisets) plus the guest's own check in scoring (keys
in key order, so a repeat sits next to its twin) prove every table's ids
unique; the exact check runs only on the error path, to name the id.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NoReturn

from fedspark.algorithms import Task
from fedspark.algorithms.feature import FeatureTransform, apply_transform
from fedspark.algorithms.hetero_lr._alignment import (
    IdsNotAligned,
    agree_salt,
    check_alignment_guest,
    check_alignment_host,
    digest_aggregates,
    digest_from_sums,
    explain_mismatch_guest,
    send_mismatch_diagnosis,
)
from fedspark.algorithms.hetero_lr._model import LRModelShare
from fedspark.algorithms.hetero_lr._scoring import (
    KEY,
    REPEATED_KEY,
    check_complete,
    counting_unscored,
    score_guest,
    score_host,
)
from fedspark.arrow_bridge import bucket_offsets, buckets_for, collect_arrow, order_cell, order_key
from fedspark.common import ConfigError, DataError, PartyRef, Role, column_ref
from fedspark.federation import Context
from fedspark.storage import discard, path_exists, publish, staging_uri, with_value_check

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from fedspark.storage import PartyTable, TableSpec, ValueCheck


def run_scoring(task: Task) -> dict[str, Any]:
    """One party's side of a ``hetero_lr_predict`` job: find its model folder and output, then score."""
    me, ctx, spark = task.me, task.ctx, task.spark
    if me.role is Role.ARBITER or spark is None:
        raise ConfigError(f"job {ctx.job_id}: scoring has no arbiter role; remove parties.arbiter")
    assert task.data is not None  # checked by the job's configuration
    return score_party(
        ctx, me, spark, data=task.data, model_dir=resolve_model_dir(task),
        output=task.scoring.output or str((task.out / "scores.parquet").resolve()), align=task.align,
        job_name=task.job_name,
    )


def score_party(
    ctx: Context, me: PartyRef, spark: SparkSession, *, data: TableSpec, model_dir: str, output: str, align: str,
    job_name: str,
) -> dict[str, Any]:
    """Score ``me``'s side of a scoring job: its model share from ``model_dir``, its table ``data``.

    ``align`` is ``"same_ids"`` (the parties prove they hold the same ids) or ``"psi"``; the guest
    writes the scores to ``output`` (Parquet), published only when complete.
    """
    started = time.monotonic()
    clock = _PhaseClock()
    model, transform = load_model_share(model_dir, spark, who=f"job {job_name}: {me}")
    clock.lap("load_model")
    if me.role is Role.GUEST and path_exists(spark, output):  # before any table is read
        raise ConfigError(f"job {ctx.job_id}: scoring output {output} already exists; choose another or remove it")
    # The salt comes first (its own tag space, apart from PSI's), agreed by commit-reveal so no party
    # chooses it: it keys the rows' order and, with same_ids, lets the read that validates the table
    # also sum the id digest.
    salt = agree_salt(ctx.sub("order"))
    clock.lap("salt")
    table = _read(spark, data, me, model, transform, salt=salt if align == "same_ids" else None)
    clock.lap("read")
    metrics = score_table(ctx, me, spark, table, model, transform, align=align, salt=salt, output=output)
    metrics.update(clock.phases)
    metrics["model"] = str(model_dir)
    metrics["seconds"] = time.monotonic() - started
    metrics["rows_per_second"] = metrics["scored_rows"] / max(metrics["seconds"], 1e-9)
    return metrics


def score_table(
    ctx: Context, me: PartyRef, spark: SparkSession, table: PartyTable, model: LRModelShare,
    transform: FeatureTransform | None, *, align: str, salt: bytes, output: str,
) -> dict[str, Any]:
    """Align, key, transform and score one party's validated table; the guest writes ``output``."""
    clock = _PhaseClock()
    frame, values = with_value_check(table)  # typed Parquet read for same_ids: values checked in this pass
    aligned, n_rows, cells, key_source = _align(ctx.sub("align"), align, me, table, frame, salt, spark)
    clock.lap("align")
    kept = [c for c in aligned.columns if c != key_source or c == "id"]
    keyed = aligned.select(order_key(key_source, salt).alias(KEY), *map(column_ref, kept))
    if transform is not None:
        keyed = apply_transform(keyed, transform, where=f"{me} scoring table")
    metrics: dict[str, Any] = {
        "role": me.role.value, "own_rows": table.n_rows, "scored_rows": n_rows, "unmatched_rows": table.n_rows - n_rows,
    }
    if me.role is Role.HOST:
        with _values_blamed(values):
            score_host(ctx.sub("score"), keyed, model, n_rows, values.after_pass)
        clock.lap("score_and_send")
        return {**metrics, **clock.phases}
    has_label = "label" in aligned.columns
    threshold = float(model.meta.get("decision_threshold", 0.5))  # type: ignore[arg-type]
    scores = score_guest(
        ctx.sub("score"), keyed, model, bucket_offsets(cells, buckets_for(n_rows)), n_rows,
        label_column="label" if has_label else None, threshold=threshold,
    )
    # Written aside and published only when complete and every value checked: never half a result.
    staged = staging_uri(output, re.sub(r"[^A-Za-z0-9_-]", "_", ctx.job_id))
    scores, unscored = counting_unscored(scores)
    try:
        with _repeats_named(table), _values_blamed(values):
            scores.write.mode("overwrite").parquet(staged)
        values.after_pass()
        check_complete(ctx, unscored())
        publish(spark, staged, output)
    finally:
        discard(spark, staged)
    clock.lap("score_and_write")
    metrics["scores"] = output
    if has_label:
        metrics.update(_label_metrics(spark, output, threshold))
    return {**metrics, **clock.phases}


@contextlib.contextmanager
def _values_blamed(values: ValueCheck) -> Iterator[None]:
    """When the scoring pass fails, name the bad value if one is why (a kernel may meet it before the check)."""
    from fedspark.storage import TableError

    try:
        yield
    except TableError:
        raise  # already the reader's error (after_pass found the value)
    except Exception:
        values.after_failure()
        raise


@contextlib.contextmanager
def _repeats_named(table: PartyTable) -> Iterator[None]:
    """Turn the scoring kernel's "repeated key" failure into the reader's error naming the repeated id.

    A key repeats when an id does (or, with odds near 2^-64 per pair, two ids' hashes collide).
    """
    from fedspark.storage import check_unique_ids

    try:
        yield
    except Exception as exc:
        if REPEATED_KEY not in str(exc):
            raise
        check_unique_ids(table)
        raise DataError(
            f"{table.party}: two ids of {table.uri} share a 64-bit scoring key (a hash collision, about "
            "one chance in 2^64 per pair of ids); run the job again, which draws a new salt"
        ) from None


class _PhaseClock:
    """Seconds per scoring phase, reported in metrics (where the time goes on a large table)."""

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}
        self._last = time.monotonic()

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self.phases[f"phase_{name}_s"] = now - self._last
        self._last = now


def load_model_share(model_dir: str, spark: SparkSession, *, who: str) -> tuple[LRModelShare, FeatureTransform | None]:
    """A party's model share and feature transform from ``model_dir``: a local folder or any
    URI ``fedspark.storage`` reads (``file://``, ``hdfs://`` through Spark's Hadoop FileSystem,
    ``webhdfs://``). A model saved without a transform (older runs) is scored without one.
    ``who`` names the job and party in the error when the model is missing."""
    from fedspark.storage import StorageFileError, read_file

    base = model_dir.rstrip("/")
    try:
        model = LRModelShare.from_bytes(read_file(f"{base}/model.json", spark=spark))
    except StorageFileError as exc:
        raise ConfigError(f"{who} has no model.json in {model_dir} ({exc.detail})") from None
    try:
        transform = FeatureTransform.from_bytes(read_file(f"{base}/transforms.json", spark=spark))
    except StorageFileError as exc:
        if not exc.missing:
            raise
        transform = None
    return model, transform


def _read(
    spark: SparkSession, data: TableSpec, me: PartyRef, model: LRModelShare, transform: FeatureTransform | None,
    *, salt: bytes | None,
) -> PartyTable:
    """Read and validate this party's scoring table; with ``salt``, also tally the digest and bucket sizes."""
    from fedspark.storage import Tally, read_table

    keep_missing = transform is not None and any(v is not None for v in transform.fill)
    spec = dataclasses.replace(data, feature_columns=data.feature_columns or model.feature_names,
                               keep_missing=keep_missing)
    tally = None
    if salt is not None:
        key = order_key("id", salt)
        tally = Tally(by=order_cell(key), aggregates=digest_aggregates(key), values_later=True)
    table = read_table(spark, spec, party=str(me), tally=tally)
    if table.feature_names != model.feature_names:
        raise DataError(f"{me}: scoring table {table.uri} has features {table.feature_names}, "
                        f"the model was trained on {model.feature_names}")
    return table


def _align(
    ctx: Context, align: str, me: PartyRef, table: PartyTable, frame: DataFrame, salt: bytes, spark: SparkSession
) -> tuple[DataFrame, int, dict[int, int], str]:
    """The rows every party holds, their count, their count per key cell, and the column the row keys
    hash, each party knowing only the count of its own unmatched ids.

    With PSI the row keys hash PSI's agreed order key (a double-blinded point), not the id: a guest
    that announced host rows outside the intersection as matched (PSI cannot prove a match to the
    host) then gets keys it cannot test candidate ids against.

    With PSI, every party keeps the intersection and learns nothing about the
    other parties' ids outside it; with ``same_ids`` the parties prove (a private
    equality test of the salted digest tallied when the table was read, each
    party reaching its own verdict) that they hold the same ids and stop otherwise.
    """
    if align == "psi":
        from fedspark.algorithms.psi import align as psi_align

        result = psi_align(ctx, frame, "id", spark, keep_order_key=True)
        aligned, source = result.table, result.order_column
        cell_counts = aligned.groupBy(order_cell(order_key(source, salt)).alias("group")).count()
        counts = collect_arrow(cell_counts).to_pylist()  # bounded: at most ORDER_CELLS rows
        cells = {int(c["group"]): int(c["count"]) for c in counts}
        return aligned, sum(cells.values()), cells, source
    cells = {int(g["group"]): int(g["rows"]) for g in table.tally}
    mine = digest_from_sums(sum(g["digest_low"] or 0 for g in table.tally), sum(g["digest_high"] or 0 for g in table.tally))
    check = check_alignment_guest if me.role is Role.GUEST else check_alignment_host
    try:
        check(ctx, None, count=table.n_rows, digest=lambda _salt: mine, salt=salt)
    except IdsNotAligned as exc:
        # The read skipped the exact duplicate check; a repeated id may be why the digests differ.
        _explain_mismatch(ctx, me, table, exc)
    return frame, table.n_rows, cells, "id"


def _explain_mismatch(ctx: Context, me: PartyRef, table: PartyTable, error: IdsNotAligned) -> NoReturn:
    """Name this party's repeated id if it has one, else stop with what the parties found."""
    from fedspark.storage import TableError, check_unique_ids

    if me.role is Role.GUEST:
        check_unique_ids(table)
        raise explain_mismatch_guest(ctx, error) from None
    try:
        check_unique_ids(table)
    except TableError:
        send_mismatch_diagnosis(ctx, repeats_an_id=True)
        raise
    send_mismatch_diagnosis(ctx, repeats_an_id=False)
    raise error


def _label_metrics(spark: SparkSession, path: str, threshold: float) -> dict[str, Any]:
    """AUC, KS and accuracy of the written scores, computed by Spark at any size (no row reaches the driver)."""
    from fedspark.algorithms.evaluation import binary_metrics_frame

    return binary_metrics_frame(spark.read.parquet(path).select("label", "score"), threshold)


def resolve_model_dir(task: Task) -> str:
    """This party's model folder: its ``model_dir`` (a path or URI), or its folder in the named training run."""
    me, runs_dir = task.me, task.runs_dir
    folder = f"{me.role.value}-{me.party_id}"
    configured = task.model_dir
    if configured:
        return configured  # checked when read: it may live on another file system
    if task.scoring.model_job_id:
        path = runs_dir / task.scoring.model_job_id / folder
    elif task.scoring.model_job:
        runs = sorted(
            (p for p in runs_dir.glob(f"{task.scoring.model_job}-*") if (p / folder / "model.json").is_file()),
            key=lambda p: (p / folder / "model.json").stat().st_mtime,
        )
        if not runs:
            raise ConfigError(
                f"job {task.job_name}: no run of training job {task.scoring.model_job!r} under {runs_dir} "
                f"holds a model for {me}; run the training job first"
            )
        path = runs[-1] / folder
    else:
        raise ConfigError(f"job {task.job_name}: name the trained model (scoring.model_job, scoring.model_job_id "
                          "or parties.<role>.model_dir)")
    if not (path / "model.json").is_file():
        raise ConfigError(f"job {task.job_name}: {me} has no model.json in {path}")
    return str(path)
