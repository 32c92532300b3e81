"""column_view shares Arrow's memory or explains why it cannot; feature_matrix copies once."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from fedspark.arrow_bridge import ColumnViewError, column_view, feature_matrix


def data_buffer(array: pa.Array) -> np.ndarray:  # type: ignore[type-arg]
    """The float64 values buffer of an Arrow array, as numpy (for shares_memory)."""
    return np.frombuffer(array.buffers()[1], dtype=np.float64)


def test_view_of_batch_column_shares_memory() -> None:
    values = pa.array([1.0, 2.5, -3.0])
    batch = pa.RecordBatch.from_arrays([values], names=["x"])
    view = column_view(batch, "x")
    assert view.dtype == np.float64
    assert view.tolist() == [1.0, 2.5, -3.0]
    assert np.shares_memory(view, data_buffer(values))
    assert not view.flags.writeable


def test_view_of_single_chunk_table_column_shares_memory() -> None:
    values = pa.array([0.5, 1.5])
    table = pa.table({"x": values})
    assert np.shares_memory(column_view(table, "x"), data_buffer(values))


def test_view_of_sliced_batch_starts_at_the_slice() -> None:
    values = pa.array([float(i) for i in range(10)])
    batch = pa.RecordBatch.from_arrays([values], names=["x"]).slice(4, 3)
    view = column_view(batch, "x")
    assert view.tolist() == [4.0, 5.0, 6.0]
    assert np.shares_memory(view, data_buffer(values))


def test_view_of_empty_table() -> None:
    table = pa.table({"x": pa.array([], pa.float64())})
    assert column_view(table, "x").shape == (0,)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (pa.table({"x": pa.array([1.0, None])}), "1 null value"),
        (pa.table({"x": pa.chunked_array([[1.0], [2.0]])}), "combine_chunks"),
        (pa.table({"x": pa.array([1, 2])}), "not double"),
        (pa.table({"y": pa.array([1.0])}), "no such column"),
    ],
    ids=["nulls", "chunks", "int64", "missing"],
)
def test_view_refusals_explain_themselves(data: pa.Table, message: str) -> None:
    with pytest.raises(ColumnViewError, match=message) as caught:
        column_view(data, "x")
    assert caught.value.column == "x"
    assert isinstance(caught.value, ValueError)


def test_view_after_combine_chunks() -> None:
    table = pa.table({"x": pa.chunked_array([[1.0], [2.0, 3.0]])}).combine_chunks()
    assert column_view(table, "x").tolist() == [1.0, 2.0, 3.0]


def test_feature_matrix_is_c_contiguous_rows_by_features() -> None:
    table = pa.Table.from_batches(
        [
            pa.RecordBatch.from_pydict({"a": [1.0, 2.0], "b": [10, 20], "c": [0.1, 0.2]}),
            pa.RecordBatch.from_pydict({"a": [3.0], "b": [30], "c": [0.3]}),
        ]
    )
    matrix = feature_matrix(table, ["c", "a", "b"])
    assert matrix.flags.c_contiguous
    assert matrix.dtype == np.float64
    np.testing.assert_array_equal(matrix, [[0.1, 1.0, 10.0], [0.2, 2.0, 20.0], [0.3, 3.0, 30.0]])
    assert not np.shares_memory(matrix, data_buffer(table.column("a").chunk(0)))


def test_feature_matrix_of_batch_and_no_columns() -> None:
    batch = pa.RecordBatch.from_pydict({"a": [1.0, 2.0]})
    assert feature_matrix(batch, ["a"]).shape == (2, 1)
    assert feature_matrix(batch, []).shape == (2, 0)


@pytest.mark.parametrize(
    ("column", "message"),
    [(pa.array([1.0, None]), "null"), (pa.array(["1", "2"]), "not a number")],
    ids=["nulls", "strings"],
)
def test_feature_matrix_refusals(column: pa.Array, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ColumnViewError, match=message):
        feature_matrix(pa.table({"x": column}), ["x"])
