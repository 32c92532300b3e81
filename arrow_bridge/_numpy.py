"""numpy arrays over Arrow columns, copying only where the layout forces it.

A float64 Arrow column without nulls *is* a C array of doubles, so numpy can
use its buffer directly: kernels do their math on a view and allocate nothing
per batch. Nulls (a validity bitmap numpy cannot express) and several chunks
(several buffers) make a view impossible; we refuse then rather than copy
behind the caller's back, and say which one-time copy fixes it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from fedspark.arrow_bridge._errors import ColumnViewError

ArrowTabular = pa.RecordBatch | pa.Table


def column_view(data: ArrowTabular, name: str) -> np.ndarray:
    """Return column ``name`` as a read-only float64 numpy array sharing Arrow's memory.

    Raises :class:`ColumnViewError` if the column is missing, is not float64
    (a view cannot change the type), has nulls, or (for a table) is split into
    several chunks; in the last case call ``table.combine_chunks()`` once (one
    copy) and view that. The view is read-only because Arrow buffers are
    immutable and may be shared with other tables.
    """
    column = _column(data, name)
    if isinstance(column, pa.ChunkedArray):
        if column.num_chunks == 0:
            return np.empty(0, dtype=np.float64)
        if column.num_chunks > 1:
            raise ColumnViewError(
                name,
                f"it is split into {column.num_chunks} chunks, which a single numpy view "
                "cannot span; call table.combine_chunks() once (one copy) and view the result",
            )
        column = column.chunk(0)
    if not pa.types.is_float64(column.type):
        raise ColumnViewError(
            name, f"type is {column.type}, not double; a zero-copy view cannot convert types"
        )
    if column.null_count:
        raise ColumnViewError(
            name,
            f"it has {column.null_count} null value(s), which numpy cannot represent; "
            "fill or reject them first (storage.read_table does)",
        )
    return column.to_numpy(zero_copy_only=True)


def feature_matrix(data: ArrowTabular, names: list[str]) -> np.ndarray:
    """Copy columns ``names`` into one C-contiguous ``(n_rows, len(names))`` float64 matrix.

    This is the one copy fedspark makes to get row-major features for matrix
    products (``X @ w``); Arrow stores columns apart, so a row-major matrix
    cannot be a view. Each chunk is written straight into its slice of the
    result (no ``combine_chunks`` first). Integer columns are converted while
    copying; nulls or non-numeric columns raise :class:`ColumnViewError`.
    """
    matrix = np.empty((data.num_rows, len(names)), dtype=np.float64)
    for j, name in enumerate(names):
        column = _column(data, name)
        if not (pa.types.is_floating(column.type) or pa.types.is_integer(column.type)):
            raise ColumnViewError(name, f"type is {column.type}, not a number")
        if column.null_count:
            raise ColumnViewError(
                name, f"it has {column.null_count} null value(s); fill or reject them first"
            )
        chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
        row = 0
        for chunk in chunks:
            matrix[row : row + len(chunk), j] = chunk.to_numpy(zero_copy_only=False)
            row += len(chunk)
    return matrix


def _column(data: ArrowTabular, name: str) -> pa.Array[Any] | pa.ChunkedArray[Any]:
    """Look up a column, naming the available ones when it is absent."""
    if name not in data.schema.names:
        available = ", ".join(data.schema.names) or "none"
        raise ColumnViewError(name, f"no such column (columns: {available})")
    return data.column(name)
