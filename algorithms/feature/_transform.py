"""A party's fitted feature transform: missing-value fill, then standard scaling.

Each party fits it on its own columns and keeps it: the statistics (means,
medians, standard deviations) describe that party's customers and never leave
it. The same object, saved next to the party's model share, is applied again
at prediction time so that scoring sees exactly the training-time features.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from fedspark.common import DataError

FillStrategy = Literal["none", "mean", "median", "zero"]
ScaleMethod = Literal["none", "standard", "minmax"]


@dataclass(frozen=True)
class FeatureTransform:
    """Per-column fill value, centre and scale: x -> (fill(x) - centre) / scale.

    ``fill`` holds None for a column whose missing values are an error (no
    fill step); ``centre=0, scale=1`` is the identity (no scaling step).
    """

    columns: list[str]
    fill: list[float | None]
    centre: list[float]
    scale: list[float]
    steps: dict[str, str]

    def save(self, path: Path) -> None:
        path.write_bytes(self.to_bytes())

    @classmethod
    def load(cls, path: Path) -> FeatureTransform:
        return cls.from_bytes(path.read_bytes())

    def to_bytes(self) -> bytes:
        """The transform as JSON, for ``fedspark.storage.write_file`` (any file system) or a local file."""
        return json.dumps(asdict(self), indent=2).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> FeatureTransform:
        return cls(**json.loads(data))

    @classmethod
    def identity(cls, columns: Sequence[str]) -> FeatureTransform:
        n = len(columns)
        return cls(list(columns), [None] * n, [0.0] * n, [1.0] * n, {"fill": "none", "scale": "none"})

    def check_columns(self, columns: Sequence[str], where: str) -> None:
        """Refuse a table whose feature columns differ from the ones the transform was fitted on."""
        if list(columns) != self.columns:
            missing = [c for c in self.columns if c not in columns]
            extra = [c for c in columns if c not in self.columns]
            raise DataError(
                f"{where}: feature columns differ from the fitted transform's "
                f"(missing {missing or 'none'}, unexpected {extra or 'none'})"
            )


def apply_transform_batches(
    batches: Iterator[pa.RecordBatch], transform: FeatureTransform, where: str = "table"
) -> Iterator[pa.RecordBatch]:
    """Kernel: fill and scale the transform's columns of each batch, other columns unchanged.

    A missing value left without a fill value is an error naming the column,
    never a silent NaN flowing into training or scoring.
    """
    positions = {name: i for i, name in enumerate(transform.columns)}
    for batch in batches:
        arrays = []
        for name, column in zip(batch.schema.names, batch.columns):
            i = positions.get(name)
            if i is None:
                arrays.append(column)
                continue
            arrays.append(pa.array(_transform_column(column, i, transform, where), pa.float64()))
        yield pa.RecordBatch.from_arrays(arrays, schema=_output_schema(batch.schema, positions))


def _transform_column(column: pa.Array[Any], i: int, transform: FeatureTransform, where: str) -> np.ndarray:
    values: np.ndarray = np.array(column.to_numpy(zero_copy_only=False), dtype=np.float64)  # one copy: we write to it
    missing = np.isnan(values)
    if missing.any():
        fill = transform.fill[i]
        if fill is None:
            raise DataError(
                f"{where}: column {transform.columns[i]!r} has missing values and the job has no fill step"
            )
        values[missing] = fill
    values -= transform.centre[i]
    values /= transform.scale[i]
    return values


def _output_schema(schema: pa.Schema, positions: dict[str, int]) -> pa.Schema:
    return pa.schema([pa.field(f.name, pa.float64()) if f.name in positions else f for f in schema])


def safe_scale(value: float | None) -> float:
    """A divisor for scaling: a constant column (std 0) is centred, not divided by zero."""
    if value is None or not math.isfinite(value) or value <= 0.0:
        return 1.0
    return float(value)
