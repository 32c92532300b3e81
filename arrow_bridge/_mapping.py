"""Run pure Arrow kernels on Spark executors and collect results as Arrow.

Spark's Python data path has two shapes: rows pickled one at a time
(``rdd.map``) and Arrow record batches (``mapInArrow``). fedspark only uses the
second: a batch of 10k rows crosses the JVM/Python boundary as a few columnar
buffers instead of 10k pickled tuples. A *kernel* is a pure function from an
iterator of batches to an iterator of batches; it opens no session, socket or
global state, so it can be tested on hand-built batches and runs unchanged on
any executor. Parameters are bound with :func:`functools.partial`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, cast

import pyarrow as pa

from fedspark.arrow_bridge._binary import fixed_to_variable_binary

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame
    from pyspark.sql.types import StructType

ArrowKernel = Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]
"""A pure function over record batches: no session, no network, no globals."""

ColumnKernel = Callable[[Iterator[tuple[pa.Array, ...]]], Iterator[pa.Array]]
"""A pure function from a task's batches of input columns to one output column per batch (same lengths)."""


def map_in_arrow(df: DataFrame, kernel: ArrowKernel, schema: StructType | str) -> DataFrame:
    """Apply ``kernel`` to every partition of ``df`` as Arrow record batches.

    The kernel may emit ``fixed_size_binary`` columns (how fedspark holds
    ciphertexts); Spark has no fixed-width binary type, so such columns are
    handed to Spark as ``binary`` (declare them ``binary`` in ``schema``).
    The conversion shares the value bytes and only adds an offsets buffer.
    Read them back with :func:`as_fixed_binary` or :func:`fixed_binary_to_ints`.
    """
    if not callable(kernel):
        raise TypeError(f"kernel must be callable, got {type(kernel).__name__}")
    names = df.columns
    plain = [name if _PLAIN_NAME.fullmatch(name) else f"_fedspark_column_{i}" for i, name in enumerate(names)]
    if plain != names:
        # PySpark's mapInArrow looks each column up by its unquoted name, so "income.monthly" would
        # be read as field "monthly" of a struct: cross under plain names, renamed back for the kernel.
        df = df.toDF(*plain)
        kernel = functools.partial(_with_names, kernel, names)
    return df.mapInArrow(functools.partial(_run_kernel, kernel), schema)


_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _with_names(kernel: ArrowKernel, names: list[str], batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """``kernel`` over batches whose columns carry the table's own names again (no data is copied)."""
    return kernel(batch.rename_columns(names) for batch in batches)


def arrow_column(kernel: ColumnKernel, return_type: str, *columns: Column) -> Column:
    """A column that ``kernel`` computes from ``columns``, one task's batches in order (an iterator Arrow UDF).

    Unlike :func:`map_in_arrow`, only ``columns`` cross to Python: the row's
    other columns (string ids, say) stay in the JVM and are joined back to the
    kernel's output by position, which saves converting them twice. One kernel
    call sees all of a task's batches, so it can keep state across them.
    """
    from pyspark.sql.functions import arrow_udf  # type: ignore[attr-defined]  # new in Spark 4.1, not in the stubs
    from pyspark.util import PythonEvalType

    if not callable(kernel):
        raise TypeError(f"kernel must be callable, got {type(kernel).__name__}")
    run = functools.partial(_run_column_kernel, kernel, len(columns))
    udf = arrow_udf(run, return_type, PythonEvalType.SQL_SCALAR_ARROW_ITER_UDF)  # type: ignore[call-overload]
    return udf(*columns)  # type: ignore[no-any-return]


def _run_column_kernel(kernel: ColumnKernel, arity: int, batches: Iterator[pa.Array | tuple[pa.Array, ...]]) -> Iterator[pa.Array]:
    """Executor-side wrapper: Spark hands a one-column UDF bare arrays, the kernel always gets tuples."""
    if arity == 1:
        return kernel((column,) for column in batches)  # type: ignore[misc]
    return kernel(batches)  # type: ignore[arg-type]


def collect_arrow(df: DataFrame) -> pa.Table:
    """Bring a small DataFrame to the driver as an Arrow table.

    Uses Spark's Arrow collection (``DataFrame.toArrow``), which ships
    executor batches as Arrow IPC: no Row objects, no pandas in between. The
    whole result lands in driver memory, so use it for results and samples,
    never for a party's full table of unknown size.
    """
    return df.toArrow()


def _run_kernel(kernel: ArrowKernel, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Executor-side wrapper: adapt each output batch to what Spark accepts."""
    for batch in kernel(batches):
        yield _spark_compatible(batch)


def _spark_compatible(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Replace fixed-width binary columns by variable ones (Spark rejects the former)."""
    if not any(pa.types.is_fixed_size_binary(field.type) for field in batch.schema):
        return batch
    columns = [
        fixed_to_variable_binary(cast(pa.FixedSizeBinaryArray, column)) if pa.types.is_fixed_size_binary(column.type) else column
        for column in batch.columns
    ]
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)
