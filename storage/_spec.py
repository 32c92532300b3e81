"""What a party declares about one of its tables."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from fedspark.common import ConfigError

TableFormat = Literal["csv", "parquet"]

_PARQUET_SUFFIXES = (".parquet", ".parq", ".pq")


@dataclass(frozen=True)
class TableSpec:
    """Where a party's table lives and which columns play which part.

    ``feature_columns=None`` means every column except the id and the label.
    ``format=None`` picks Parquet for ``.parquet``/``.parq``/``.pq`` names and
    CSV otherwise. ``fill_missing=None`` makes an empty or NaN feature value an
    error: silently imputing would change a party's model without anyone
    deciding it. It never applies to the label. ``keep_missing=True`` keeps
    missing feature cells as NaN for a later fill step that the job declares
    (see ``fedspark.algorithms.feature``); it cannot be combined with
    ``fill_missing``.
    """

    uri: str
    id_column: str = "id"
    label_column: str | None = None
    feature_columns: list[str] | None = None
    format: TableFormat | None = None
    fill_missing: float | None = None
    keep_missing: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.uri, str) or not self.uri:
            raise ConfigError(f"table spec: uri must be a non-empty string, got {self.uri!r}")
        if self.format not in (None, "csv", "parquet"):
            raise ConfigError(f"table {self.uri}: format must be 'csv' or 'parquet', not {self.format!r}")
        if self.feature_columns is not None:
            columns = list(self.feature_columns)
            if isinstance(self.feature_columns, str) or not all(isinstance(c, str) for c in columns):
                raise ConfigError(f"table {self.uri}: feature_columns must be a list of column names")
            object.__setattr__(self, "feature_columns", columns)
        if self.keep_missing and self.fill_missing is not None:
            raise ConfigError(f"table {self.uri}: fill_missing and keep_missing exclude each other")
        if self.fill_missing is not None and not math.isfinite(self.fill_missing):
            raise ConfigError(f"table {self.uri}: fill_missing must be a finite number, not {self.fill_missing!r}")

    @property
    def resolved_format(self) -> TableFormat:
        """The declared format, or the one the file name implies."""
        if self.format is not None:
            return self.format
        return "parquet" if self.uri.rstrip("/").lower().endswith(_PARQUET_SUFFIXES) else "csv"
