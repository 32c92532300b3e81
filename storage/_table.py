"""A party's validated table, as a cached Spark DataFrame."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from fedspark.arrow_bridge import collect_arrow
from fedspark.storage._errors import TableError, TableProblem
from fedspark.storage._kernel import ID_FIELD
from fedspark.storage._spec import TableSpec
from fedspark.storage._uri import first_line, resolve_uri

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


@dataclass(frozen=True, eq=False)
class PartyTable:
    """The result of :func:`read_table`: every row validated, ids unique.

    ``dataframe`` has columns ``id`` (string), ``label`` (double; only if
    ``has_label``) and ``feature_names`` (double), in that order, without
    nulls or NaN. When the Python kernel validated it (CSV, text or decimal
    columns) it is cached, because every algorithm step scans it again and
    re-parsing costs more than the copy; typed Parquet is re-read through the
    JVM checks instead, which is cheaper than building the copy. Call
    :meth:`unpersist` when done either way.
    """

    spec: TableSpec
    uri: str
    dataframe: DataFrame
    feature_names: list[str]
    n_rows: int
    has_label: bool
    tally: tuple[dict[str, Any], ...]
    """Per group of rows: ``group``, ``rows`` and the aggregates a reader's ``Tally`` asked for (else empty)."""
    party: str | None
    values_checked: bool
    """False when a ``Tally(values_later=True)`` left the label and feature checks to the caller's pass."""
    _cached: DataFrame = field(repr=False)

    def to_arrow(self) -> pa.Table:
        """Collect the table to the driver, sorted by id (string order), one chunk per column.

        Sorting makes the result independent of Spark's partitioning, so two
        reads of the same file compare equal; one chunk lets
        :func:`fedspark.arrow_bridge.column_view` view any column. For small
        tables only: everything lands in driver memory.
        """
        table = collect_arrow(self.dataframe)
        if not pa.types.is_string(table.schema.field(ID_FIELD).type):
            index = table.schema.get_field_index(ID_FIELD)
            table = table.set_column(index, ID_FIELD, table.column(ID_FIELD).cast(pa.string()))
        return table.sort_by(ID_FIELD).combine_chunks()

    def write_parquet(self, uri: str, *, overwrite: bool = False) -> str:
        """Write the validated table as Parquet (a directory) and return its resolved URI.

        Reading it back needs ``TableSpec(uri, label_column="label")`` when the
        table has a label. Refuses to replace existing data unless ``overwrite``.
        """
        target = resolve_uri(uri)
        try:
            self.dataframe.write.mode("overwrite" if overwrite else "errorifexists").parquet(target)
        except Exception as exc:  # Spark raises several unrelated types for I/O
            raise TableError(TableProblem.UNWRITABLE, target, f"cannot write Parquet: {first_line(exc)}") from exc
        return target

    def unpersist(self) -> None:
        """Release the cached rows (the DataFrame stays usable, recomputed on use)."""
        self._cached.unpersist()
