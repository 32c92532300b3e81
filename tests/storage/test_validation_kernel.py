"""The validation kernel on hand-built batches: conversion, and the first bad cell per batch."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest

from fedspark.storage._kernel import PROBLEM_FIELD, output_schema, validate_batches

FEATURES = ["x0", "x1"]


def kernel(**overrides: Any) -> Any:
    params: dict[str, Any] = {
        "id_column": "id",
        "label_column": "y",
        "feature_columns": FEATURES,
        "fill_missing": None,
        "corrupt_column": None,
    }
    params.update(overrides)
    return functools.partial(validate_batches, **params)


def batch(rows: dict[str, list[Any]]) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict(rows)


def run(batches: list[pa.RecordBatch], **overrides: Any) -> list[pa.RecordBatch]:
    out: Iterator[pa.RecordBatch] = kernel(**overrides)(iter(batches))
    return list(out)


def problems(out: pa.RecordBatch) -> list[dict[str, Any]]:
    return [p for p in out.column(PROBLEM_FIELD).to_pylist() if p is not None]


def test_empty_iterator() -> None:
    assert run([]) == []


def test_empty_batch_keeps_output_schema() -> None:
    empty = pa.RecordBatch.from_pydict(
        {"id": pa.array([], pa.string()), "y": pa.array([], pa.string()), "x0": pa.array([], pa.string()), "x1": pa.array([], pa.string())}
    )
    (out,) = run([empty])
    assert out.num_rows == 0
    assert out.schema == output_schema(FEATURES, has_label=True)


def test_converts_strings_and_trims() -> None:
    (out,) = run([batch({"id": [" 7 ", "8"], "y": ["1", "0.0"], "x0": ["-0.5", " 1e3"], "x1": ["2", "+3.25"]})])
    assert out.column("id").to_pylist() == ["7", "8"]
    assert out.column("label").to_pylist() == [1.0, 0.0]
    assert out.column("x0").to_pylist() == [-0.5, 1000.0]
    assert out.column("x1").to_pylist() == [2.0, 3.25]
    assert problems(out) == []


def test_typed_columns_are_converted() -> None:
    (out,) = run([batch({"id": [3, 4], "y": [1, 0], "x0": [0.5, 1.5], "x1": pa.array([1, 2], pa.int32())})])
    assert out.column("id").to_pylist() == ["3", "4"]
    assert out.column("x1").type == pa.float64()
    assert problems(out) == []


@pytest.mark.parametrize(
    ("x0", "code", "value"),
    [
        ([None, "1"], "missing_value", ""),
        (["", "1"], "missing_value", ""),
        (["NaN", "1"], "missing_value", "NaN"),
        ([float("nan"), 1.0], "missing_value", "nan"),
        ([None, 1.0], "missing_value", ""),
        (["abc", "1"], "not_numeric", "abc"),
        (["inf", "1"], "not_finite", "inf"),
    ],
)
def test_bad_feature_cells(x0: list[Any], code: str, value: str) -> None:
    (out,) = run([batch({"id": ["17", "18"], "y": ["1", "0"], "x0": x0, "x1": ["1", "2"]})])
    assert problems(out) == [{"code": code, "column": "x0", "value": value}]
    assert out.column(PROBLEM_FIELD)[0].as_py() is not None  # on the bad row, row 0


def test_fill_missing_fills_features_but_not_labels() -> None:
    rows = {"id": ["1", "2", "3"], "y": ["1", "0", None], "x0": [None, "NaN", "4"], "x1": ["", "1", "2"]}
    (out,) = run([batch(rows)], fill_missing=-1.0)
    assert out.column("x0").to_pylist()[:2] == [-1.0, -1.0]
    assert out.column("x1").to_pylist()[0] == -1.0
    assert problems(out) == [{"code": "missing_label", "column": "y", "value": ""}]


def test_non_numeric_is_not_filled() -> None:
    (out,) = run([batch({"id": ["1"], "y": ["1"], "x0": ["n/a"], "x1": ["1"]})], fill_missing=0.0)
    assert problems(out)[0]["code"] == "not_numeric"


def test_only_the_first_bad_cell_of_a_batch_is_flagged() -> None:
    rows = {"id": ["1", "2", "3"], "y": ["1", "0", "1"], "x0": ["1", "2", "bad"], "x1": ["1", "", "x"]}
    (out,) = run([batch(rows)])
    assert problems(out) == [{"code": "missing_value", "column": "x1", "value": ""}]
    assert out.column(PROBLEM_FIELD)[1].as_py()["column"] == "x1"


def test_same_row_reports_leftmost_column() -> None:
    (out,) = run([batch({"id": ["1"], "y": ["?"], "x0": ["bad"], "x1": [""]})])
    assert problems(out) == [{"code": "not_numeric", "column": "y", "value": "?"}]


def test_each_batch_reports_its_own_problem() -> None:
    good = batch({"id": ["1"], "y": ["1"], "x0": ["1"], "x1": ["1"]})
    bad = batch({"id": ["2"], "y": ["1"], "x0": ["1"], "x1": ["zz"]})
    first, second = run([good, bad])
    assert problems(first) == []
    assert problems(second) == [{"code": "not_numeric", "column": "x1", "value": "zz"}]


def test_unparseable_value_deep_in_a_large_batch_is_located() -> None:
    values = [str(i / 3) for i in range(10_000)]
    values[7777] = "1.2.3"
    values[9000] = "worse"
    n = len(values)
    (out,) = run([batch({"id": [str(i) for i in range(n)], "y": ["1"] * n, "x0": values, "x1": ["0"] * n})])
    flagged = out.column(PROBLEM_FIELD).to_pylist()
    assert flagged[7777] == {"code": "not_numeric", "column": "x0", "value": "1.2.3"}
    assert math.isclose(out.column("x0")[7776].as_py(), 7776 / 3)


def test_empty_id_and_malformed_line() -> None:
    rows = {
        "id": ["1", " ", "3"],
        "y": ["1", "0", "1"],
        "x0": ["1", "2", "3"],
        "x1": ["1", "2", None],
        "_corrupt": [None, None, "3,1,3"],
    }
    (out,) = run([batch(rows)], corrupt_column="_corrupt")
    (problem,) = problems(out)
    assert problem["code"] == "empty_id"
    assert "x0=2" in problem["value"]
    (out,) = run([batch({**rows, "id": ["1", "2", "3"]})], corrupt_column="_corrupt")
    assert problems(out) == [{"code": "malformed_row", "column": None, "value": "3,1,3"}]


def test_no_label() -> None:
    (out,) = run([batch({"id": ["1"], "x0": ["1"], "x1": ["2"]})], label_column=None)
    assert out.schema.names == ["id", "x0", "x1", PROBLEM_FIELD]
    assert not math.isnan(out.column("x1")[0].as_py())
