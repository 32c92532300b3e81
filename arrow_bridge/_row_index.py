"""Number a DataFrame's rows 0..n-1 in its current order, without a single-partition window.

Vertical scoring and training pair rows across parties by position: row i is
the same person everywhere once the id columns are aligned and sorted the
same way. Spark has no cheap positional index (``row_number`` over an
unpartitioned window moves every row to one task; ``zipWithIndex`` pickles
rows). Instead: checkpoint the ordered frame (so both passes see the same
partitions), count rows per partition with one small job, then add
``offset[partition] + position`` in a second ``mapInArrow`` pass.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from fedspark.arrow_bridge._mapping import collect_arrow, map_in_arrow

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


def with_row_index(df: DataFrame, name: str = "_row") -> DataFrame:
    """``df`` with a leading int64 column ``name`` = the row's position in ``df``'s order.

    ``df`` is local-checkpointed first: a sort's range boundaries come from a
    sample, and recomputing the plan between the counting pass and the
    numbering pass could otherwise move rows between partitions.
    """
    from pyspark.sql.types import LongType, StructField, StructType

    if name in df.columns:
        raise ValueError(f"column {name!r} already exists")
    fixed = df.localCheckpoint(eager=True)
    counts = collect_arrow(map_in_arrow(fixed, _with_partition(_count_rows), "partition int, n long")).to_pydict()
    sizes = dict(zip(counts["partition"], counts["n"]))
    offsets: dict[int, int] = {}
    total = 0
    for partition in sorted(sizes):
        offsets[partition] = total
        total += sizes[partition]
    schema = StructType([StructField(name, LongType(), False), *fixed.schema.fields])
    kernel = _with_partition(functools.partial(_number_rows, offsets=offsets, name=name))
    return map_in_arrow(fixed, kernel, schema)


def _count_rows(partition: int, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    n = sum(batch.num_rows for batch in batches)
    yield pa.record_batch({"partition": pa.array([partition], pa.int32()), "n": pa.array([n], pa.int64())})


def _number_rows(
    partition: int, batches: Iterator[pa.RecordBatch], *, offsets: dict[int, int], name: str
) -> Iterator[pa.RecordBatch]:
    start = offsets.get(partition, 0)
    for batch in batches:
        index = pa.array(np.arange(start, start + batch.num_rows, dtype=np.int64))
        start += batch.num_rows
        yield pa.RecordBatch.from_arrays([index, *batch.columns], names=[name, *batch.schema.names])


def _with_partition(
    kernel: Callable[[int, Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]],
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """Give a kernel the Spark partition it runs on (the only Spark state it needs)."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from pyspark import TaskContext

        context = TaskContext.get()
        partition = context.partitionId() if context is not None else 0
        return kernel(partition, batches)

    return run
