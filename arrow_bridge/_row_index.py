"""Number a DataFrame's rows 0..n-1 in its current order, without a single-partition window.

Vertical scoring and training pair rows across parties by position: row i is
the same person everywhere once the id columns are aligned and sorted the
same way. Spark has no cheap positional index (``row_number`` over an
unpartitioned window moves every row to one task; ``zipWithIndex`` pickles
rows). Instead: checkpoint the ordered frame (so both passes see the same
partitions), count rows per partition with one small aggregation, then add
``offset[partition] + position`` as a column expression. Both passes stay in
the JVM: no row goes to Python just to be counted or numbered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fedspark.arrow_bridge._mapping import collect_arrow

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

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
    partition = F.spark_partition_id()
    counts = collect_arrow(fixed.groupBy(partition.alias("partition")).count()).to_pydict()
    sizes = dict(zip(counts["partition"], counts["count"]))
    offsets, total = [], 0
    for p in range(max(sizes, default=-1) + 1):
        offsets.append(total)
        total += sizes.get(p, 0)
    if not offsets:
        return fixed.select(F.lit(0).cast("long").alias(name), *fixed.columns).limit(0)
    offset = F.element_at(F.array(*(F.lit(o).cast("long") for o in offsets)), partition + 1)
    position = F.monotonically_increasing_id() - F.shiftleft(partition.cast("long"), _RECORD_BITS)
    quoted = [F.col("`" + c.replace("`", "``") + "`") for c in fixed.columns]
    return fixed.select((offset + position).alias(name), *quoted)
