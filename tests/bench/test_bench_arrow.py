"""`fedspark bench arrow` at a tiny size: every variant gives the same score per id, and the CLI
prints one JSON object with the agreed keys."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fedspark.bench._arrow import codec_bench, receive_only, score_variants, write_table


def test_all_variants_give_the_same_scores(spark: Any, tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    write_table(path, 2500, 4, chunk_rows=1000)
    df = spark.read.parquet(path.as_uri())
    features = [f"x{j}" for j in range(4)]
    weights = [0.4, -0.2, 0.1, 0.7]
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "300")
    scores = {name: make().orderBy("id").toPandas() for name, make in
              score_variants(spark, df, features, weights, 0.25).items()}
    table = df.orderBy("id").toPandas()
    expected = 1.0 / (1.0 + np.exp(-(0.25 + table[features].to_numpy() @ np.asarray(weights))))
    for name, frame in scores.items():
        assert frame["id"].tolist() == list(range(2500)), name
        np.testing.assert_allclose(frame["score"].to_numpy(), expected, rtol=1e-12, err_msg=name)
    counts = receive_only(df, features).toPandas()  # one row per partition: every row and id reached Python once
    assert (counts["n"].sum(), counts["id_sum"].sum()) == (2500, 2500 * 2499 // 2)


def test_codec_round_trips_every_row() -> None:
    codec = codec_bench(2000, 3)
    assert set(codec) == {"arrow_ipc", "pickle_rows", "pickle_numpy_columns"}
    assert all(figure["rate"] > 0 and figure["mb_per_s"] > 0 for figure in codec.values())


def test_cli_prints_one_json_object(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "from fedspark.engine.cli import main; main()", "bench", "arrow",
         "--rows", "3000", "--cols", "3", "--batch-rows", "500", "--codec-rows", "1000", "--master", "local[1]",
         "--work-dir", str(tmp_path), "--repeats", "2"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert {"bench", "params", "results", "baseline", "ratio", "target", "meets_target"} <= result.keys()
    assert result["bench"] == "arrow" and result["params"]["rows"] == 3000
    assert result["params"]["spark_conf"]["spark.sql.execution.arrow.maxRecordsPerBatch"] == "500"
    assert result["params"]["spark_conf"]["spark.buffer.size"] == str(1 << 20)
    rounds = result["params"]["seconds_each_round"]
    assert len(rounds["map_in_arrow"]) == len(rounds["jvm_sql"]) == len(rounds["map_in_arrow_receive_only"]) == 2
    assert result["results"]["map_in_arrow"]["seconds"] == pytest.approx(min(rounds["map_in_arrow"]), abs=1e-3)
    for name in ("pickle_rdd", "map_in_pandas", "map_in_arrow", "map_in_arrow_receive_only", "codec_arrow_ipc"):
        assert result["results"][name]["rate"] > 0 and result["results"][name]["unit"].startswith("rows/s")
    assert result["baseline"]["jvm_sql"]["rate"] > 0 and result["baseline"]["codec_pickle_rows"]["rate"] > 0
    assert result["checks"]["scores_agree"] is True
    assert result["ratio"] == round(result["results"]["map_in_arrow"]["rate"] / result["results"]["pickle_rdd"]["rate"], 2)
    receive = result["results"]["map_in_arrow_receive_only"]
    assert result["ratios"]["map_in_arrow_receive_only_vs_jvm_sql"] == round(
        receive["rate"] / result["baseline"]["jvm_sql"]["rate"], 3)
    assert isinstance(result["meets_target"], bool)
    assert list(tmp_path.glob("fedspark-bench-arrow-*")) == []  # the Parquet table is removed
