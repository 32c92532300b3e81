"""map_in_arrow / collect_arrow: a kernel gives the same answer on hand-built
batches and on Spark, and ciphertext-style binary columns survive Spark."""

from __future__ import annotations

import functools
import sys
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from pyspark import cloudpickle

from fedspark.arrow_bridge import (
    collect_arrow,
    fixed_binary_to_ints,
    ints_to_fixed_binary,
    map_in_arrow,
)

# Spark executors cannot import test modules, so kernels defined here travel by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

SCHEMA = pa.schema([("key", pa.int64()), ("x", pa.float64())])
N_2048 = (1 << 2047) | 0x1F3B5D7F  # any 2048-bit odd number stands in for a Paillier n
N_SQUARED = N_2048 * N_2048
WIDTH = (N_SQUARED.bit_length() + 7) // 8


def scale_kernel(batches: Iterator[pa.RecordBatch], *, factor: float) -> Iterator[pa.RecordBatch]:
    """Multiply x by factor, keeping nulls as nulls."""
    for batch in batches:
        scaled = pc.multiply(batch.column("x"), pa.scalar(factor))
        yield pa.RecordBatch.from_arrays([batch.column("key"), scaled], schema=SCHEMA)


def big_value(key: int) -> int:
    """A deterministic value below n^2 that covers both ends of the range."""
    if key == 0:
        return 0
    if key == 1:
        return N_SQUARED - 1
    return (key * 0x9E3779B97F4A7C15 ** 40) % N_SQUARED


def encode_kernel(batches: Iterator[pa.RecordBatch], *, width: int) -> Iterator[pa.RecordBatch]:
    """Emit one fixed-width ciphertext-like value per row."""
    for batch in batches:
        keys = batch.column("key").to_pylist()
        values = ints_to_fixed_binary([big_value(k) for k in keys], width)
        yield pa.RecordBatch.from_arrays([batch.column("key"), values], names=["key", "c"])


def check_kernel(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Decode the binary column on the executor and report whether each value survived."""
    for batch in batches:
        keys = batch.column("key").to_pylist()
        decoded = fixed_binary_to_ints(batch.column("c"))
        ok = [value == big_value(k) for k, value in zip(keys, decoded, strict=True)]
        yield pa.RecordBatch.from_arrays([batch.column("key"), pa.array(ok)], names=["key", "ok"])


def run_local(kernel: Any, batches: list[pa.RecordBatch]) -> list[pa.RecordBatch]:
    return list(kernel(iter(batches)))


def test_kernel_on_empty_iterator_yields_nothing() -> None:
    assert run_local(functools.partial(scale_kernel, factor=2.0), []) == []


def test_kernel_on_empty_batch_keeps_schema() -> None:
    empty = pa.RecordBatch.from_pylist([], schema=SCHEMA)
    (out,) = run_local(functools.partial(scale_kernel, factor=2.0), [empty])
    assert out.num_rows == 0
    assert out.schema == SCHEMA


def test_kernel_keeps_nulls() -> None:
    batch = pa.RecordBatch.from_pydict({"key": [1, 2, 3], "x": [1.5, None, -2.0]}, schema=SCHEMA)
    (out,) = run_local(functools.partial(scale_kernel, factor=2.0), [batch])
    assert out.column("x").to_pylist() == [3.0, None, -4.0]


def test_same_result_on_spark_as_on_batches(spark: Any) -> None:
    table = pa.table(
        {"key": list(range(50)), "x": [None if k % 7 == 0 else k / 4 for k in range(50)]}, schema=SCHEMA
    )
    kernel = functools.partial(scale_kernel, factor=-3.0)
    expected = pa.Table.from_batches(run_local(kernel, table.to_batches(max_chunksize=16)))

    df = spark.createDataFrame(table).repartition(3)
    got = collect_arrow(map_in_arrow(df, kernel, "key long, x double")).sort_by("key")

    assert got.column("key").to_pylist() == expected.column("key").to_pylist()
    assert got.column("x").to_pylist() == expected.column("x").to_pylist()


def test_collect_arrow_returns_arrow_table(spark: Any) -> None:
    got = collect_arrow(spark.range(3))
    assert isinstance(got, pa.Table)
    assert got.column("id").to_pylist() == [0, 1, 2]


def test_fixed_binary_round_trip_through_spark_binary(spark: Any) -> None:
    df = spark.range(0, 40, numPartitions=2).withColumnRenamed("id", "key")
    encoded = map_in_arrow(df, functools.partial(encode_kernel, width=WIDTH), "key long, c binary")
    assert dict(encoded.dtypes)["c"] == "binary"

    # Driver side: Spark hands the column back as variable-width binary.
    table = collect_arrow(encoded).sort_by("key")
    keys = table.column("key").to_pylist()
    assert fixed_binary_to_ints(table.column("c")) == [big_value(k) for k in keys]
    assert big_value(0) == 0 and big_value(1) == N_SQUARED - 1 and WIDTH == 512

    # Executor side: a second kernel decodes what the first one wrote.
    checked = collect_arrow(map_in_arrow(encoded, check_kernel, "key long, ok boolean"))
    assert checked.num_rows == 40
    assert all(checked.column("ok").to_pylist())


def test_map_in_arrow_refuses_non_callable(spark: Any) -> None:
    with pytest.raises(TypeError, match="callable"):
        map_in_arrow(spark.range(1), "not a kernel", "id long")  # type: ignore[arg-type]


def _sum_named(batches: Iterator[pa.RecordBatch], names: list[str]) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        assert batch.schema.names == ["id", *names]  # the kernel sees the table's own names
        total = functools.reduce(pc.add, [batch.column(name) for name in names])
        yield pa.RecordBatch.from_arrays([batch.column("id"), total], names=["id", "total"])


def test_map_in_arrow_takes_column_names_with_dots_spaces_and_backticks(spark: Any) -> None:
    """PySpark's own mapInArrow reads "a.b" as field b of a struct a; map_in_arrow must not."""
    names = ["income.monthly", "age years", "debt`ratio"]
    df = spark.createDataFrame([(i, float(i), 2.0 * i, 3.0 * i) for i in range(50)], ["id", *names]).repartition(3)
    out = map_in_arrow(df, functools.partial(_sum_named, names=names), "id long, total double")
    assert sorted((r["id"], r["total"]) for r in out.collect()) == [(i, 6.0 * i) for i in range(50)]


def test_with_row_index_numbers_rows_in_order_across_partitions(spark: Any) -> None:
    from pyspark.sql import functions as F

    from fedspark.arrow_bridge import with_row_index

    df = spark.range(0, 5000, numPartitions=4).select(F.col("id"), (F.col("id") * 2).alias("v"))
    shuffled = df.orderBy(F.sha2(F.col("id").cast("string"), 256))
    numbered = collect_arrow(with_row_index(shuffled, "_row"))
    expected = collect_arrow(shuffled)
    assert numbered.column_names == ["_row", "id", "v"]
    order = numbered.column("_row").to_numpy()
    assert sorted(order.tolist()) == list(range(5000))
    by_row = numbered.sort_by("_row")
    assert by_row.column("id").to_pylist() == expected.column("id").to_pylist()


def test_with_row_index_skips_empty_partitions_and_handles_an_empty_frame(spark: Any) -> None:
    from pyspark.sql import functions as F

    from fedspark.arrow_bridge import with_row_index

    df = spark.range(0, 300, numPartitions=6).where((F.col("id") < 100) | (F.col("id") >= 250))
    numbered = collect_arrow(with_row_index(df, "_row")).sort_by("_row")
    assert numbered.column("_row").to_pylist() == list(range(150))
    assert numbered.column("id").to_pylist() == [*range(100), *range(250, 300)]
    empty = collect_arrow(with_row_index(spark.range(0, 0), "_row"))
    assert empty.num_rows == 0 and empty.column_names == ["_row", "id"]


def test_key_order_is_the_same_for_any_layout_of_the_same_ids(spark: Any) -> None:
    """Two parties holding the same ids in different partitions and orders put each id in the same row;
    the bucket histogram gives where each bucket starts."""
    from pyspark.sql import functions as F

    from fedspark.arrow_bridge import ORDER_CELLS, bucket_offsets, in_key_order, order_cell, order_key

    ids = spark.range(0, 3000, numPartitions=5).select(F.col("id").cast("string").alias("id"))
    guest = ids.withColumn("g", F.lit(1.0))
    host = ids.orderBy(F.sha2("id", 256)).repartition(7).withColumn("h", F.lit(2.0))
    salt = b"s" * 32
    ordered = [in_key_order(df.withColumn("_key", order_key("id", salt)), "_key", 4) for df in (guest, host)]
    assert all(df.rdd.getNumPartitions() == 4 for df in ordered)
    a, b = (collect_arrow(df.select("_key", "id", F.spark_partition_id().alias("p"))) for df in ordered)
    assert a.num_rows == 3000 and a.equals(b)
    cells = {r["c"]: r["count"] for r in collect_arrow(guest.groupBy(order_cell(order_key("id", salt)).alias("c")).count()).to_pylist()}
    assert all(0 <= c < ORDER_CELLS for c in cells)
    offsets = bucket_offsets(cells, 4)
    rows = a.to_pylist()
    for p in range(4):
        mine = [r for r in rows if r["p"] == p]
        first = next(i for i, r in enumerate(rows) if r["p"] == p)
        assert first == offsets[p]  # partitions arrive in order, bucket p starts where the histogram says
        assert [r["_key"] for r in mine] == sorted(r["_key"] for r in mine)
    # Another salt, another order: the order says nothing about the ids' own.
    other = collect_arrow(in_key_order(guest.withColumn("_key", order_key("id", b"t" * 32)), "_key", 4).select("id"))
    assert other.column("id").to_pylist() != a.column("id").to_pylist()


def test_bucket_count_is_a_power_of_two_dividing_the_histogram() -> None:
    from fedspark.arrow_bridge import ORDER_CELLS, buckets_for

    assert [buckets_for(n) for n in (0, 1, 1_000_000, 1_000_001, 2_000_001, 10_000_000)] == [1, 1, 1, 2, 4, 16]
    assert buckets_for(10**12) == ORDER_CELLS and all(ORDER_CELLS % buckets_for(10**k) == 0 for k in range(13))
