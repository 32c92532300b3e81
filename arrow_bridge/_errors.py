"""Errors raised where Spark data meets Python.

Both are :class:`fedspark.common.DataError` (and so ``ValueError``): the data
handed over does not have the shape the caller asked for. They carry the
column or position that failed so callers can report it without parsing the
message::

    DataError
    └── ArrowBridgeError
        ├── ColumnViewError      a column cannot be seen as a float64 numpy array
        └── BinaryWidthError     an integer does not fit its fixed-width slot
"""

from __future__ import annotations

from fedspark.common import DataError


class ArrowBridgeError(DataError):
    """Base class for conversions in ``fedspark.arrow_bridge``."""


class ColumnViewError(ArrowBridgeError):
    """A column cannot become the numpy array that was asked for."""

    def __init__(self, column: str, reason: str) -> None:
        super().__init__(f"column {column!r}: {reason}")
        self.column = column
        self.reason = reason


class BinaryWidthError(ArrowBridgeError):
    """A value cannot be stored as (or read from) a fixed-width binary slot.

    ``index`` is the position of the first offending value, so a caller can
    name the row; ``width`` is the slot size in bytes.
    """

    def __init__(self, index: int | None, width: int, reason: str) -> None:
        where = f"value #{index}" if index is not None else "values"
        super().__init__(f"{where} ({width}-byte slots): {reason}")
        self.index = index
        self.width = width
        self.reason = reason
