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
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, cast

import pyarrow as pa

from fedspark.arrow_bridge._binary import fixed_to_variable_binary

if TYPE_CHECKING:
    from pyspark.sql import DataFrame
    from pyspark.sql.types import StructType

ArrowKernel = Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]
"""A pure function over record batches: no session, no network, no globals."""


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
    return df.mapInArrow(functools.partial(_run_kernel, kernel), schema)


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
