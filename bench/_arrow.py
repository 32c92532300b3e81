"""``fedspark bench arrow``: the same scoring kernel over Row objects, pandas and Arrow, vs the JVM.

The question users ask first: how much faster is Arrow than the pickle path
other federated engines use? The table (id + ``cols`` float64 features) is
written once as Parquet, then one Spark session scores it four ways, each
ending in the same aggregation (sum and count of the scores) so every score
is computed and handed back to the JVM:

- ``pickle_rdd``: ``df.rdd.mapPartitions`` over ``Row`` objects, rows pickled
  into Python and the (id, score) tuples pickled back (``createDataFrame``);
- ``map_in_pandas``: ``mapInPandas`` (Arrow to pandas, a matrix product);
- ``map_in_arrow``: ``mapInArrow`` with :func:`fedspark.arrow_bridge.score_batches`
  (numpy views over the batch, no copies);
- ``jvm_sql`` (the physical baseline): the same expression in Spark SQL,
  never leaving the JVM.

The aggregation also sums the ids, so the JVM plan cannot drop the id
column the Python variants must carry both ways, and the sums prove every
variant returned every row once. One more run, ``map_in_arrow_receive_only``,
sends the same columns to Python through ``mapInArrow`` and returns only a
row count per partition: no kernel and no result batches, so its rate is the
ceiling any ``mapInArrow`` kernel can reach on this Spark and machine.

``map_in_arrow``, ``map_in_arrow_receive_only`` and ``jvm_sql`` run
``repeats`` interleaved rounds (best of each is reported, every round is
listed); the slow variants run once.

The wire codec part encodes and decodes a 1M-row table as Arrow IPC and,
locally and only here, with Python's pickle (rows as tuples, the shape a
row-oriented engine ships; and numpy columns, pickle's best case). fedspark
never puts pickle on the wire: unpickling another organisation's bytes runs
their code. This module is the one place in fedspark allowed to import it
(``tests/test_layers.py``), and it only ever loads bytes it just made.
"""

from __future__ import annotations

import functools
import math
import pickle  # measured here only: encodes and decodes its own rows in this process; nothing crosses a party
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fedspark.arrow_bridge import map_in_arrow, score_batches

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame, SparkSession

TARGET_RATIO = 7.0
TARGET_ARROW_VS_JVM = 0.5
CODEC_ROWS = 1_000_000
DEFAULT_BATCH_ROWS = 10_000  # measured: 10k-row batches beat 100k and 500k (cache-sized buffers)
SCORE_SCHEMA = "id long, score double"
RECEIVE_ONLY = "map_in_arrow_receive_only"
BENCH_SPARK_CONF = {
    "spark.master": "local[2]",
    "spark.driver.memory": "2g",
    "spark.sql.shuffle.partitions": "2",
    # Parquet splits of 64 MiB: enough partitions for both cores, few tasks.
    "spark.sql.files.maxPartitionBytes": str(64 << 20),
    # 1 MiB socket buffers between the JVM and its Python workers (default 64 KiB): fewer
    # system calls per Arrow batch.
    "spark.buffer.size": str(1 << 20),
}


def run_arrow_bench(
    rows: int,
    cols: int,
    *,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    codec_rows: int = CODEC_ROWS,
    master: str = "local[2]",
    work_dir: Path | None = None,
    repeats: int = 3,
) -> dict[str, Any]:
    """Write the table, run the four variants and the codec, and return the benchmark's JSON object."""
    from fedspark.engine import build_session

    rng = np.random.default_rng(0)
    weights = rng.normal(0.0, 0.3, cols).tolist()
    intercept = 0.1
    features = [f"x{j}" for j in range(cols)]
    all_seconds: dict[str, list[float]] = {}
    folder = Path(tempfile.mkdtemp(prefix="fedspark-bench-arrow-", dir=work_dir))
    try:
        path = folder / "table.parquet"
        parquet_bytes = write_table(path, rows, cols)
        spark = build_session("fedspark-bench-arrow", {**BENCH_SPARK_CONF, "spark.master": master})
        spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(batch_rows))
        df = spark.read.parquet(path.as_uri())
        variants = score_variants(spark, df, features, weights, intercept)
        warm = score_variants(spark, df.limit(2 * batch_rows), features, weights, intercept)
        for make in warm.values():  # JIT, Python workers and imports, so the first variant pays no start-up
            _timed_sum(make())
        _timed_count(receive_only(df.limit(2 * batch_rows), features))
        timed = {name: _timed_sum(variants[name]()) for name in ("pickle_rdd", "map_in_pandas")}
        # The 0.5x-of-JVM target compares fast variants on a shared machine: run them in
        # interleaved rounds and keep each one's best, so a burst of load hits none alone.
        for _ in range(repeats):
            for name in ("map_in_arrow", RECEIVE_ONLY, "jvm_sql"):
                run = _timed_count(receive_only(df, features)) if name == RECEIVE_ONLY else _timed_sum(variants[name]())
                all_seconds.setdefault(name, []).append(round(run[0], 3))
                if name not in timed or run[0] < timed[name][0]:
                    timed[name] = run
        settings = {key: spark.conf.get(key, None) or spark.sparkContext.getConf().get(key) for key in (*BENCH_SPARK_CONF, "spark.sql.execution.arrow.maxRecordsPerBatch")}
        spark_version = spark.version
        partitions = df.rdd.getNumPartitions()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    codec = codec_bench(codec_rows, cols)
    input_mb = rows * (cols + 1) * 8 / 1e6

    def figure(name: str) -> dict[str, Any]:
        seconds, total, count, id_sum = timed[name]
        if count != rows or id_sum != rows * (rows - 1) // 2:
            raise RuntimeError(f"bench arrow: variant {name} returned {count} rows (id sum {id_sum}), expected {rows}")
        return {"rate": rows / seconds, "unit": "rows/s", "mb_per_s": input_mb / seconds, "seconds": seconds,
                **({} if name == RECEIVE_ONLY else {"score_sum": total})}

    figures = {name: figure(name) for name in timed}
    sums = [f["score_sum"] for f in figures.values() if "score_sum" in f]
    ratio = figures["map_in_arrow"]["rate"] / figures["pickle_rdd"]["rate"]
    arrow_vs_jvm = figures["map_in_arrow"]["rate"] / figures["jvm_sql"]["rate"]
    return {
        "bench": "arrow",
        "params": {
            "rows": rows, "cols": cols, "batch_rows": batch_rows, "codec_rows": codec_rows,
            "parquet_bytes": parquet_bytes, "input_mb": round(input_mb, 1), "partitions": partitions,
            "spark_version": spark_version, "pyarrow_version": pa.__version__, "spark_conf": settings,
            "source": "Parquet on local disk, read by each variant",
            "repeats": {"pickle_rdd": 1, "map_in_pandas": 1, "map_in_arrow": repeats, RECEIVE_ONLY: repeats,
                        "jvm_sql": repeats},
            "seconds_each_round": all_seconds,
        },
        "results": {
            **{name: _rounded(figures[name]) for name in ("pickle_rdd", "map_in_pandas", "map_in_arrow", RECEIVE_ONLY)},
            "codec_arrow_ipc": _rounded(codec["arrow_ipc"]),
        },
        "baseline": {
            "jvm_sql": _rounded(figures["jvm_sql"]),
            "codec_pickle_rows": _rounded(codec["pickle_rows"]),
            "codec_pickle_numpy_columns": _rounded(codec["pickle_numpy_columns"]),
        },
        "ratio": round(ratio, 2),
        "ratios": {
            "map_in_arrow_vs_pickle_rdd": round(ratio, 2),
            "map_in_arrow_vs_jvm_sql": round(arrow_vs_jvm, 3),
            "map_in_arrow_receive_only_vs_jvm_sql": round(figures[RECEIVE_ONLY]["rate"] / figures["jvm_sql"]["rate"], 3),
            "map_in_pandas_vs_pickle_rdd": round(figures["map_in_pandas"]["rate"] / figures["pickle_rdd"]["rate"], 2),
            "codec_arrow_vs_pickle_rows": round(codec["arrow_ipc"]["rate"] / codec["pickle_rows"]["rate"], 2),
            "codec_arrow_vs_pickle_numpy_columns": round(
                codec["arrow_ipc"]["rate"] / codec["pickle_numpy_columns"]["rate"], 2),
        },
        "checks": {"scores_agree": bool(max(sums) - min(sums) <= 1e-9 * max(1.0, abs(max(sums))))},
        "target": {"ratio": f">= {TARGET_RATIO}", "map_in_arrow_vs_jvm_sql": f">= {TARGET_ARROW_VS_JVM}"},
        "meets_target": bool(ratio >= TARGET_RATIO and arrow_vs_jvm >= TARGET_ARROW_VS_JVM),
    }


def write_table(path: Path, rows: int, cols: int, chunk_rows: int = 1_000_000, seed: int = 1) -> int:
    """Write ``id`` + ``cols`` standard-normal float64 columns as Parquet, one row group per chunk; return bytes."""
    rng = np.random.default_rng(seed)
    schema = pa.schema([("id", pa.int64()), *[(f"x{j}", pa.float64()) for j in range(cols)]])
    with pq.ParquetWriter(path, schema, compression="snappy") as writer:
        for start in range(0, rows, chunk_rows):
            n = min(chunk_rows, rows - start)
            arrays = [pa.array(np.arange(start, start + n, dtype=np.int64))]
            arrays += [pa.array(rng.standard_normal(n)) for _ in range(cols)]
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema), row_group_size=n)
    return path.stat().st_size


def score_variants(
    spark: SparkSession, df: DataFrame, features: Sequence[str], weights: Sequence[float], intercept: float
) -> dict[str, Callable[[], DataFrame]]:
    """The four ways to score ``df``: each a thunk returning an ``(id, score)`` DataFrame."""
    from pyspark.sql import functions as F

    columns = ["id", *features]
    selected = df.select(*columns)
    w, b = list(map(float, weights)), float(intercept)

    def pickle_rdd() -> DataFrame:
        rdd = selected.rdd.mapPartitions(functools.partial(_score_rows, weights=w, intercept=b))
        return spark.createDataFrame(rdd, SCORE_SCHEMA)

    def map_in_pandas() -> DataFrame:
        return selected.mapInPandas(
            functools.partial(_score_frames, features=list(features), weights=w, intercept=b), SCORE_SCHEMA)

    def arrow() -> DataFrame:
        kernel = functools.partial(score_batches, id_column="id", feature_columns=list(features), weights=w,
                                   intercept=b)
        return map_in_arrow(selected, kernel, SCORE_SCHEMA)

    def jvm_sql() -> DataFrame:
        z = F.lit(b)
        for name, weight in zip(features, w):
            z = z + F.col(name) * F.lit(weight)
        return selected.select("id", (F.lit(1.0) / (F.lit(1.0) + F.exp(-z))).alias("score"))

    return {"pickle_rdd": pickle_rdd, "map_in_pandas": map_in_pandas, "map_in_arrow": arrow, "jvm_sql": jvm_sql}


def receive_only(df: DataFrame, features: Sequence[str]) -> DataFrame:
    """The same columns through ``mapInArrow`` to a kernel that only counts rows and sums ids: the hop alone."""
    return df.select("id", *features).mapInArrow(_count_batches, "n long, id_sum long")


def _count_batches(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    import pyarrow.compute as pc

    n = id_sum = 0
    for batch in batches:
        n += batch.num_rows
        id_sum += pc.sum(batch.column("id")).as_py() or 0
    yield pa.RecordBatch.from_pydict({"n": [n], "id_sum": [id_sum]}, schema=pa.schema([("n", pa.int64()), ("id_sum", pa.int64())]))


def _score_rows(rows: Iterator[Any], *, weights: list[float], intercept: float) -> Iterator[tuple[int, float]]:
    """The row-at-a-time kernel: what a pickle-based engine runs per Row object."""
    exp = math.exp
    for row in rows:
        z = intercept
        for weight, value in zip(weights, row[1:]):
            z += weight * value
        yield row[0], (1.0 / (1.0 + exp(-z)) if z > -700.0 else 0.0)


def _score_frames(
    frames: Iterator[pd.DataFrame], *, features: list[str], weights: list[float], intercept: float
) -> Iterator[pd.DataFrame]:
    """The pandas kernel: one matrix product per batch."""
    import pandas as pd

    w = np.asarray(weights)
    for frame in frames:
        z = frame[features].to_numpy(dtype=np.float64) @ w + intercept
        with np.errstate(over="ignore"):
            yield pd.DataFrame({"id": frame["id"], "score": 1.0 / (1.0 + np.exp(-z))})


def _timed_sum(scores: DataFrame) -> tuple[float, float, int, int]:
    """Seconds to compute sum(score), count(*) and sum(id) over ``scores`` (forces every score and id)."""
    from pyspark.sql import functions as F

    started = time.perf_counter()
    row = scores.agg(F.sum("score").alias("s"), F.count(F.lit(1)).alias("n"), F.sum("id").alias("i")).collect()[0]
    return time.perf_counter() - started, float(row["s"] or 0.0), int(row["n"]), int(row["i"] or 0)


def _timed_count(counts: DataFrame) -> tuple[float, float, int, int]:
    """Seconds to total the receive-only counts; the same shape as :func:`_timed_sum` (no score sum)."""
    from pyspark.sql import functions as F

    started = time.perf_counter()
    row = counts.agg(F.sum("n").alias("n"), F.sum("id_sum").alias("i")).collect()[0]
    return time.perf_counter() - started, 0.0, int(row["n"] or 0), int(row["i"] or 0)


def codec_bench(rows: int, cols: int, seed: int = 2) -> dict[str, dict[str, Any]]:
    """Encode and decode one table as Arrow IPC and with pickle (rows, numpy columns); rows/s and MB/s.

    The pickle bytes are made and loaded here, in one process: this measures
    the codec a row-oriented engine would use, it never carries data anywhere.
    """
    rng = np.random.default_rng(seed)
    ids = np.arange(rows, dtype=np.int64)
    columns = [rng.standard_normal(rows) for _ in range(cols)]
    table = pa.Table.from_arrays([pa.array(ids), *map(pa.array, columns)],
                                 names=["id", *(f"x{j}" for j in range(cols))])
    row_tuples = list(zip(ids.tolist(), *(c.tolist() for c in columns)))
    numpy_columns = {"id": ids, **{f"x{j}": c for j, c in enumerate(columns)}}
    mb = rows * (cols + 1) * 8 / 1e6

    def arrow_round_trip() -> int:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        buffer = sink.getvalue()
        decoded = pa.ipc.open_stream(buffer).read_all()
        return int(decoded.num_rows)

    def pickle_rows_round_trip() -> int:
        decoded: list[tuple[Any, ...]] = pickle.loads(pickle.dumps(row_tuples, protocol=pickle.HIGHEST_PROTOCOL))
        return len(decoded)

    def pickle_numpy_round_trip() -> int:
        decoded: dict[str, np.ndarray] = pickle.loads(pickle.dumps(numpy_columns, protocol=pickle.HIGHEST_PROTOCOL))
        return len(decoded["id"])

    out: dict[str, dict[str, Any]] = {}
    for name, fn in (("arrow_ipc", arrow_round_trip), ("pickle_rows", pickle_rows_round_trip),
                     ("pickle_numpy_columns", pickle_numpy_round_trip)):
        seconds = _best_of(fn, rows)
        out[name] = {"rate": rows / seconds, "unit": "rows/s (encode + decode)", "mb_per_s": mb / seconds,
                     "seconds": seconds}
    return out


def _best_of(fn: Callable[[], int], expected: int, repeats: int = 3) -> float:
    best = math.inf
    for _ in range(repeats):
        started = time.perf_counter()
        if fn() != expected:
            raise RuntimeError("bench arrow: a codec round trip lost rows")
        best = min(best, time.perf_counter() - started)
    return best


def _rounded(figure: dict[str, Any]) -> dict[str, Any]:
    return {k: (round(v, 4) if isinstance(v, float) and k == "seconds" else round(v, 1) if isinstance(v, float) and k != "score_sum" else v)
            for k, v in figure.items()}
