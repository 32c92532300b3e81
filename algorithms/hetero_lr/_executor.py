"""The executor backend: a party's aligned table stays a persisted DataFrame, and every per-row step of
a mini-batch runs in its executors.

What the driver holds: the weights, one batch's bookkeeping (its ranks, from the plan), one batch's
u (and, at the guest, labels) and ciphertexts, and one aggregated gradient vector. Never the table.

- The table is ``(_rank, _x0.._x{d-1}[, _y])``: ``_rank`` the row's position in the order all parties
  agreed, features under plain names (a constant ``_x{d-1}`` = 1 for the guest's intercept), over
  range partitions of about 256 MiB kept by the numbering's local checkpoint (memory and disk).
- Per epoch one pass adds ``_batch`` (:func:`._batches.batch_of`, computed by each executor from its
  rows' ranks) and sorts every partition by it, persisted: a batch is then a contiguous run of
  rows in every partition, and the in-memory columnar cache skips the other runs by their
  ``_batch`` statistics, so a batch reads its own rows in every partition (all cores busy) and
  little else. The copy is persisted MEMORY_AND_DISK, so a table larger than memory spills
  instead of failing; the previous epoch's copy is released.
- X·w: a ``mapInArrow`` kernel over the batch's rows; u (B floats) comes back to the driver
  sorted by rank, checked against the plan's ranks for the batch.
- [[u]] (a host): encrypted in the same ``mapInArrow`` pass as X·w; u and [[u]] come back together.
- X^T[[e]]: the batch's [[e]] (B ciphertexts, rank order) travels with the kernel; each task finds
  its rows' ciphertexts by rank, sums Σ x_ij·[[e_i]] over its rows, and the driver merges one
  partial per task and feature.
- The final partial scores stay a DataFrame (``_rank``, u): hosts send it as a distributed table,
  the guest joins by rank and scores in its executors.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from fedspark.algorithms.hetero_lr._batches import Batch, batch_column, plan_digest
from fedspark.algorithms.hetero_lr._compute import PartyCompute
from fedspark.algorithms.hetero_lr._kernels import (
    LINEAR,
    RANK,
    FloatArray,
    encrypted_linear_batches,
    gradient_batches,
    linear_batches,
)
from fedspark.algorithms.hetero_lr._params import HeteroLRParams
from fedspark.arrow_bridge import (
    ArrowKernel,
    arrow_column,
    collect_arrow,
    column_view,
    fixed_binary_to_ints,
    ints_to_fixed_binary,
    map_in_arrow,
)
from fedspark.common import ProtocolError
from fedspark.crypto import PublicKey, merge_partials

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

BATCH, LABEL = "_batch", "_y"


def feature_column(j: int) -> str:
    return f"_x{j}"


class ExecutorCompute:
    """``PartyCompute`` over a persisted ``(_rank, _x…, [_y])`` frame (see the module docstring)."""

    def __init__(
        self,
        spark: SparkSession,
        frame: DataFrame,
        n_rows: int,
        n_features: int,
        public_key: PublicKey,
        frac_bits: int,
        x_frac_bits: int,
    ) -> None:
        self._spark = self.spark = spark
        self._public_key = public_key
        self._frac_bits = frac_bits
        self._frame = frame
        self._epoch_frame: DataFrame | None = None
        self._epoch: int | None = None
        self._x_frac_bits = x_frac_bits
        self._names = [feature_column(j) for j in range(n_features)]
        self._has_labels = LABEL in frame.columns
        self._batch_labels: tuple[int, int, FloatArray] | None = None
        self._storage: dict[str, int] = {}
        self.n_rows, self.n_features = n_rows, n_features

    # -- the plan ---------------------------------------------------------------------------------

    def start_epoch(self, seed: int, epoch: int, batch_size: int) -> None:
        """Assign this epoch's batches in the executors and keep the rows sorted by batch."""
        from pyspark import StorageLevel
        from pyspark.sql import functions as F

        if self._epoch == epoch:
            return
        kernel = functools.partial(batch_column, seed=seed, epoch=epoch, n_rows=self.n_rows, batch_size=batch_size)
        frame = (
            self._frame.withColumn(BATCH, arrow_column(kernel, "long", F.col(RANK)))
            .sortWithinPartitions(BATCH, RANK)
            .persist(StorageLevel.MEMORY_AND_DISK)
        )
        frame.count()  # materialise now, so the previous epoch's copy can go
        if self._epoch_frame is not None:
            self._epoch_frame.unpersist()
        self._epoch_frame, self._epoch = frame, epoch
        self._note_storage()

    def metrics(self) -> dict[str, int]:
        """The most the persisted copies held in executor memory and on disk (a table larger than
        the executors' storage memory spills instead of failing: ``table_disk_bytes`` > 0)."""
        return dict(self._storage)

    def _note_storage(self) -> None:
        context = self._spark.sparkContext._jsc.sc()  # the JVM's own block accounting
        infos = context.getRDDStorageInfo()
        memory, disk = sum(i.memSize() for i in infos), sum(i.diskSize() for i in infos)
        executors = self._spark.sparkContext._jvm.scala.jdk.javaapi.CollectionConverters.asJava(  # type: ignore[union-attr]
            context.statusStore().executorList(True))
        self._storage["storage_memory_limit_bytes"] = int(sum(e.maxMemory() for e in executors))
        self._storage["table_memory_bytes"] = max(self._storage.get("table_memory_bytes", 0), int(memory))
        self._storage["table_disk_bytes"] = max(self._storage.get("table_disk_bytes", 0), int(disk))

    def plan_digest(self) -> str:
        """:func:`._batches.plan_digest` of the current epoch, counted over this party's own rows."""
        from pyspark.sql import functions as F

        frame = self._require_epoch()
        per_batch = frame.groupBy(BATCH).agg(F.count("*").alias("rows"), F.sum(RANK).alias("ranks"))
        counts = collect_arrow(per_batch)  # bounded: one row per batch of the epoch
        return plan_digest(zip(*(counts.column(c).to_pylist() for c in (BATCH, "rows", "ranks")), strict=True))

    # -- per batch --------------------------------------------------------------------------------

    def linear(self, batch: Batch, w: FloatArray) -> FloatArray:
        keep = [LABEL] if self._has_labels else []
        kernel = functools.partial(linear_batches, rank=RANK, names=self._names, w=np.asarray(w, np.float64),
                                   out=LINEAR, keep=keep)
        table = self._collect_batch(batch, kernel, f"{RANK} long, {LINEAR} double" + "".join(
            f", {k} double" for k in keep), keep)
        if self._has_labels:
            self._batch_labels = (batch.epoch, batch.index, column_view(table, LABEL).copy())
        return column_view(table, LINEAR).copy()

    def encrypted_linear(self, batch: Batch, w: FloatArray) -> tuple[FloatArray, list[int]]:
        """u and [[u]] from one ``mapInArrow`` pass over the batch's rows (no round trip through the driver)."""
        kernel = functools.partial(encrypted_linear_batches, rank=RANK, names=self._names,
                                   w=np.asarray(w, np.float64), out=LINEAR, n=self._public_key.n,
                                   frac_bits=self._frac_bits)
        table = self._collect_batch(batch, kernel, f"{RANK} long, {LINEAR} double, enc binary", [])
        return column_view(table, LINEAR).copy(), fixed_binary_to_ints(table.column("enc"))

    def _collect_batch(self, batch: Batch, kernel: ArrowKernel, schema: str, keep: list[str]) -> pa.Table:
        """One batch's rows through ``kernel``, back in rank order, checked against the plan's ranks."""
        frame = self._rows(batch).select(RANK, *self._names, *keep)
        table = collect_arrow(map_in_arrow(frame, kernel, schema))  # bounded: one batch's rows (<= 500k)
        table = table.sort_by(RANK).combine_chunks()
        ranks = table.column(RANK).to_numpy()
        if len(ranks) != len(batch.rows) or not np.array_equal(ranks, batch.rows):
            raise ProtocolError(
                f"batch {batch.index} of epoch {batch.epoch + 1}: the executors found {len(ranks)} rows, "
                f"the plan has {len(batch.rows)}; this party's rows are not ranked as the plan assumes"
            )
        return table

    def labels(self, batch: Batch) -> FloatArray:
        """The batch's labels, read by the ``linear`` call of the same batch."""
        if self._batch_labels is None or self._batch_labels[:2] != (batch.epoch, batch.index):
            raise RuntimeError("labels(batch) follows linear(batch, w) of the same batch")
        return self._batch_labels[2]

    def gradient(self, batch: Batch, enc: Sequence[int]) -> list[int]:
        width = self._public_key.ciphertext_width
        kernel = functools.partial(
            gradient_batches, n=self._public_key.n, rank=RANK, names=self._names, x_frac_bits=self._x_frac_bits,
            ranks=np.asarray(batch.rows, np.int64), enc=ints_to_fixed_binary(enc, width),
        )
        frame = self._rows(batch).select(RANK, *self._names)
        out = collect_arrow(map_in_arrow(frame, kernel, "feature int, partial binary"))  # bounded: tasks x features
        features = out.column("feature").to_numpy().tolist()
        return merge_partials(self._public_key, features, fixed_binary_to_ints(out.column("partial")), self.n_features)

    # -- whole table ------------------------------------------------------------------------------

    def partial_scores(self, w: FloatArray) -> DataFrame:
        """(``_rank``, u = X·w) for every row, as a DataFrame (a host sends it as a distributed table)."""
        kernel = functools.partial(linear_batches, rank=RANK, names=self._names, w=np.asarray(w, np.float64),
                                   out=LINEAR)
        return map_in_arrow(self._frame.select(RANK, *self._names), kernel, f"{RANK} long, {LINEAR} double")

    def scores(self, w: FloatArray, host_partials: Sequence[DataFrame | FloatArray]) -> DataFrame:
        """(label, score) of every row: this party's u (with its label, one pass) plus every host's, joined by
        rank as sort-merge joins (a host's table is as large as this one: never a broadcast), sigmoid."""
        from pyspark.sql import functions as F

        kernel = functools.partial(linear_batches, rank=RANK, names=self._names, w=np.asarray(w, np.float64),
                                   out=LINEAR, keep=[LABEL])
        total = map_in_arrow(self._frame.select(RANK, *self._names, LABEL), kernel,
                             f"{RANK} long, {LINEAR} double, {LABEL} double")
        for i, partial in enumerate(host_partials):
            frame = partial if not isinstance(partial, np.ndarray) else self._array_frame(partial)
            theirs = frame.select(RANK, F.col(LINEAR).alias(f"_h{i}")).hint("merge")
            total = total.join(theirs, RANK).select(RANK, LABEL, (F.col(LINEAR) + F.col(f"_h{i}")).alias(LINEAR))
        return total.select(F.col(LABEL).alias("label"), (1.0 / (1.0 + F.exp(-F.col(LINEAR)))).alias("score"))

    def release(self) -> None:
        """Drop this party's persisted copies (the end of training)."""
        if self._epoch_frame is not None:
            self._epoch_frame.unpersist()
        self._frame.unpersist()

    def _rows(self, batch: Batch) -> DataFrame:
        from pyspark.sql import functions as F

        if self._epoch != batch.epoch:
            raise RuntimeError(f"batch of epoch {batch.epoch} asked during epoch {self._epoch}")
        return self._require_epoch().where(F.col(BATCH) == F.lit(batch.index))

    def _require_epoch(self) -> DataFrame:
        if self._epoch_frame is None:
            raise RuntimeError("start_epoch first")
        return self._epoch_frame

    def _array_frame(self, values: FloatArray) -> DataFrame:
        if values.shape != (self.n_rows,):
            raise ProtocolError(f"partial scores of shape {values.shape}, expected ({self.n_rows},)")
        table = pa.table({RANK: np.arange(self.n_rows, dtype=np.int64), LINEAR: values.astype(np.float64)})
        return self._spark.createDataFrame(table)


def executor_factory(
    spark: SparkSession, frame: DataFrame, n_rows: int, n_features: int, params: HeteroLRParams
) -> Callable[[PublicKey], PartyCompute]:
    """A factory for ``train_guest``/``train_host`` over a persisted ``(_rank, _x…, [_y])`` frame."""

    def make(public_key: PublicKey) -> PartyCompute:
        return ExecutorCompute(spark, frame, n_rows, n_features, public_key, params.frac_bits, params.x_frac_bits)

    return make
