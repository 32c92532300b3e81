"""The id column: its type, its canonical form, and the local checks before any PSI work.

Both sides must hash byte-identical ids, so ids are first brought to one
canonical text: ``int`` ids as their decimal form (so ``"007"`` read as text
and ``7`` read as a number meet), ``string`` ids as UTF-8 text. All of it runs
as Spark expressions; only one example of a bad id ever reaches the driver,
for the error message of the party that holds it.
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict

from fedspark.algorithms.psi._errors import DuplicateIds, InvalidIds, PsiInputError
from fedspark.common import column_ref

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

CANONICAL = "__psi_canonical"


class IdType(str, Enum):
    """How ids are compared across parties."""

    INT = "int"
    STRING = "string"


class PsiParams(BaseModel):
    """``params`` of a psi job."""

    model_config = ConfigDict(extra="forbid")

    id_type: Literal["int", "string"] | None = None
    """How ids compare across parties; None: the id columns must hold the same kind."""


def column_kind(df: DataFrame, column: str, party: str) -> IdType:
    """The id type this party's column holds, from its schema (no Spark job)."""
    from pyspark.sql import types as T

    if column not in df.columns:
        raise InvalidIds(party, column, f"does not exist (columns: {', '.join(df.columns)})")
    data_type = df.schema[column].dataType
    if isinstance(data_type, (T.ByteType, T.ShortType, T.IntegerType, T.LongType)):
        return IdType.INT
    if isinstance(data_type, (T.StringType, T.VarcharType, T.CharType)):
        return IdType.STRING
    raise InvalidIds(party, column, f"has type {data_type.simpleString()}; PSI ids must be integers or strings")


def canonical_ids(df: DataFrame, column: str, kind: IdType, id_type: IdType, party: str) -> DataFrame:
    """``(column, CANONICAL)``: the original id and its canonical text, after the checks.

    One Spark job (a group-by on the canonical id) finds the first null,
    unparsable or duplicated id, if any; only that one example reaches the driver.
    """
    from pyspark.sql import functions as F

    original = F.col(column_ref(column))
    canonical: Column
    parsed = id_type is IdType.INT and kind is IdType.STRING
    if parsed:
        canonical = F.expr(f"try_cast({column_ref(column)} AS BIGINT)").cast("string")
    else:
        canonical = original.cast("string")
    ids = df.select(original.alias(column), canonical.alias(CANONICAL))
    # Without parsing, the canonical text is a one-to-one function of the id, so the ids
    # themselves are grouped (a number hashes and shuffles cheaper than its text).
    key = F.col(CANONICAL if parsed else column_ref(column)).alias("key")
    groups = ids.groupBy(key).agg(F.count("*").alias("n"), F.first(column_ref(column), ignorenulls=True).alias("example"))
    bad = groups.where(F.col("key").isNull() | (F.col("n") > 1)).orderBy(F.col("key").isNotNull()).limit(1)
    found = bad.collect()  # bounded: limit(1), the first problem only
    if found:
        canon, count, example = found[0]
        if canon is None and example is None:
            raise InvalidIds(party, column, "holds a null id; every row needs an id")
        if canon is None:
            raise InvalidIds(party, column, f"holds {example!r}, which is not an integer (id_type: int)")
        raise DuplicateIds(party, column, str(example), int(count))
    return ids


def local_problem(check: PsiInputError | None) -> str | None:
    """What a party may tell its peers about its own failed check: the kind of problem, never an id."""
    if check is None:
        return None
    if isinstance(check, DuplicateIds):
        return f"its id column {check.column!r} holds duplicate ids"
    if isinstance(check, InvalidIds):
        return f"its id column {check.column!r} is not usable (null, wrong type or unparsable ids)"
    return type(check).__name__
