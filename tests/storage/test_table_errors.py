"""Every way a table is refused: the error names party, file, column and row."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fedspark.common import DataError
from fedspark.storage import TableError, TableProblem, TableSpec, read_table

PARTY = "guest:9999"
GOOD_HEADER = "id,y,x0,x1"


def csv_case(
    body: str | None,
    problem: TableProblem,
    column: str | None,
    row_id: str | None,
    message: str,
    **spec: Any,
) -> Any:
    return pytest.param(body, spec, problem, column, row_id, message, id=problem.value)


CASES = [
    csv_case(None, TableProblem.NOT_FOUND, None, None, "no such file or directory"),
    csv_case("", TableProblem.NO_HEADER, None, None, "no header line"),
    csv_case(GOOD_HEADER + "\n", TableProblem.EMPTY_TABLE, None, None, "has no rows"),
    csv_case("key,y,x0\n1,0,1\n", TableProblem.MISSING_COLUMN, "id", None, "no id column 'id' in the file (columns: key, y, x0)"),
    csv_case("id,x0\n1,1\n", TableProblem.MISSING_COLUMN, "y", None, "no label column 'y'"),
    csv_case(GOOD_HEADER + "\n1,0,1,2\n", TableProblem.MISSING_COLUMN, "x9", None, "no feature column 'x9'", feature_columns=["x0", "x9"]),
    csv_case("id,y,x0,X0\n1,0,1,2\n", TableProblem.DUPLICATE_COLUMN, "X0", None, "names a column twice"),
    csv_case(GOOD_HEADER + "\n1,0,1,2\n17,1,abc,3\n", TableProblem.NOT_NUMERIC, "x0", "17", "value 'abc' is not a number"),
    csv_case(GOOD_HEADER + "\n1,0,1,2\n17,1,,3\n", TableProblem.MISSING_VALUE, "x0", "17", "missing value (an empty cell); set fill_missing"),
    csv_case(GOOD_HEADER + "\n1,0,1,2\n17,1,3,NaN\n", TableProblem.MISSING_VALUE, "x1", "17", "missing value ('NaN')"),
    csv_case(GOOD_HEADER + "\n1,0,1,2\n17,1,inf,2\n", TableProblem.NOT_FINITE, "x0", "17", "'inf' is not finite"),
    csv_case(GOOD_HEADER + "\n1,0,1,2\n17,yes,1,2\n", TableProblem.NOT_NUMERIC, "y", "17", "value 'yes' is not a number"),
    csv_case(GOOD_HEADER + "\n1,0,1,2\n17,,1,2\n", TableProblem.MISSING_LABEL, "y", "17", "missing label", fill_missing=0.0),
    csv_case(GOOD_HEADER + "\n1,0,1,2\n17,1,1,2\n2,0,1,2\n17,0,3,4\n17,1,5,6\n", TableProblem.DUPLICATE_ID, "id", "17", "id 17 appears 3 times (1 id(s) are not unique)"),
    csv_case(GOOD_HEADER + "\n1,0,1,2\n17,1,1,2,99\n", TableProblem.MALFORMED_ROW, None, "17", "malformed CSV line '17,1,1,2,99': it does not split into the header's 4 fields"),
    csv_case(GOOD_HEADER + "\n1,0,1,2\n17,1,1\n", TableProblem.MALFORMED_ROW, None, "17", "malformed CSV line '17,1,1'"),
    csv_case(GOOD_HEADER + "\n1,0,1,2\n,1,5,6\n", TableProblem.EMPTY_ID, "id", None, "a row has an empty id (id=None, y=1, x0=5, x1=6)"),
    csv_case(GOOD_HEADER + "\n1,0,1,2\n", TableProblem.NAME_CLASH, "y", None, "cannot be the id or the label", feature_columns=["x0", "y"]),
    csv_case("idx,id,y\n1,5,0\n", TableProblem.NAME_CLASH, "id", None, "collide with the output column 'id'", id_column="idx"),
]


@pytest.mark.parametrize(("body", "spec", "problem", "column", "row_id", "message"), CASES)
def test_bad_csv_is_refused_with_location(
    spark: Any,
    tmp_path: Path,
    body: str | None,
    spec: dict[str, Any],
    problem: TableProblem,
    column: str | None,
    row_id: str | None,
    message: str,
) -> None:
    path = tmp_path / "party table.csv"
    if body is not None:
        path.write_text(body)
    spec.setdefault("label_column", "y")
    with pytest.raises(TableError) as caught:
        read_table(spark, TableSpec(str(path), **spec), party=PARTY)
    error = caught.value
    text = str(error)
    assert (error.problem, error.column, error.row_id) == (problem, column, row_id)
    assert error.party == PARTY and text.startswith(f"party {PARTY}: ")
    assert error.uri == f"file://{path}" and f"table file://{path}" in text
    if column is not None:
        assert f"column {column!r}" in text
    if row_id is not None:
        assert f"row id={row_id}" in text
    assert message in text
    assert isinstance(error, DataError) and isinstance(error, ValueError)


def test_unsupported_scheme_names_party_and_uri(spark: Any) -> None:
    with pytest.raises(TableError, match=r"^party host:1: table s3a://b/t.csv: unsupported scheme 's3a'"):
        read_table(spark, TableSpec("s3a://b/t.csv"), party="host:1")


def test_parquet_with_nulls_and_wrong_types(spark: Any, tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"id": [5, 17], "x0": [1.0, None]}), path)
    with pytest.raises(TableError, match=r"column 'x0', row id=17: missing value \(an empty cell\)") as caught:
        read_table(spark, TableSpec(str(path)), party=PARTY)
    assert caught.value.problem is TableProblem.MISSING_VALUE

    pq.write_table(pa.table({"id": [1], "x0": pa.array([0], pa.timestamp("s"))}), path)
    with pytest.raises(TableError, match="column 'x0': numeric column has type timestamp") as caught:
        read_table(spark, TableSpec(str(path)))
    assert caught.value.problem is TableProblem.COLUMN_TYPE


def test_unreadable_parquet(spark: Any, tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_text("this is not parquet")
    with pytest.raises(TableError, match="Spark could not read it") as caught:
        read_table(spark, TableSpec(str(path)), party=PARTY)
    assert caught.value.problem is TableProblem.UNREADABLE


def test_error_pickles_with_its_fields() -> None:
    import pickle

    error = TableError(TableProblem.NOT_NUMERIC, "file:///t.csv", "bad", party="p", column="x0", row_id="17")
    again = pickle.loads(pickle.dumps(error))
    assert (again.problem, again.party, again.column, again.row_id, str(again)) == (
        error.problem, "p", "x0", "17", str(error)
    )
