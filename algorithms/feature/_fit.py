"""Fit a party's feature transform with Spark aggregations over its own table.

Statistics are computed in the JVM (``avg``, ``percentile_approx``,
``stddev_pop``, ``min``/``max``) in at most two passes, so a party's table is
never collected for them. Missing cells arrive as NaN (the reader keeps them
when the job has a fill step) and are excluded from the fill statistics.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from fedspark.algorithms.feature._transform import (
    FeatureTransform,
    FillStrategy,
    ScaleMethod,
    apply_transform_batches,
    safe_scale,
)
from fedspark.arrow_bridge import map_in_arrow
from fedspark.common import DataError, column_ref

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame


def fit_transform(
    df: DataFrame, columns: Sequence[str], *, fill: FillStrategy, scale: ScaleMethod, where: str = "table"
) -> FeatureTransform:
    """Fit the fill values on the raw columns, then the scaling on the filled ones."""
    columns = list(columns)
    transform = FeatureTransform.identity(columns)
    if fill != "none":
        fills = _fill_values(df, columns, fill, where)
        transform = FeatureTransform(columns, fills, transform.centre, transform.scale, {"fill": fill, "scale": "none"})
    if scale == "none":
        return transform
    filled = apply_transform(df, transform, where)
    centre, spread = _scale_statistics(filled, columns, scale)
    return FeatureTransform(
        columns, transform.fill, centre, [safe_scale(s) for s in spread], {"fill": fill, "scale": scale}
    )


def apply_transform(df: DataFrame, transform: FeatureTransform, where: str = "table") -> DataFrame:
    """The transform as a ``mapInArrow`` job: same columns, features filled and scaled."""
    import functools

    from pyspark.sql.types import DoubleType, StructField, StructType

    present = [c for c in df.columns if c in transform.columns]
    transform.check_columns(present, where)
    schema = StructType(
        [StructField(f.name, DoubleType(), False) if f.name in transform.columns else f for f in df.schema.fields]
    )
    kernel = functools.partial(apply_transform_batches, transform=transform, where=where)
    return map_in_arrow(df, kernel, schema)


def _fill_values(df: DataFrame, columns: list[str], fill: FillStrategy, where: str) -> list[float | None]:
    from pyspark.sql import functions as F

    if fill == "zero":
        return [0.0] * len(columns)

    def present(name: str) -> Column:
        col = F.col(column_ref(name))
        return F.when(~F.isnan(col), col)

    if fill == "mean":
        exprs = [F.avg(present(c)) for c in columns]
    else:
        exprs = [F.percentile_approx(present(c), 0.5, 10000) for c in columns]
    row = df.agg(*exprs).collect()[0]  # bounded: one row of per-column statistics
    values: list[float | None] = []
    for name, value in zip(columns, row):
        if value is None:
            raise DataError(f"{where}: column {name!r} has no value at all, so its {fill} cannot fill it")
        values.append(float(value))
    return values


def _scale_statistics(df: DataFrame, columns: list[str], scale: ScaleMethod) -> tuple[list[float], list[float]]:
    from pyspark.sql import functions as F

    if scale == "standard":
        exprs = [e for c in columns for e in (F.avg(column_ref(c)), F.stddev_pop(column_ref(c)))]
    else:
        exprs = [e for c in columns for e in (F.min(column_ref(c)), F.max(column_ref(c)))]
    row = list(df.agg(*exprs).collect()[0])  # bounded: one row of per-column statistics
    first, second = row[0::2], row[1::2]
    if scale == "standard":
        return [float(m or 0.0) for m in first], [float(s or 0.0) for s in second]
    return [float(lo or 0.0) for lo in first], [float((hi or 0.0) - (lo or 0.0)) for lo, hi in zip(first, second)]
