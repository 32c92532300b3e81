"""Feature steps: fill and scale statistics from Spark, the Arrow kernel, save/load."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from fedspark.algorithms.feature import FeatureTransform, apply_transform, apply_transform_batches, fit_transform
from fedspark.arrow_bridge import collect_arrow
from fedspark.common import DataError

NAN = math.nan


def _frame(spark, rows):  # type: ignore[no-untyped-def]
    return spark.createDataFrame(rows, "id string, a double, b double")


def test_mean_fill_then_standard_scaling_matches_numpy(spark) -> None:  # type: ignore[no-untyped-def]
    rows = [("1", 1.0, 10.0), ("2", NAN, 20.0), ("3", 3.0, NAN), ("4", 5.0, 40.0)]
    df = _frame(spark, rows)
    transform = fit_transform(df, ["a", "b"], fill="mean", scale="standard")
    assert transform.fill == pytest.approx([3.0, 70.0 / 3.0])
    out = collect_arrow(apply_transform(df, transform)).sort_by("id")
    for name, fill in (("a", 3.0), ("b", 70.0 / 3.0)):
        raw = np.array([r[1 if name == "a" else 2] for r in rows])
        filled = np.where(np.isnan(raw), fill, raw)
        expected = (filled - filled.mean()) / filled.std()
        np.testing.assert_allclose(out.column(name).to_numpy(), expected, rtol=1e-12)
    assert out.column("id").to_pylist() == ["1", "2", "3", "4"]


@pytest.mark.parametrize("scale", ["standard", "minmax"])
def test_column_names_with_dots_spaces_and_backticks_fit_and_apply(spark, scale: str) -> None:  # type: ignore[no-untyped-def]
    """Names from users' tables: a dot is not a struct field, a backtick is part of the name."""
    names = ["mean.radius", "worst texture", "c`d"]
    df = spark.createDataFrame([("1", 1.0, 2.0, NAN), ("2", 3.0, 4.0, 6.0), ("3", 5.0, 9.0, 8.0)], ["id", *names])
    transform = fit_transform(df, names, fill="mean", scale=scale)  # type: ignore[arg-type]
    assert transform.fill == pytest.approx([3.0, 5.0, 7.0])
    out = collect_arrow(apply_transform(df, transform)).sort_by("id")
    assert out.schema.names == ["id", *names]
    first = out.column("mean.radius").to_numpy()
    expected = np.array([-1.0, 0.0, 1.0]) * (np.sqrt(1.5) if scale == "standard" else 0.5) + (0.0 if scale == "standard" else 0.5)
    np.testing.assert_allclose(first, expected, rtol=1e-12)


def test_median_fill_and_minmax(spark) -> None:  # type: ignore[no-untyped-def]
    df = _frame(spark, [("1", 1.0, 0.0), ("2", 2.0, 5.0), ("3", 9.0, NAN), ("4", NAN, 10.0)])
    transform = fit_transform(df, ["a", "b"], fill="median", scale="minmax")
    assert transform.fill == [2.0, 5.0]
    out = collect_arrow(apply_transform(df, transform)).sort_by("id")
    np.testing.assert_allclose(out.column("a").to_numpy(), [0.0, 0.125, 1.0, 0.125])
    np.testing.assert_allclose(out.column("b").to_numpy(), [0.0, 0.5, 0.5, 1.0])


def test_constant_column_is_centred_not_divided_by_zero(spark) -> None:  # type: ignore[no-untyped-def]
    df = _frame(spark, [("1", 2.0, 1.0), ("2", 2.0, 3.0)])
    transform = fit_transform(df, ["a", "b"], fill="none", scale="standard")
    out = collect_arrow(apply_transform(df, transform)).sort_by("id")
    assert out.column("a").to_pylist() == [0.0, 0.0]
    assert out.column("b").to_pylist() == [-1.0, 1.0]


def test_missing_value_without_fill_step_names_the_column() -> None:
    transform = FeatureTransform.identity(["a"])
    batch = pa.record_batch({"id": ["7"], "a": [NAN]})
    with pytest.raises(DataError, match="guest table x.csv: column 'a' has missing values"):
        list(apply_transform_batches(iter([batch]), transform, where="guest table x.csv"))


def test_all_missing_column_cannot_be_filled(spark) -> None:  # type: ignore[no-untyped-def]
    df = _frame(spark, [("1", NAN, 1.0), ("2", NAN, 2.0)])
    with pytest.raises(DataError, match="column 'a' has no value at all"):
        fit_transform(df, ["a", "b"], fill="mean", scale="none")


def test_kernel_handles_empty_input_and_keeps_other_columns() -> None:
    transform = FeatureTransform(["a"], [0.0], [1.0], [2.0], {"fill": "zero", "scale": "standard"})
    assert list(apply_transform_batches(iter([]), transform)) == []
    empty = pa.record_batch({"id": pa.array([], pa.string()), "a": pa.array([], pa.float64())})
    assert [b.num_rows for b in apply_transform_batches(iter([empty]), transform)] == [0]
    batch = pa.record_batch({"id": ["x", "y"], "a": [3.0, NAN], "label": [1.0, 0.0]})
    (out,) = apply_transform_batches(iter([batch]), transform)
    assert out.column("a").to_pylist() == [1.0, -0.5]
    assert out.column("label").to_pylist() == [1.0, 0.0]


def test_saved_transform_round_trips_and_checks_columns(tmp_path: Path) -> None:
    transform = FeatureTransform(["a", "b"], [1.0, None], [0.5, 0.0], [2.0, 1.0], {"fill": "mean", "scale": "standard"})
    transform.save(tmp_path / "t.json")
    assert FeatureTransform.load(tmp_path / "t.json") == transform
    with pytest.raises(DataError, match=r"missing \['b'\], unexpected \['c'\]"):
        transform.check_columns(["a", "c"], "host:10000 table t.csv")
