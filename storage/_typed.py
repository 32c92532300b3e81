"""Validate an already-typed Parquet table with Spark SQL expressions, entirely in the JVM.

The Python kernel (``_kernel``) exists because CSV cells are strings that need
parsing. A Parquet table whose id is an integer or a string and whose label
and features are integers or floats needs no parsing, only checks, and
sending it through ``mapInArrow`` costs a JVM -> Python -> JVM round trip of
every cell (about half of a 10M-row scoring run). Here the same checks are
column expressions, so Spark's code generation runs them next to the Parquet
scan.

The output matches ``validate_batches`` column for column (same names, types
and nullability, the same converted values) and its problem struct carries the
same code/column/value. One difference is deliberate: the kernel keeps one
problem per Arrow batch (its lowest row), while here every bad row carries its
own first problem (same column order as the kernel). The reader only asks
whether any problem exists and reports the first one in file order, which is
the same row either way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from fedspark.common import column_ref
from fedspark.storage._errors import TableProblem
from fedspark.storage._kernel import ID_FIELD, LABEL_FIELD, MAX_VALUE_CHARS, PROBLEM_FIELD

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame
    from pyspark.sql.types import StructType

# What ``pyarrow.compute.utf8_trim_whitespace`` trims (the same set as Python's
# ``str.isspace``), as a Java regex class: Spark's own trim() only removes ' '.
_WHITESPACE = "[\\x09-\\x0D\\x1C-\\x20\\x85\\xA0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]"


def jvm_checkable(schema: StructType, id_column: str, value_columns: Sequence[str]) -> bool:
    """True when every column has a type the JVM path converts exactly as the kernel does.

    Ids: integers or strings. Label and features: integers or binary floats.
    Strings need parsing and decimals convert through Arrow's own rounding, so
    both stay with the kernel.
    """
    from pyspark.sql.types import DoubleType, FloatType, IntegralType, StringType

    types = {field.name: field.dataType for field in schema.fields}
    if not isinstance(types[id_column], (IntegralType, StringType)):
        return False
    return all(isinstance(types[name], (IntegralType, FloatType, DoubleType)) for name in value_columns)


def validate_typed(
    raw: DataFrame,
    *,
    id_column: str,
    label_column: str | None,
    feature_columns: Sequence[str],
    fill_missing: float | None,
    output: StructType,
) -> DataFrame:
    """The kernel's output for ``raw`` (see :func:`jvm_checkable`), as a Spark projection.

    ``output`` is the reader's schema for the kernel's result; casting to it
    gives the JVM result the same (nullable) fields as ``mapInArrow`` output.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType

    types = {field.name: field.dataType for field in raw.schema.fields}
    ids = F.col(column_ref(id_column)).cast("string")
    if isinstance(types[id_column], StringType):
        ids = F.regexp_replace(ids, f"^{_WHITESPACE}+|{_WHITESPACE}+$", "")
        ids = F.when(ids != F.lit(""), ids)
    problems = [F.when(ids.isNull(), _problem(TableProblem.EMPTY_ID, id_column, _row_preview(raw)))]
    columns = [ids.alias(ID_FIELD)]
    if label_column is not None:
        label, checks = _number(label_column, None, TableProblem.MISSING_LABEL)
        columns.append(label.alias(LABEL_FIELD))
        problems.extend(checks)
    for name in feature_columns:
        value, checks = _number(name, fill_missing, TableProblem.MISSING_VALUE)
        columns.append(value.alias(name))
        problems.extend(checks)
    columns.append(F.coalesce(*problems).alias(PROBLEM_FIELD))
    return raw.select(*columns).to(output)


def _number(name: str, fill_missing: float | None, missing_code: TableProblem) -> tuple[Column, list[Column]]:
    """One column as double and its checks, in the kernel's order (missing, then not finite)."""
    from pyspark.sql import functions as F

    value = F.col(column_ref(name)).cast("double")
    missing = value.isNull() | F.isnan(value)
    checks: list[Column] = []
    if fill_missing is None or missing_code is TableProblem.MISSING_LABEL:
        checks.append(F.when(missing, _problem(missing_code, name, F.when(value.isNull(), "").otherwise("nan"))))
    else:
        value = F.when(missing, F.lit(fill_missing)).otherwise(value)
    infinite = F.abs(value) == F.lit(float("inf"))
    checks.append(F.when(infinite, _problem(TableProblem.NOT_FINITE, name, F.when(value > 0, "inf").otherwise("-inf"))))
    return value, checks


def _problem(code: TableProblem, column: str, value: Column) -> Column:
    from pyspark.sql import functions as F

    return F.struct(F.lit(code.value).alias("code"), F.lit(column).alias("column"), value.alias("value"))


def _row_preview(raw: DataFrame) -> Column:
    """The kernel's rendering of a row without an id: ``name=str(value)``, comma-separated.

    One higher-order ``transform`` over the row's cells: its lambda is
    interpreted, not compiled into the projection, so the long float layout
    below exists once instead of once per column (which pushed the generated
    scan code past the JVM's method size limit and off code generation).
    Only rows without an id evaluate it.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import DoubleType, FloatType

    cells = []
    for field in raw.schema.fields:
        cell = F.col(column_ref(field.name))
        is_float = isinstance(field.dataType, (FloatType, DoubleType))
        cells.append(
            F.struct(
                F.lit(f"{field.name}=").alias("name"),
                F.lit(is_float).alias("is_float"),
                (cell.cast("double") if is_float else F.lit(None).cast("double")).alias("number"),
                (F.lit(None).cast("string") if is_float else cell.cast("string")).alias("text"),
            )
        )

    def show(cell: Column) -> Column:
        text = F.when(cell["is_float"], python_float_repr(cell["number"])).otherwise(cell["text"])
        return F.concat(cell["name"], F.coalesce(text, F.lit("None")))

    def clip(text: Column) -> Column:
        """The kernel's ``_clip`` (typed cells show at most 4 characters, only a row can be longer)."""
        short = F.concat(F.substring(text, 1, MAX_VALUE_CHARS - 3), F.lit("..."))
        return F.when(F.length(text) > F.lit(MAX_VALUE_CHARS), short).otherwise(text)

    preview = _let(F.array_join(F.transform(F.array(*cells), show), ", "), clip)
    # An identity call through reflection: Spark interprets reflect() and its
    # arguments instead of compiling them, so this rare-path code (a third of
    # the scan's generated code otherwise) stays out of the hot loop, which the
    # JIT then compiles (HotSpot skips methods over 8 KB of bytecode).
    return F.call_function("reflect", F.lit("org.apache.commons.lang3.StringUtils"), F.lit("defaultString"), preview)


def python_float_repr(value: Column) -> Column:
    """Python's ``repr(float)`` of a double column, from Java's ``Double.toString``.

    Both print digits that read back as the same double; they differ in layout
    (Java: ``1.0E-5``, ``NaN``; Python: ``1e-05``, ``nan``) and in where
    scientific notation starts (Java below 1e-3 and from 1e7, Python below
    1e-4 and from 1e16). The digits and the decimal exponent are taken apart
    and laid out again the Python way. (Java before 19 sometimes prints one
    digit more than the shortest, e.g. 2e23 as 1.9999999999999998E23; such a
    value shows with that digit.) Each stage is bound once with :func:`_let`:
    written as one expression, the parts are repeated so often that Spark's
    generated code outgrows the JVM's 64 KB method limit.
    """
    from pyspark.sql import functions as F

    def parts(text: Column) -> Column:
        integer = F.regexp_extract(text, r"^-?(\d+)\.", 1)
        return F.struct(
            text.alias("text"),
            F.concat(integer, F.regexp_extract(text, r"\.(\d+)", 1)).alias("all"),
            (F.length(integer) + F.coalesce(F.regexp_extract(text, r"E(-?\d+)$", 1).try_cast("int"), F.lit(0))).alias(
                "point"
            ),
        )

    def digits(p: Column) -> Column:
        stripped = F.regexp_replace(p["all"], "^0+", "")
        return F.struct(
            p["text"].alias("text"),
            F.regexp_replace(stripped, "0+$", "").alias("digits"),
            # the decimal point sits after `point` digits (negative: that many zeros in between)
            (p["point"] - (F.length(p["all"]) - F.length(stripped))).alias("point"),
        )

    def layout(q: Column) -> Column:
        text, digits, point = q["text"], q["digits"], q["point"]
        n, exponent = F.length(digits), point - 1
        fixed = (
            F.when(point <= 0, F.concat(F.lit("0."), F.lpad(digits, n - point, "0")))
            .when(n <= point, F.concat(F.rpad(digits, point, "0"), F.lit(".0")))
            .otherwise(F.concat(digits.substr(F.lit(1), point), F.lit("."), digits.substr(point + 1, n)))
        )
        mantissa = F.when(n > 1, F.concat(digits.substr(1, 1), F.lit("."), digits.substr(F.lit(2), n))).otherwise(digits)
        scientific = F.concat(
            mantissa,
            F.when(exponent < 0, F.lit("e-")).otherwise(F.lit("e+")),
            F.when(F.abs(exponent) < 10, F.lit("0")).otherwise(F.lit("")),
            F.abs(exponent).cast("string"),
        )
        sign = F.when(text.startswith("-"), F.lit("-")).otherwise(F.lit(""))
        return (
            F.when(text == F.lit("NaN"), F.lit("nan"))
            .when(text == F.lit("Infinity"), F.lit("inf"))
            .when(text == F.lit("-Infinity"), F.lit("-inf"))
            .when(n == 0, F.concat(sign, F.lit("0.0")))
            .when((exponent >= -4) & (exponent < 16), F.concat(sign, fixed))
            .otherwise(F.concat(sign, scientific))
        )

    return _let(_let(_let(value.cast("string"), parts), digits), layout)


def _let(value: Column, body: Callable[[Column], Column]) -> Column:
    """``body(value)`` with ``value`` computed once (a one-element ``transform``), however often body uses it."""
    from pyspark.sql import functions as F

    return F.element_at(F.transform(F.array(value), body), 1)


