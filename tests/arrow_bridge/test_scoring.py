"""score_batches: sigmoid(b + X·w) over numpy views, checked against numpy on hand-built batches."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from fedspark.arrow_bridge import ArrowBridgeError, ColumnViewError, score_batches

WEIGHTS = [0.5, -1.25, 2.0]
FEATURES = ["a", "b", "c"]


def _batch(n: int, seed: int = 0) -> pa.RecordBatch:
    rng = np.random.default_rng(seed)
    return pa.RecordBatch.from_arrays(
        [pa.array(np.arange(n, dtype=np.int64)), *(pa.array(rng.standard_normal(n)) for _ in FEATURES)],
        names=["id", *FEATURES],
    )


def _score(batches: list[pa.RecordBatch], **kw: object) -> list[pa.RecordBatch]:
    return list(score_batches(iter(batches), id_column="id", feature_columns=FEATURES, weights=WEIGHTS, **kw))  # type: ignore[arg-type]


@pytest.mark.parametrize("sigmoid", [True, False])
def test_matches_numpy(sigmoid: bool) -> None:
    batches = [_batch(1000, 1), _batch(17, 2)]
    out = _score(batches, intercept=0.3, sigmoid=sigmoid)
    for batch, result in zip(batches, out):
        x = np.column_stack([batch.column(name).to_numpy() for name in FEATURES])
        z = 0.3 + x @ np.asarray(WEIGHTS)
        expected = 1.0 / (1.0 + np.exp(-z)) if sigmoid else z
        assert result.schema.names == ["id", "score"]
        assert result.column("id").equals(batch.column("id"))
        np.testing.assert_allclose(result.column("score").to_numpy(), expected, rtol=1e-12)


def test_ids_pass_through_without_copy() -> None:
    batch = _batch(100)
    (result,) = _score([batch])
    assert result.column("id").buffers()[1].address == batch.column("id").buffers()[1].address


def test_empty_iterator_and_empty_batch() -> None:
    assert _score([]) == []
    (result,) = _score([_batch(0)])
    assert result.num_rows == 0 and result.schema.names == ["id", "score"]


def test_extreme_scores_saturate_without_overflow_errors() -> None:
    batch = pa.RecordBatch.from_arrays([pa.array([1, 2]), pa.array([1e6, -1e6]), pa.array([0.0, 0.0]),
                                        pa.array([0.0, 0.0])], names=["id", *FEATURES])
    (result,) = list(score_batches(iter([batch]), id_column="id", feature_columns=FEATURES, weights=[1.0, 0.0, 0.0]))
    assert result.column("score").to_pylist() == [1.0, 0.0]


def test_nulls_are_refused_naming_the_column() -> None:
    batch = pa.RecordBatch.from_arrays([pa.array([1, 2]), pa.array([1.0, None]), pa.array([0.0, 1.0]),
                                        pa.array([0.0, 1.0])], names=["id", *FEATURES])
    with pytest.raises(ColumnViewError, match="'a'"):
        _score([batch])


def test_weight_count_and_missing_id_are_refused() -> None:
    with pytest.raises(ArrowBridgeError, match="2 weight"):
        list(score_batches(iter([_batch(3)]), id_column="id", feature_columns=FEATURES, weights=[1.0, 2.0]))
    with pytest.raises(ArrowBridgeError, match="'key'"):
        list(score_batches(iter([_batch(3)]), id_column="key", feature_columns=FEATURES, weights=WEIGHTS))
