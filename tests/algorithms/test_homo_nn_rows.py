"""A real client's rows stream to torch: blocks from Spark, a bounded shuffle buffer, metrics as counts.

The proof that no step collects the table: local training and scoring of a ~12 MB table succeed
while ``spark.driver.maxResultSize`` is 1m (and collecting the same table fails under it).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from fedspark.algorithms.evaluation import binary_metrics  # noqa: E402
from fedspark.algorithms.homo_nn import ArrayRows, HomoNNParams, LocalTrainer, TableRows  # noqa: E402
from fedspark.algorithms.homo_nn._local import mini_batches  # noqa: E402
from fedspark.algorithms.homo_nn._streamed_metrics import BinaryCounts  # noqa: E402
from fedspark.storage import TableSpec, read_table  # noqa: E402


def _params(**overrides: Any) -> HomoNNParams:
    base: dict[str, Any] = {"network": {"layers": [{"units": 8}], "learning_rate": 0.05}, "local_epochs": 2,
                            "batch_size": 32, "seed": 7, "secure": {"mode": "none"}}
    return HomoNNParams.model_validate({**base, **overrides})


def _blocks(sizes: list[int], features: int = 3) -> list[tuple[np.ndarray, np.ndarray]]:
    start, out = 0, []
    for size in sizes:
        rows = np.arange(start, start + size, dtype=np.float64)
        out.append((np.repeat(rows[:, None], features, axis=1), rows.copy()))
        start += size
    return out


def test_one_block_in_the_buffer_is_shuffled_whole_as_in_memory() -> None:
    (x, y), = _blocks([70])
    got = list(mini_batches(iter([(x, y)]), 32, 1000, torch.Generator().manual_seed(5)))
    order = torch.randperm(70, generator=torch.Generator().manual_seed(5)).numpy()
    assert [len(b[1]) for b in got] == [32, 32, 6]
    np.testing.assert_array_equal(np.concatenate([b[1] for b in got]), y[order])


@pytest.mark.parametrize("sizes", [[50, 0, 37, 64, 1], [200], [5] * 40, []])
def test_many_blocks_through_a_small_buffer_give_every_row_once(sizes: list[int]) -> None:
    seen: list[float] = []
    batches = list(mini_batches(iter(_blocks(sizes)), 16, 40, torch.Generator().manual_seed(1)))
    for i, (x, y) in enumerate(batches):
        assert len(y) == 16 or i == len(batches) - 1  # only the epoch's last batch may be short
        np.testing.assert_array_equal(x[:, 0], y)  # features stay with their label
        seen.extend(y.tolist())
    assert sorted(seen) == list(range(sum(sizes)))


def test_streamed_metrics_match_exact_ones() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(5000) < 0.3).astype(np.float64)
    scores = np.clip(0.3 * y + rng.random(5000) * 0.7, 0, 1)
    counts = BinaryCounts(0.5)
    for start in range(0, 5000, 700):
        counts.add(y[start : start + 700], scores[start : start + 700])
    exact, streamed = binary_metrics(y, scores, 0.5), counts.metrics()
    assert streamed["n"] == exact["n"] and streamed["accuracy"] == exact["accuracy"]
    assert streamed["auc"] == pytest.approx(exact["auc"], abs=1e-4)
    assert streamed["ks"] == pytest.approx(exact["ks"], abs=1e-3)
    with pytest.raises(ValueError, match="both classes"):
        only_one = BinaryCounts()
        only_one.add(np.ones(3), np.full(3, 0.9))
        only_one.metrics()


def test_table_rows_train_as_the_same_rows_in_memory(spark: Any, test_data: Path) -> None:
    """One block (the breast table fits): identical to the in-memory trainer over the id-sorted table."""
    from fedspark.arrow_bridge import column_view, feature_matrix

    table = read_table(spark, TableSpec(uri=str(test_data / "breast_homo_guest.csv"), label_column="y"), party="t")
    arrow = table.to_arrow()
    params = _params()
    expected_trainer = LocalTrainer(ArrayRows(feature_matrix(arrow, table.feature_names),
                                              column_view(arrow, "label")), params)
    w0 = expected_trainer.initial_weights()
    expected = expected_trainer.train(w0, 3)
    with TableRows(table, table.feature_names, params.stream, party="t") as rows:
        trainer = LocalTrainer(rows, params)
        got = trainer.train(w0, 3)
        np.testing.assert_array_equal(got.weights, expected.weights)
        assert got.n_samples == expected.n_samples == 227
        assert trainer.evaluate(got.weights)["accuracy"] == expected_trainer.evaluate(expected.weights)["accuracy"]
    # Several blocks: still reproducible from the seed, every row seen, a different shuffle.
    small = _params(local_epochs=1, stream={"block_rows": 80, "buffer_rows": 64})
    with TableRows(table, table.feature_names, small.stream, party="t") as rows:
        assert rows.n_blocks == 3 and sum(len(y) for _, y in rows.blocks()) == 227
        first, again = (LocalTrainer(rows, small).train(w0, 3) for _ in range(2))
        np.testing.assert_array_equal(first.weights, again.weights)
        assert not np.array_equal(first.weights, expected.weights)
    table.unpersist()


def _big_table(path: Path, rows: int, features: int) -> None:
    """Written with pyarrow, not Spark: a table this size is quicker to make in the test process."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    x = np.random.default_rng(0).standard_normal((rows, features))
    columns = {"id": pa.array(np.arange(rows).astype(str)), "label": pa.array((x[:, 0] + x[:, 1] > 0) * 1.0)}
    columns.update({f"x{j}": pa.array(x[:, j]) for j in range(features)})
    path.mkdir()
    pq.write_table(pa.table(columns), path / "part-0.parquet")


def test_training_and_scoring_never_collect_the_table(spark: Any, tmp_path: Path) -> None:
    """45k rows x 30 doubles (~11 MB) with maxResultSize 1m: a whole-table collect fails, streaming does not."""
    from fedspark.arrow_bridge import collect_arrow

    _big_table(tmp_path / "big.parquet", 45_000, 30)
    table = read_table(spark, TableSpec(uri=str(tmp_path / "big.parquet"), label_column="label"), party="big")
    params = _params(local_epochs=1, batch_size=256, stream={"block_rows": 2_500, "buffer_rows": 5_000})
    conf = spark.sparkContext._jsc.sc().conf()  # the live SparkConf: each new task set reads the limit
    before = conf.getOption("spark.driver.maxResultSize")
    conf.set("spark.driver.maxResultSize", "1m")
    try:
        with pytest.raises(Exception, match="maxResultSize"):
            collect_arrow(table.dataframe)  # the control: the limit is in force
        with TableRows(table, table.feature_names, params.stream, party="big") as rows:
            largest = _LargestBlock(rows)
            trainer = LocalTrainer(largest, params)
            result = trainer.train(trainer.initial_weights(), 0)
            metrics = trainer.evaluate(result.weights)
    finally:
        if before.isDefined():
            conf.set("spark.driver.maxResultSize", before.get())
        else:
            conf.remove("spark.driver.maxResultSize")
        table.unpersist()
    assert result.n_samples == metrics["n"] == 45_000
    assert 0 < largest.rows <= 3_000  # ~2,500 rows per block, never the table
    assert metrics["accuracy"] > 0.8  # the label is x0 + x1 > 0: learnt from streamed batches


class _LargestBlock:
    """Wraps a row source from outside and records the largest block it handed out."""

    def __init__(self, rows: TableRows) -> None:
        self.inner, self.rows = rows, 0
        self.n_rows, self.n_features = rows.n_rows, rows.n_features

    def blocks(self, generator: torch.Generator | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for x, y in self.inner.blocks(generator):
            self.rows = max(self.rows, len(y))
            yield x, y
