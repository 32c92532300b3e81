"""Validate and convert a party's raw table, one Arrow batch at a time.

Runs on the executors inside ``mapInArrow``. Raising there would surface on
the driver as a Python traceback wrapped in a Java one, with no file, column
or row. So the kernel never raises for bad data: it converts what it can and
writes the *first bad cell of each batch* into a problem column (null in every
other row). The driver then looks for a non-null problem and raises a
:class:`~fedspark.storage.TableError` that names party, file, column and row.

Output, per input batch and in this order: ``id`` (string, trimmed),
``label`` (float64, if declared), each feature under its own name (float64),
and :data:`PROBLEM_FIELD`. A pure function of its batches and parameters.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, cast

import pyarrow as pa
import pyarrow.compute as pc

from fedspark.storage._errors import TableProblem

ID_FIELD = "id"
LABEL_FIELD = "label"
PROBLEM_FIELD = "__fedspark_problem"
CORRUPT_FIELD = "__fedspark_corrupt_record"
PROBLEM_TYPE = pa.struct([("code", pa.string()), ("column", pa.string()), ("value", pa.string())])

MAX_VALUE_CHARS = 120


def output_schema(feature_columns: Sequence[str], has_label: bool) -> pa.Schema:
    """The Arrow schema :func:`validate_batches` emits."""
    fields: list[pa.Field[Any]] = [pa.field(ID_FIELD, pa.string())]
    if has_label:
        fields.append(pa.field(LABEL_FIELD, pa.float64()))
    fields.extend(pa.field(name, pa.float64()) for name in feature_columns)
    fields.append(pa.field(PROBLEM_FIELD, PROBLEM_TYPE))
    return pa.schema(fields)


def validate_batches(
    batches: Iterator[pa.RecordBatch],
    *,
    id_column: str,
    label_column: str | None,
    feature_columns: Sequence[str],
    fill_missing: float | None,
    corrupt_column: str | None,
) -> Iterator[pa.RecordBatch]:
    """Kernel: convert each raw batch and flag its first bad cell (bind parameters with partial).

    ``corrupt_column`` is the column where Spark's CSV reader puts a line that
    does not split into the header's number of fields (None for Parquet).
    Strings are trimmed; empty strings, nulls and NaN count as missing.
    Missing features are replaced by ``fill_missing`` when it is set; a
    missing label never is.
    """
    schema = output_schema(feature_columns, label_column is not None)
    for batch in batches:
        yield _validate_batch(batch, id_column, label_column, feature_columns, fill_missing, corrupt_column, schema)


class _FirstProblem:
    """Keeps the problem in the lowest row; on a tie, the one reported first."""

    def __init__(self) -> None:
        self.row: int | None = None
        self.entry: dict[str, str | None] = {}

    def offer(self, row: int, code: TableProblem, column: str | None, value: str | None) -> None:
        if self.row is None or row < self.row:
            self.row = row
            self.entry = {"code": code.value, "column": column, "value": _clip(value)}

    def column(self, num_rows: int) -> pa.Array[Any]:
        if self.row is None:
            return pa.nulls(num_rows, PROBLEM_TYPE)
        rows: list[dict[str, str | None] | None] = [None] * num_rows
        rows[self.row] = self.entry
        return pa.array(rows, type=PROBLEM_TYPE)


def _validate_batch(
    batch: pa.RecordBatch,
    id_column: str,
    label_column: str | None,
    feature_columns: Sequence[str],
    fill_missing: float | None,
    corrupt_column: str | None,
    schema: pa.Schema,
) -> pa.RecordBatch:
    problems = _FirstProblem()
    if corrupt_column is not None:
        corrupt = batch.column(corrupt_column)
        if corrupt.null_count < len(corrupt):
            row = _first_true(pc.is_valid(corrupt))
            problems.offer(row, TableProblem.MALFORMED_ROW, None, corrupt[row].as_py())

    ids = _id_strings(batch.column(id_column))
    if ids.null_count:
        row = _first_true(pc.is_null(ids))
        problems.offer(row, TableProblem.EMPTY_ID, id_column, _row_preview(batch, row, corrupt_column))

    columns: list[pa.Array[Any]] = [ids]
    if label_column is not None:
        columns.append(_numbers(batch.column(label_column), label_column, None, TableProblem.MISSING_LABEL, problems))
    for name in feature_columns:
        columns.append(_numbers(batch.column(name), name, fill_missing, TableProblem.MISSING_VALUE, problems))
    columns.append(problems.column(batch.num_rows))
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def _id_strings(column: pa.Array[Any]) -> pa.Array[Any]:
    """Ids as trimmed strings, with empty ones as null (integer ids are printed)."""
    text = column if pa.types.is_string(column.type) else pc.cast(column, pa.string())
    return _blank_to_null(pc.utf8_trim_whitespace(text))


def _numbers(
    column: pa.Array[Any],
    name: str,
    fill_missing: float | None,
    missing_code: TableProblem,
    problems: _FirstProblem,
) -> pa.Array[Any]:
    """Convert one column to float64, reporting its first bad cell to ``problems``."""
    raw: pa.Array[Any] | None = None
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        raw = _blank_to_null(pc.utf8_trim_whitespace(pc.cast(column, pa.string())))
        values = _parse_floats(raw, name, problems)
    else:
        values = pc.cast(column, pa.float64())

    missing = pc.or_kleene(pc.is_null(values), pc.is_nan(values))
    if pc.any(missing).as_py():
        if fill_missing is None or missing_code is TableProblem.MISSING_LABEL:
            row = _first_true(missing)
            problems.offer(row, missing_code, name, _cell_text(raw, values, row))
        else:
            values = cast("pa.Array[Any]", pc.if_else(missing, pa.scalar(fill_missing, pa.float64()), values))
    infinite = cast("pa.Array[Any]", pc.fill_null(pc.is_inf(values), pa.scalar(False)))
    if pc.any(infinite).as_py():
        row = _first_true(infinite)
        problems.offer(row, TableProblem.NOT_FINITE, name, _cell_text(raw, values, row))
    return values


def _parse_floats(text: pa.Array[Any], name: str, problems: _FirstProblem) -> pa.Array[Any]:
    """Parse decimal strings with Arrow's vectorised cast; locate a failure by bisection.

    Arrow's cast fails for the whole array without saying where, so on failure
    we bisect with casts of slices (about log2(n) casts, each zero-copy
    slicing) to find the first unparseable value. Values from there on are
    returned as null; the batch is rejected anyway.
    """
    try:
        return pc.cast(text, pa.float64())
    except pa.ArrowInvalid:
        pass
    low, high = 0, len(text)  # the first failure lies in [low, high)
    while high - low > 1:
        middle = (low + high) // 2
        if _parses(text.slice(low, middle - low)):
            low = middle
        else:
            high = middle
    problems.offer(low, TableProblem.NOT_NUMERIC, name, text[low].as_py())
    head = pc.cast(text.slice(0, low), pa.float64())
    return pa.concat_arrays([head, pa.nulls(len(text) - low, pa.float64())])


def _parses(text: pa.Array[Any]) -> bool:
    try:
        pc.cast(text, pa.float64())
    except pa.ArrowInvalid:
        return False
    return True


def _blank_to_null(text: pa.Array[Any]) -> pa.Array[Any]:
    blank = pc.equal(text, pa.scalar("", pa.string()))
    return cast("pa.Array[Any]", pc.if_else(blank, pa.scalar(None, pa.string()), text))


def _first_true(mask: pa.Array[Any]) -> int:
    return int(pc.index(mask, True).as_py())


def _cell_text(raw: pa.Array[Any] | None, values: pa.Array[Any], row: int) -> str:
    """How a bad cell looked in the file (its text), or its number for typed columns."""
    source = raw if raw is not None else values
    value = source[row].as_py()
    return "" if value is None else str(value)


def _row_preview(batch: pa.RecordBatch, row: int, skip: str | None) -> str:
    """A short rendering of one row, to find a row that has no id to name it by."""
    cells = batch.slice(row, 1).to_pylist()[0]
    return ", ".join(f"{key}={value}" for key, value in cells.items() if key != skip)


def _clip(value: str | None) -> str | None:
    if value is None or len(value) <= MAX_VALUE_CHARS:
        return value
    return value[: MAX_VALUE_CHARS - 3] + "..."
