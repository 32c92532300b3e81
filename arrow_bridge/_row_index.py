"""Row positions that parties agree on without sending ids: numbering, and a shared key order.

Vertical algorithms pair rows across parties by position: row i is the same
person everywhere once the ids are aligned and ordered the same way.

- :func:`with_row_index` numbers a frame's rows 0..n-1 in its current order.
  Spark has no cheap positional index (``row_number`` over an unpartitioned
  window moves every row to one task; ``zipWithIndex`` pickles rows). Instead:
  checkpoint the ordered frame (so both passes see the same partitions), count
  rows per partition with one small aggregation, then add
  ``offset[partition] + position`` as a column expression, all in the JVM.
- :func:`in_key_order` puts rows in an order every party holding the same ids
  reproduces on its own: bucket, then a salted 64-bit hash of the id
  (:func:`order_key`). The buckets' first rows come from a histogram
  (:func:`order_cell`, :func:`bucket_offsets`) that a party can fold into a
  pass it makes anyway, so the order costs one shuffle and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from fedspark.arrow_bridge._mapping import collect_arrow
from fedspark.common import column_ref

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

_RECORD_BITS = 33
"""``monotonically_increasing_id()`` is ``partition << 33 | position in partition``."""


def with_row_index(df: DataFrame, name: str = "_row") -> DataFrame:
    """``df`` with a leading int64 column ``name`` = the row's position in ``df``'s order.

    ``df`` is local-checkpointed first: a sort's range boundaries come from a
    sample, and recomputing the plan between the counting pass and the
    numbering pass could otherwise move rows between partitions. The index is
    computed directly over the checkpointed partitions, where Spark's partition
    id and per-partition position are stable.
    """
    from pyspark.sql import functions as F

    if name in df.columns:
        raise ValueError(f"column {name!r} already exists")
    fixed = df.localCheckpoint(eager=True)
    sizes = _sizes(fixed.groupBy(F.spark_partition_id().alias("partition")).count())
    return _numbered(fixed, sizes, max(sizes, default=-1) + 1, name)


ROWS_PER_BUCKET = 1_000_000
"""Target rows per bucket of :func:`in_key_order` (a task's share of a large scoring table)."""

ORDER_CELLS = 1024
"""Cells of the bucket histogram (:func:`order_cell`): any power-of-two bucket count up to this divides it."""


def order_key(id_column: str, salt: bytes) -> Column:
    """A 64-bit key per id, ``xxhash64(salt, id)`` of the id's text: the order parties holding the same ids share.

    Sorting by a long is cheaper than by a string, and a fresh salt per job
    keeps the order unrelated to the ids' own order (and to any file's).
    """
    from pyspark.sql import functions as F

    return F.xxhash64(F.lit(bytearray(salt)), F.col(id_column).cast("string"))


def order_cell(key: Column) -> Column:
    """The histogram cell of a key: Spark's hash-partition id of it among :data:`ORDER_CELLS` partitions.

    Since every bucket count :func:`buckets_for` picks divides ``ORDER_CELLS``,
    a row's bucket is its cell modulo the bucket count: one aggregation over
    the cells gives the size of every bucket, whatever the count turns out to be.
    """
    from pyspark.sql import functions as F

    return F.pmod(F.hash(key), F.lit(ORDER_CELLS))


def buckets_for(n_rows: int) -> int:
    """The bucket count :func:`in_key_order` uses for ``n_rows``: a function of the count alone (a power of
    two, about :data:`ROWS_PER_BUCKET` rows each), so parties holding the same ids choose the same one."""
    wanted = max(1, -(-n_rows // ROWS_PER_BUCKET))
    return min(ORDER_CELLS, 1 << (wanted - 1).bit_length())


def in_key_order(df: DataFrame, key_column: str, buckets: int) -> DataFrame:
    """``df`` hash-partitioned by key into ``buckets`` partitions, sorted by key in each.

    An order any party holding the same keys reproduces exactly, with one
    shuffle and no sampling pass: Spark's Murmur3 hash of the key picks the
    partition (``pmod(hash(key), buckets)``, which is :func:`order_cell` modulo
    ``buckets``), and Spark keeps the explicit partition count (adaptive
    execution never coalesces ``repartition(n, col)``), so a task's partition
    id is its bucket. Bucket b starts at row ``bucket_offsets(...)[b]``.
    """
    from pyspark.sql import functions as F

    if ORDER_CELLS % buckets:
        raise ValueError(f"{buckets} buckets do not divide the {ORDER_CELLS} histogram cells")
    return df.repartition(buckets, F.col(key_column)).sortWithinPartitions(key_column)


def bucket_offsets(cell_counts: Mapping[int, int], buckets: int) -> list[int]:
    """The first row of each bucket of :func:`in_key_order`, from the rows per :func:`order_cell`."""
    sizes = [0] * buckets
    for cell, count in cell_counts.items():
        sizes[cell % buckets] += count
    offsets, total = [], 0
    for size in sizes:
        offsets.append(total)
        total += size
    return offsets


def _sizes(counts: DataFrame) -> dict[int, int]:
    """Rows per partition from a (partition, count) aggregation."""
    columns = collect_arrow(counts).to_pydict()
    return dict(zip(columns["partition"], columns["count"]))


def _numbered(df: DataFrame, sizes: dict[int, int], partitions: int, name: str) -> DataFrame:
    """``df`` with ``name`` = offset of its partition (rows in the partitions before) + position in it.

    Evaluated directly over ``df``'s partitions, whose ids and row order must
    be those ``sizes`` counted.
    """
    from pyspark.sql import functions as F

    if partitions == 0:
        return df.select(F.lit(0).cast("long").alias(name), *(_column(c) for c in df.columns)).limit(0)
    offsets, total = [], 0
    for p in range(partitions):
        offsets.append(total)
        total += sizes.get(p, 0)
    partition = F.spark_partition_id()
    offset = F.element_at(F.array(*(F.lit(o).cast("long") for o in offsets)), partition + 1)
    position = F.monotonically_increasing_id() - F.shiftleft(partition.cast("long"), _RECORD_BITS)
    return df.select((offset + position).alias(name), *(_column(c) for c in df.columns))


def _column(name: str) -> Column:
    from pyspark.sql import functions as F

    return F.col(column_ref(name))
