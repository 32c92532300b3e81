"""Typed Parquet is validated by Spark SQL expressions (storage._typed), with the kernel's exact results.

Every case runs twice, once through the JVM path and once forced through the
Python kernel, and both must give the same error (or the same table).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fedspark.storage import TableError, TableProblem, TableSpec, _reader, read_table
from fedspark.storage._kernel import PROBLEM_FIELD
from fedspark.storage._typed import python_float_repr

PARTY = "guest:9999"
NAN, INF = math.nan, math.inf


@pytest.fixture
def jvm_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the reads that took the JVM path."""
    calls: list[int] = []
    original = _reader.validate_typed

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(_reader, "validate_typed", counted)
    return calls


@pytest.fixture
def kernel_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with monkeypatch.context() as patch:
        patch.setattr(_reader, "jvm_checkable", lambda *args: False)
        yield


def table(ids: pa.Array, y: list[Any] | None = None, **features: list[Any]) -> pa.Table:
    columns: dict[str, Any] = {"id": ids}
    if y is not None:
        columns["y"] = pa.array(y, pa.float64())
    columns.update({name: pa.array(values, pa.float64()) for name, values in features.items()})
    return pa.table(columns)


def case(data: pa.Table, problem: TableProblem, column: str | None, row_id: str | None, message: str, **spec: Any) -> Any:
    return pytest.param(data, spec, (problem, column, row_id), message, id=f"{problem.value}-{len(spec)}")


def ints(*values: int | None) -> pa.Array:
    return pa.array(values, pa.int64())


CASES = [
    case(table(ints(5, None), [1, 0], x0=[1, 2]), TableProblem.EMPTY_ID, "id", None, "a row has an empty id (id=None, y=0.0, x0=2.0)"),
    case(table(pa.array(["a", " \t\u3000"]), [1, 0], x0=[1, 1e-05]), TableProblem.EMPTY_ID, "id", None, "empty id (id= \t\u3000, y=0.0, x0=1e-05)"),
    case(table(ints(5, 17), [1, None], x0=[1, 2]), TableProblem.MISSING_LABEL, "y", "17", "missing label (an empty cell)", fill_missing=0.0),
    case(table(ints(5, 17), [1, NAN], x0=[1, 2]), TableProblem.MISSING_LABEL, "y", "17", "missing label ('nan')", keep_missing=True),
    case(table(ints(5, 17), [1, 0], x0=[1, 2], x1=[3, NAN]), TableProblem.MISSING_VALUE, "x1", "17", "missing value ('nan'); set fill_missing"),
    case(table(ints(5, 17), [1, 0], x0=[1, None]), TableProblem.MISSING_VALUE, "x0", "17", "missing value (an empty cell)"),
    case(table(ints(5, 17), [1, 0], x0=[1, INF]), TableProblem.NOT_FINITE, "x0", "17", "value 'inf' is not finite"),
    case(table(ints(5, 17), [1, -INF], x0=[1, 2]), TableProblem.NOT_FINITE, "y", "17", "value '-inf' is not finite"),
    case(table(ints(5, 17), [1, 0], x0=[None, -INF]), TableProblem.NOT_FINITE, "x0", "17", "'-inf' is not finite", fill_missing=2.5),
    case(table(ints(5, 17), [1, 0], x0=[NAN, INF]), TableProblem.NOT_FINITE, "x0", "17", "'inf' is not finite", keep_missing=True),
    case(table(ints(5, 17, 5, 5), [1, 0, 1, 0], x0=[1, 2, 3, 4]), TableProblem.DUPLICATE_ID, "id", "5", "id 5 appears 3 times (1 id(s) are not unique)"),
    case(table(pa.array(["7", " 7 "]), [1, 0], x0=[1, 2]), TableProblem.DUPLICATE_ID, "id", "7", "id 7 appears 2 times"),
    case(table(ints(5, 9, 5, 9, 1, 9), [1, 0, 1, 0, 1, 0], x0=[1, 2, 3, 4, 5, 6]), TableProblem.DUPLICATE_ID, "id", "9", "id 9 appears 3 times (2 id(s) are not unique)"),
    case(pa.table({"id": [1.5], "y": [1.0]}), TableProblem.COLUMN_TYPE, "id", None, "id column has type double"),
    case(pa.table({"id": [1], "y": [True]}), TableProblem.COLUMN_TYPE, "y", None, "numeric column has type boolean"),
    case(table(ints(1, 2, 3, 4), [1, 0, None, 1], x0=[1, 2, 3, INF], x1=[1, INF, NAN, 1]), TableProblem.NOT_FINITE, "x1", "2", "'inf' is not finite"),
    case(table(ints(1, 2, 3), [1, 0, NAN], x0=[1, 2, NAN], x1=[1, 2, INF]), TableProblem.MISSING_LABEL, "y", "3", "missing label ('nan')"),
]


def read_error(spark: Any, path: Path, spec: dict[str, Any]) -> TableError:
    spec = {"label_column": "y", **spec}
    with pytest.raises(TableError) as caught:
        read_table(spark, TableSpec(str(path), **spec), party=PARTY)
    return caught.value


@pytest.mark.parametrize(("data", "spec", "expected", "message"), CASES)
def test_typed_parquet_errors_match_the_kernel(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jvm_calls: list[int],
    data: pa.Table, spec: dict[str, Any], expected: tuple[TableProblem, str | None, str | None], message: str,
) -> None:
    """(problem, column, row id) and the message; then the kernel's error must read the same."""
    path = tmp_path / "party.parquet"
    pq.write_table(data, path)
    error = read_error(spark, path, spec)
    text = str(error)
    assert (error.problem, error.column, error.row_id) == expected
    assert text.startswith(f"party {PARTY}: table file://{path}")
    assert message in text
    assert len(jvm_calls) == (0 if error.problem is TableProblem.COLUMN_TYPE else 1)
    monkeypatch.setattr(_reader, "jvm_checkable", lambda *args: False)
    by_kernel = read_error(spark, path, spec)
    assert (by_kernel.problem, by_kernel.column, by_kernel.row_id, str(by_kernel)) == (*expected, text)


def test_jvm_and_kernel_give_identical_dataframes(spark: Any, tmp_path: Path, jvm_calls: list[int]) -> None:
    """Mixed integer widths, float32, string ids with padding, filled gaps: same schema, same values."""
    path = tmp_path / "mixed.parquet"
    pq.write_table(
        pa.table(
            {
                "key": pa.array([" b", "a ", "\u00a0c", "10"]),
                "y": pa.array([1, 0, 1, 0], pa.int8()),
                "f32": pa.array([0.1, None, -2.5, 3e38], pa.float32()),
                "i32": pa.array([7, -3, None, 2**31 - 1], pa.int32()),
                "f64": [1e-300, NAN, -0.0, 123.456],
                "unused": ["p", "q", "r", "s"],
            }
        ),
        path,
    )
    for fill in ({"fill_missing": -1.0}, {"keep_missing": True}):
        spec = TableSpec(str(path), id_column="key", label_column="y", feature_columns=["f64", "f32", "i32"], **fill)
        jvm = read_table(spark, spec)
        assert len(jvm_calls) == 1
        jvm_calls.clear()
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(_reader, "jvm_checkable", lambda *args: False)
            kernel = read_table(spark, spec)
        assert jvm_calls == []
        assert (jvm._cached.is_cached, kernel._cached.is_cached) == (False, True)  # only the kernel's output
        assert jvm.dataframe.schema == kernel.dataframe.schema
        assert jvm._cached.schema == kernel._cached.schema
        got, expected = jvm.to_arrow(), kernel.to_arrow()
        assert got.column("id").to_pylist() == ["10", "a", "b", "c"]
        assert got.to_pylist() == expected.to_pylist() or _same_with_nan(got, expected)
        assert jvm._cached.where(f"`{PROBLEM_FIELD}` is not null").count() == 0
        jvm.unpersist()
        kernel.unpersist()


def _same_with_nan(got: pa.Table, expected: pa.Table) -> bool:
    """Row-by-row equality where NaN equals NaN (keep_missing keeps NaN)."""
    def same(a: Any, b: Any) -> bool:
        return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))

    return got.schema == expected.schema and all(
        all(same(a[k], b[k]) for k in a) for a, b in zip(got.to_pylist(), expected.to_pylist(), strict=True)
    )


def test_csv_and_string_or_decimal_columns_keep_the_kernel(spark: Any, tmp_path: Path, jvm_calls: list[int]) -> None:
    csv = tmp_path / "t.csv"
    csv.write_text("id,y,x0\n1,0,1.5\n")
    assert read_table(spark, TableSpec(str(csv), label_column="y")).n_rows == 1
    texts = tmp_path / "texts.parquet"
    pq.write_table(pa.table({"id": [1, 2], "x0": [" 1.5", "2"]}), texts)
    assert read_table(spark, TableSpec(str(texts))).to_arrow().column("x0").to_pylist() == [1.5, 2.0]
    decimals = tmp_path / "decimals.parquet"
    pq.write_table(pa.table({"id": [1], "x0": pa.array([1], pa.decimal128(5, 2))}), decimals)
    assert read_table(spark, TableSpec(str(decimals))).n_rows == 1
    assert jvm_calls == []


FLOATS = [0.0, -0.0, 1.0, -2.5, 100.0, 0.001, 1.5e-3, 1e-4, 1.25e-5, 9999999.5, 1e7, 123456789.125,
          1e15, 1e16, -1.5e300, 0.1, 0.30000000000000004, NAN, INF, -INF]


def test_python_float_repr_matches_python(spark: Any) -> None:
    """Layout switches (1e-4, 1e16), signed zero and the non-finite names, in one column."""
    from pyspark.sql import functions as F

    df = spark.createDataFrame(pa.table({"v": pa.array(FLOATS, pa.float64())})).coalesce(1)
    assert [row[0] for row in df.select(python_float_repr(F.col("v"))).collect()] == [repr(v) for v in FLOATS]
