"""Read a party's table with Spark and refuse it, clearly, if it is not usable.

Three stages, so each problem is reported where it is cheapest to see:

1. driver, before any job: the location (scheme, existence via Hadoop's
   FileSystem) and the columns (header, declared id/label/features, types);
2. executors: the cells, through the pure kernel in ``_kernel`` (numbers,
   missing values, malformed CSV lines), which flags problems instead of
   raising;
3. driver, one aggregation over the result (cached when the kernel made it):
   flagged problems, row count, duplicate ids; a caller that proves ids
   unique another way asks for its own aggregates (a :class:`Tally`) in that
   pass instead of the duplicate check.

Nothing is dropped: a CSV line that does not match the header is kept by
Spark's PERMISSIVE mode in a corrupt-record column and reported, never
skipped (DROPMALFORMED) or shifted into the wrong columns.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import math
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fedspark.arrow_bridge import collect_arrow, map_in_arrow
from fedspark.common import column_ref
from fedspark.storage._errors import TableError, TableProblem
from fedspark.storage._kernel import (
    CORRUPT_FIELD,
    ID_FIELD,
    LABEL_FIELD,
    PROBLEM_FIELD,
    validate_batches,
)
from fedspark.storage._spec import TableSpec
from fedspark.storage._table import PartyTable
from fedspark.storage._typed import jvm_checkable, validate_typed
from fedspark.storage._uri import first_line, path_exists, resolve_uri

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, Observation, SparkSession
    from pyspark.sql.types import DataType, StructType

_MAX_LISTED_COLUMNS = 20


@dataclass(frozen=True, eq=False)
class Tally:
    """Aggregates a caller wants from the reader's pass over the table, per group of rows.

    ``by`` and the ``aggregates`` are expressions over the validated columns
    (``id``, ``label``, features). With a tally the reader skips its exact
    duplicate-id check, the one shuffle of the pass (a group-by over every id):
    the caller must prove ids unique its own way, and call
    :func:`check_unique_ids` to name a repeated id when that proof fails.

    ``values_later``: the expressions use the id alone, and the pass reads
    only the id column of typed Parquet (a fraction of the file). The label
    and feature checks then run in the caller's own pass over the table, which
    must use :func:`with_value_check`. (Tables that go through the Python
    kernel, such as CSV, are checked in full either way.)
    """

    by: Column
    aggregates: Mapping[str, Column]
    values_later: bool = False


def read_table(
    spark: SparkSession, spec: TableSpec, *, party: str | None = None, tally: Tally | None = None
) -> PartyTable:
    """Read and validate the table ``spec`` describes (cached when it went through the kernel).

    Returns a :class:`PartyTable` whose DataFrame has ``id`` (string),
    ``label`` (double, if declared) and the features (double, no nulls, no
    NaN unless ``spec.keep_missing``), with unique ids (unless a ``tally``
    was asked for: then the groups are in ``PartyTable.tally``). Raises :class:`TableError` naming ``party`` (if
    given), the file and, where it applies, the column and the row id.
    """
    try:
        uri = resolve_uri(spec.uri)
    except TableError as exc:
        raise exc.with_party(party) from None
    fail = functools.partial(TableError, uri=uri, party=party)
    with _spark_errors(uri, party):
        if not path_exists(spark, uri):
            raise fail(TableProblem.NOT_FOUND, detail="no such file or directory")
        if spec.resolved_format == "csv":
            raw, header = _read_csv(spark, uri, party)
            corrupt: str | None = CORRUPT_FIELD
        else:
            raw = spark.read.parquet(uri)
            header, corrupt = list(raw.columns), None
        features = _plan_columns(spec, header, raw.schema, uri, party)
        if corrupt is None:
            raw = raw.select(*(column_ref(c) for c in [spec.id_column, *_label(spec), *features]))
        checked, in_jvm = _validated(raw, spec, features, corrupt)
        if not in_jvm:
            checked = checked.cache()
        values_later = tally is not None and tally.values_later and in_jvm
        groups: tuple[dict[str, Any], ...] = ()
        try:
            if tally is None:
                n_rows = _check(checked, spec, uri, party, len(header))
            else:
                ids = raw.select(column_ref(spec.id_column))
                counted = _validated(ids, spec, [], None, values=False)[0] if values_later else checked
                n_rows, groups = _tally(counted, tally, spec, uri, party, len(header), shown_from=checked)
        except BaseException:
            checked.unpersist()
            raise
    return PartyTable(
        spec=spec,
        uri=uri,
        dataframe=checked.drop(PROBLEM_FIELD),
        feature_names=features,
        n_rows=n_rows,
        has_label=spec.label_column is not None,
        tally=groups,
        party=party,
        values_checked=not values_later,
        _cached=checked,
    )


def _validated(
    raw: DataFrame, spec: TableSpec, features: list[str], corrupt: str | None, *, values: bool = True
) -> tuple[DataFrame, bool]:
    """The kernel's output, and whether it was computed in the JVM (by Spark SQL expressions).

    ``values=False`` checks the ids alone (no label, ``features`` empty).

    Typed Parquet needs no parsing, and keeping it in the JVM saves the round
    trip of every cell through Python (see ``_typed``); CSV cells are strings.
    Only the kernel's output is worth caching: re-reading typed Parquet through
    the JVM projection costs less than building and scanning the in-memory
    copy (measured: see the commit that made this choice), and no copy of the
    table sits in executor memory.
    """
    params: dict[str, Any] = {
        "id_column": spec.id_column,
        "label_column": spec.label_column if values else None,
        "feature_columns": features,
        "fill_missing": math.nan if spec.keep_missing else spec.fill_missing,
    }
    schema = _spark_schema(features, params["label_column"] is not None)
    if corrupt is None and jvm_checkable(raw.schema, spec.id_column, [*_label(spec), *features] if values else []):
        return validate_typed(raw, **params, output=schema), True
    return map_in_arrow(raw, functools.partial(validate_batches, **params, corrupt_column=corrupt), schema), False


@contextlib.contextmanager
def _spark_errors(uri: str, party: str | None) -> Iterator[None]:
    """Turn Spark/JVM failures (unreadable file, I/O, executor loss) into TableError."""
    from py4j.protocol import Py4JError  # type: ignore[import-untyped]
    from pyspark.errors import PySparkException

    try:
        yield
    except (PySparkException, Py4JError) as exc:
        raise TableError(
            TableProblem.UNREADABLE, uri, f"Spark could not read it: {first_line(exc)}", party=party
        ) from exc


def _read_csv(spark: SparkSession, uri: str, party: str | None) -> tuple[DataFrame, list[str]]:
    """Read a CSV with every column as a string, keeping malformed lines visible.

    The header is read and parsed here (not by Spark) so that duplicate names
    are refused instead of being renamed (``x0`` -> ``x02``), and so the
    schema is fixed before reading: no type inference, and PERMISSIVE mode
    stores any line with too many or too few fields in the corrupt-record
    column. Every column then goes through the kernel: if only some were
    selected, Spark's CSV column pruning would stop detecting malformed lines.
    """
    from pyspark.sql.types import StringType, StructField, StructType

    first = collect_arrow(spark.read.text(uri).limit(1))
    if first.num_rows == 0:
        raise TableError(TableProblem.NO_HEADER, uri, "the file is empty: no header line", party=party)
    line = str(first.column(0)[0].as_py()).lstrip("\ufeff")
    header = [name if name else f"_c{i}" for i, name in enumerate(next(csv.reader([line])))]
    seen: dict[str, str] = {}
    for name in header:
        if name.lower() in seen:
            raise TableError(
                TableProblem.DUPLICATE_COLUMN,
                uri,
                f"the header names a column twice ({seen[name.lower()]!r} and {name!r})",
                party=party,
                column=name,
            )
        seen[name.lower()] = name
    if CORRUPT_FIELD in seen or PROBLEM_FIELD in seen:
        raise TableError(TableProblem.NAME_CLASH, uri, "the header uses a name fedspark reserves", party=party)
    schema = StructType(
        [StructField(name, StringType()) for name in header] + [StructField(CORRUPT_FIELD, StringType())]
    )
    raw = (
        spark.read.schema(schema)
        .option("header", True)
        .option("enforceSchema", True)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", CORRUPT_FIELD)
        .csv(uri)
    )
    return raw, header


def _plan_columns(
    spec: TableSpec, header: list[str], schema: StructType, uri: str, party: str | None
) -> list[str]:
    """Check the declared columns against the file's and return the feature columns."""
    fail = functools.partial(TableError, uri=uri, party=party)
    available = set(header)
    listed = ", ".join(header[:_MAX_LISTED_COLUMNS]) + (", ..." if len(header) > _MAX_LISTED_COLUMNS else "")

    def require(column: str, role: str) -> None:
        if column not in available:
            raise fail(
                TableProblem.MISSING_COLUMN,
                column=column,
                detail=f"no {role} column {column!r} in the file (columns: {listed or 'none'})",
            )

    require(spec.id_column, "id")
    if spec.label_column is not None:
        require(spec.label_column, "label")
        if spec.label_column == spec.id_column:
            raise fail(TableProblem.NAME_CLASH, column=spec.id_column, detail="the id column cannot also be the label")
    roles = {spec.id_column, *_label(spec)}
    if spec.feature_columns is None:
        features = [name for name in header if name not in roles]
    else:
        features = list(spec.feature_columns)
        for name in features:
            if name in roles:
                raise fail(
                    TableProblem.NAME_CLASH, column=name, detail="a feature column cannot be the id or the label"
                )
            if features.count(name) > 1:
                raise fail(TableProblem.DUPLICATE_COLUMN, column=name, detail="feature column listed twice")
            require(name, "feature")
    reserved = {ID_FIELD, *([LABEL_FIELD] if spec.label_column is not None else [])}
    for name in features:
        if name in reserved:
            raise fail(
                TableProblem.NAME_CLASH,
                column=name,
                detail=f"feature {name!r} would collide with the output column {name!r}; "
                "list feature_columns without it",
            )
    types = {field.name: field.dataType for field in schema.fields}
    _require_type(types[spec.id_column], spec.id_column, "id", fail, integral_only=True)
    for name in [*_label(spec), *features]:
        _require_type(types[name], name, "numeric", fail, integral_only=False)
    return features


def _require_type(data_type: DataType, column: str, role: str, fail: Any, *, integral_only: bool) -> None:
    """Parquet columns must already have a usable type (CSV columns are strings)."""
    from pyspark.sql.types import IntegralType, NumericType, StringType

    allowed = (StringType, IntegralType) if integral_only else (StringType, NumericType)
    if not isinstance(data_type, allowed):
        kinds = "a string or integer" if integral_only else "a number or a string"
        raise fail(
            TableProblem.COLUMN_TYPE,
            column=column,
            detail=f"{role} column has type {data_type.simpleString()}; expected {kinds}",
        )


def _check(checked: DataFrame, spec: TableSpec, uri: str, party: str | None, n_header: int) -> int:
    """One aggregation over the converted table: problems, rows, and whether any id repeats.

    The group-by on the id is the one shuffle (it must be exact). Its result
    is folded with plain sums and a max; naming an example of a repeated id
    (a second group-by) is left to the error path. Measured on 10M rows
    (local[2]): 9-18 s with this fold, 16-33 s when the fold also computed
    the example with ``min_by`` over a struct for every id.
    """
    from pyspark.sql import functions as F

    per_id = _per_id(checked)
    summary = collect_arrow(
        per_id.agg(F.sum("n").alias("rows"), F.sum("p").alias("problems"), F.max("n").alias("most"))
    ).to_pylist()[0]
    rows = _rows_or_raise(checked, summary, spec, uri, party, n_header)
    if summary["most"] > 1:
        raise _repeated(per_id, int(summary["most"]), spec, uri, party)
    return rows


def _tally(
    checked: DataFrame, tally: Tally, spec: TableSpec, uri: str, party: str | None, n_header: int,
    *, shown_from: DataFrame,
) -> tuple[int, tuple[dict[str, Any], ...]]:
    """Like :func:`_check` without the duplicate-id group-by: problems, rows and the caller's aggregates
    per group, from a hash aggregation over the (few) groups. A problem is reported from
    ``shown_from``, the whole checked table (its error shows every column of the row)."""
    from pyspark.sql import functions as F

    grouped = collect_arrow(
        checked.groupBy(tally.by.alias("group")).agg(
            F.count(F.lit(1)).alias("rows"), F.count(PROBLEM_FIELD).alias("problems"),
            *(expression.alias(name) for name, expression in tally.aggregates.items()),
        )
    ).to_pylist()
    summary = {"rows": sum(g["rows"] for g in grouped), "problems": sum(g["problems"] for g in grouped)}
    rows = _rows_or_raise(shown_from, summary, spec, uri, party, n_header)
    return rows, tuple({k: v for k, v in group.items() if k != "problems"} for group in grouped)


@dataclass(frozen=True, eq=False)
class ValueCheck:
    """The reader's label and feature checks, run during a caller's own pass (see :func:`with_value_check`)."""

    table: PartyTable
    observation: Observation | None

    def after_pass(self) -> None:
        """Call once the caller's action succeeded: raise the reader's error for the first bad value."""
        if self.observation is not None and int(self.observation.get.get("problems") or 0):
            self.after_failure()

    def after_failure(self) -> None:
        """Call when the caller's action failed (a kernel may have met a bad value first): raise the
        reader's error, naming file, column and row, if a value explains it; else return."""
        if self.observation is None:
            return
        table = self.table  # typed Parquet only (n_header 0): there is no CSV line to report
        first = _first_problem(table._cached, table.spec, table.uri, table.party, n_header=0)
        if first is not None:
            raise first


def with_value_check(table: PartyTable) -> tuple[DataFrame, ValueCheck]:
    """``table``'s DataFrame for the caller's own pass, and the checks to finish that pass with.

    For a table read with ``Tally(values_later=True)``: Spark counts the rows
    with a bad label or feature while the caller's action reads them (an
    observation, no extra pass); :meth:`ValueCheck.after_pass` then raises the
    reader's :class:`TableError` for the first of them. Use the DataFrame in
    exactly one action. For a table checked in full when read, both checks
    do nothing.
    """
    from pyspark.sql import Observation
    from pyspark.sql import functions as F

    if table.values_checked:
        return table.dataframe, ValueCheck(table, None)
    observation = Observation(f"fedspark-values-{uuid.uuid4().hex}")
    observed = table._cached.observe(observation, F.count(PROBLEM_FIELD).alias("problems"))
    return observed.drop(PROBLEM_FIELD), ValueCheck(table, observation)


def check_unique_ids(table: PartyTable) -> None:
    """Raise the reader's :class:`TableError` naming a repeated id of ``table``, if it has one.

    For callers that read with a :class:`Tally` (no duplicate check) and
    found signs of a repeat their own way: the exact check, on the error path.
    """
    from pyspark.sql import functions as F

    per_id = _per_id(table._cached)
    most = collect_arrow(per_id.agg(F.max("n").alias("most"))).to_pylist()[0]["most"]
    if most is not None and most > 1:
        raise _repeated(per_id, int(most), table.spec, table.uri, table.party)


def _per_id(checked: DataFrame) -> DataFrame:
    from pyspark.sql import functions as F

    return checked.groupBy(ID_FIELD).agg(F.count(F.lit(1)).alias("n"), F.count(PROBLEM_FIELD).alias("p"))


def _rows_or_raise(
    checked: DataFrame, summary: dict[str, Any], spec: TableSpec, uri: str, party: str | None, n_header: int
) -> int:
    """The row count, after refusing a table with a flagged problem (the first one found) or no rows."""

    if summary["problems"]:
        first = _first_problem(checked, spec, uri, party, n_header)
        if first is not None:
            raise first
    rows = int(summary["rows"] or 0)
    if rows == 0:
        raise TableError(TableProblem.EMPTY_TABLE, uri, "the table has no rows", party=party)
    return rows


def _first_problem(
    checked: DataFrame, spec: TableSpec, uri: str, party: str | None, n_header: int
) -> TableError | None:
    """The error for the first row the checks flagged, or None if no row is flagged."""
    from pyspark.sql import functions as F

    found = collect_arrow(
        checked.where(F.col(PROBLEM_FIELD).isNotNull()).select(ID_FIELD, PROBLEM_FIELD).limit(1)
    ).to_pylist()
    if not found:
        return None
    return _problem_error(found[0][ID_FIELD], found[0][PROBLEM_FIELD], spec, uri, party, n_header)


def _repeated(per_id: DataFrame, most: int, spec: TableSpec, uri: str, party: str | None) -> TableError:
    """The error naming one of the ids that appear most often (``most`` times)."""
    from pyspark.sql import functions as F

    repeated = collect_arrow(
        per_id.where(F.col("n") > 1).agg(
            F.count(F.lit(1)).alias("duplicated"),
            F.min_by(ID_FIELD, F.struct(-F.col("n"), F.col(ID_FIELD))).alias("example"),
        )
    ).to_pylist()[0]
    example, duplicated = repeated["example"], repeated["duplicated"]
    return TableError(
        TableProblem.DUPLICATE_ID,
        uri,
        f"id {example} appears {most} times ({duplicated} id(s) are not unique); ids must be unique",
        party=party,
        column=spec.id_column,
        row_id=example,
    )


def _problem_error(
    row_id: str | None, problem: dict[str, str | None], spec: TableSpec, uri: str, party: str | None, n_header: int
) -> TableError:
    """Build the error for the problem a kernel flagged."""
    code = TableProblem(problem["code"])
    column, value = problem["column"], problem["value"]
    shown = repr(value) if value else "an empty cell"
    if code is TableProblem.MALFORMED_ROW:
        detail = f"malformed CSV line {value!r}: it does not split into the header's {n_header} fields"
        column = None
    elif code is TableProblem.EMPTY_ID:
        detail, row_id = f"a row has an empty id ({value})", None
    elif code is TableProblem.NOT_NUMERIC:
        detail = f"value {value!r} is not a number"
    elif code is TableProblem.MISSING_LABEL:
        detail = f"missing label ({shown}); every row needs a label (fill_missing never applies to it)"
    elif code is TableProblem.MISSING_VALUE:
        detail = f"missing value ({shown}); set fill_missing in the table spec, or a fill step (job features.fill), to replace missing features"
    else:
        detail = f"value {value!r} is not finite"
    return TableError(code, uri, detail, party=party, column=column, row_id=row_id)


def _spark_schema(features: list[str], has_label: bool) -> StructType:
    """The Spark schema matching ``_kernel.output_schema``."""
    from pyspark.sql.types import DoubleType, StringType, StructField, StructType

    problem = StructType([StructField(name, StringType()) for name in ("code", "column", "value")])
    fields = [StructField(ID_FIELD, StringType())]
    if has_label:
        fields.append(StructField(LABEL_FIELD, DoubleType()))
    fields.extend(StructField(name, DoubleType()) for name in features)
    fields.append(StructField(PROBLEM_FIELD, problem))
    return StructType(fields)


def _label(spec: TableSpec) -> list[str]:
    return [] if spec.label_column is None else [spec.label_column]
