"""Why a party's table was refused, with the place it went wrong.

Every refusal is a :class:`TableError` (a :class:`fedspark.common.DataError`)
carrying a :class:`TableProblem` code plus the fields that locate it: party,
table URI, column, row id. The message is built from those fields so that a
data team can fix the file without reading a Spark stack trace, and code can
branch on ``problem`` instead of parsing text::

    DataError
    └── TableError      .problem .uri .party .column .row_id .detail
"""

from __future__ import annotations

import enum
import functools
from typing import Any

from fedspark.common import DataError


class TableProblem(str, enum.Enum):
    """What kind of problem a :class:`TableError` reports."""

    NOT_FOUND = "not_found"
    UNSUPPORTED_URI = "unsupported_uri"
    UNREADABLE = "unreadable"
    UNWRITABLE = "unwritable"
    NO_HEADER = "no_header"
    DUPLICATE_COLUMN = "duplicate_column"
    MISSING_COLUMN = "missing_column"
    COLUMN_TYPE = "column_type"
    NAME_CLASH = "name_clash"
    MALFORMED_ROW = "malformed_row"
    EMPTY_ID = "empty_id"
    NOT_NUMERIC = "not_numeric"
    MISSING_VALUE = "missing_value"
    MISSING_LABEL = "missing_label"
    NOT_FINITE = "not_finite"
    DUPLICATE_ID = "duplicate_id"
    EMPTY_TABLE = "empty_table"

    def __str__(self) -> str:
        return self.value


class TableError(DataError):
    """A party's table cannot be used as declared.

    Message form: ``party P: table URI, column 'C', row id=R: detail`` (the
    party, column and row parts appear only when known).
    """

    def __init__(
        self,
        problem: TableProblem,
        uri: str,
        detail: str,
        *,
        party: str | None = None,
        column: str | None = None,
        row_id: str | None = None,
    ) -> None:
        self.problem = TableProblem(problem)
        self.uri = uri
        self.detail = detail
        self.party = party
        self.column = column
        self.row_id = row_id
        super().__init__(self._message())

    def _message(self) -> str:
        where = [f"table {self.uri}"]
        if self.column is not None:
            where.append(f"column {self.column!r}")
        if self.row_id is not None:
            where.append(f"row id={self.row_id}")
        prefix = f"party {self.party}: " if self.party else ""
        return f"{prefix}{', '.join(where)}: {self.detail}"

    def with_party(self, party: str | None) -> TableError:
        """The same error attributed to ``party`` (lower layers do not know it)."""
        if party is None or party == self.party:
            return self
        return TableError(
            self.problem, self.uri, self.detail, party=party, column=self.column, row_id=self.row_id
        )

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle with all fields (the default would replay only the message)."""
        rebuild = functools.partial(
            TableError, party=self.party, column=self.column, row_id=self.row_id
        )
        return (rebuild, (self.problem, self.uri, self.detail))
