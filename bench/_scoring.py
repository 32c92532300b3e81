"""``fedspark bench scoring``: federated batch scoring rows/s against plaintext scoring, same run.

Federated: the real ``hetero_lr_predict`` job (guest and one host as separate
processes with their own Spark, gateways on loopback): read and validate each
party's Parquet table, check the id sets match (salted digest on the
executors), number the rows, each party's partial scores in ``mapInArrow``,
the host's scores to the guest as a distributed table, join, sigmoid, Parquet.
Baseline: the joined table scored by one Spark SQL expression (read Parquet,
``1/(1+exp(-(x·w+b)))``, write Parquet) in a single session, which is what a
company would run if it could pool the data. Rates use the guest's scoring
time (model loaded to scores written), not process or JVM start-up.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

TARGET_RATIO = 0.3
_CHUNK = 1_000_000


def write_scoring_tables(folder: Path, rows: int, cols: int, seed: int = 0) -> dict[str, Path]:
    """Guest (id, y, half the features), host (id, the other half) and their join, written in row groups."""
    rng = np.random.default_rng(seed)
    g_cols, h_cols = cols - cols // 2, cols // 2
    paths = {name: folder / f"{name}.parquet" for name in ("guest", "host", "joined")}
    writers: dict[str, pq.ParquetWriter] = {}
    try:
        for start in range(0, rows, _CHUNK):
            n = min(_CHUNK, rows - start)
            ids = pa.array(np.arange(start, start + n, dtype=np.int64))
            x = rng.standard_normal((n, cols))
            y = pa.array((rng.random(n) < 0.5).astype(np.int64))
            guest = {"id": ids, "y": y, **{f"g{j}": x[:, j] for j in range(g_cols)}}
            host = {"id": ids, **{f"h{j}": x[:, g_cols + j] for j in range(h_cols)}}
            tables = {"guest": pa.table(guest), "host": pa.table(host), "joined": pa.table({**guest, **host})}
            for name, table in tables.items():
                if name not in writers:
                    writers[name] = pq.ParquetWriter(paths[name], table.schema)
                writers[name].write_table(table)
    finally:
        for writer in writers.values():
            writer.close()
    return paths


def _models(folder: Path, cols: int, seed: int = 1) -> dict[str, dict[str, Any]]:
    rng = np.random.default_rng(seed)
    g_cols, h_cols = cols - cols // 2, cols // 2
    guest = {"role": "guest", "party_id": "9999", "feature_names": [f"g{j}" for j in range(g_cols)],
             "weights": rng.normal(0, 0.5, g_cols).tolist(), "intercept": 0.1, "meta": {}}
    host = {"role": "host", "party_id": "10000", "feature_names": [f"h{j}" for j in range(h_cols)],
            "weights": rng.normal(0, 0.5, h_cols).tolist(), "intercept": None, "meta": {}}
    for name, model in (("guest", guest), ("host", host)):
        (folder / f"model-{name}").mkdir()
        (folder / f"model-{name}" / "model.json").write_text(json.dumps(model))
    return {"guest": guest, "host": host}


def _plaintext(joined: Path, out: Path, models: dict[str, dict[str, Any]], memory: str) -> float:
    from pyspark.sql import functions as F

    from fedspark.engine import build_session

    spark = build_session("fedspark-bench-scoring-plaintext", {"spark.driver.memory": memory})
    try:
        df = spark.read.parquet(str(joined))
        linear = F.lit(float(models["guest"]["intercept"]))
        for model in models.values():
            for name, w in zip(model["feature_names"], model["weights"]):
                linear = linear + F.col(name) * F.lit(float(w))
        started = time.perf_counter()
        df.select("id", (F.lit(1.0) / (F.lit(1.0) + F.exp(-linear))).alias("score")).write.parquet(str(out))
        seconds = time.perf_counter() - started
    finally:
        spark.stop()
    return seconds


def _agreement(federated: Path, plaintext: Path, rows: int, sample: int = 1000) -> tuple[float, bool]:
    """Federated and plaintext scores of the same sampled ids: the largest difference, and whether all were found."""
    fed = pq.read_table(federated, columns=["id", "score"]).slice(0, sample)
    ids = [int(i) for i in fed.column("id").to_pylist()]
    plain = pq.read_table(plaintext, columns=["id", "score"], filters=[("id", "in", ids)])
    by_id = dict(zip(plain.column("id").to_pylist(), plain.column("score").to_pylist()))
    found = len(by_id) == len(ids) and len(ids) == min(sample, rows)
    diffs = [abs(s - by_id.get(i, float("inf"))) for i, s in zip(ids, fed.column("score").to_pylist())]
    return (max(diffs) if diffs else 0.0), found


def _phases(metrics: dict[str, Any]) -> dict[str, float]:
    """A party's seconds per scoring phase (loading its model, the salt, reading, aligning, scoring)."""
    return {k: round(float(v), 2) for k, v in metrics.items() if k.startswith("phase_")}


def run_scoring_bench(*, rows: int, cols: int = 10, memory: str = "3g", work_dir: Path | None = None) -> dict[str, Any]:
    from fedspark.engine import EmbeddedRunner, load_job

    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        folder = Path(tmp)
        paths = write_scoring_tables(folder, rows, cols)
        models = _models(folder, cols)
        plain_s = _plaintext(paths["joined"], folder / "plain-scores", models, memory)

        job = {
            "name": "bench_scoring",
            "algorithm": "hetero_lr_predict",
            "parties": {
                "guest": {"party_id": "9999", "model_dir": str(folder / "model-guest"),
                          "data": {"uri": str(paths["guest"]), "label_column": "y"}},
                "hosts": [{"party_id": "10000", "model_dir": str(folder / "model-host"),
                           "data": {"uri": str(paths["host"])}}],
            },
            "scoring": {"output": str(folder / "fed-scores")},
            "align": "same_ids",
            "federation": {"timeout_s": 3600},
            "spark": {"spark.driver.memory": memory},
        }
        job_file = folder / "job.yaml"
        job_file.write_text(yaml.safe_dump(job))
        started = time.perf_counter()
        result = EmbeddedRunner(load_job(job_file), job_file, f"bench-scoring-{int(time.time())}", folder / "runs").run()
        wall = time.perf_counter() - started
        guest, host = result.results["guest:9999"], result.results["host:10000"]
        fed_s = float(guest["seconds"])
        diff, same_ids = _agreement(folder / "fed-scores", folder / "plain-scores", rows)

    fed_rate, plain_rate = rows / fed_s, rows / plain_s
    ratio = fed_rate / plain_rate
    return {
        "bench": "scoring",
        "params": {"rows": rows, "cols": cols, "guest_cols": cols - cols // 2, "host_cols": cols // 2,
                   "spark.driver.memory": memory, "parties": "guest + 1 host, own processes, loopback gRPC"},
        "results": {
            "federated": {"rate": fed_rate, "unit": "rows/s", "seconds": fed_s, "whole_run_s": wall},
            "plaintext_joined": {"rate": plain_rate, "unit": "rows/s", "seconds": plain_s},
            "agreement": {"max_abs_score_diff_sample": diff, "sample_ids_found": same_ids},
            "guest_phases_s": _phases(guest),
            "host_phases_s": _phases(host),
        },
        "baseline": {"plaintext_joined": {"rate": plain_rate, "unit": "rows/s"}},
        "ratio": ratio,
        "target": {"ratio": f">= {TARGET_RATIO}"},
        "meets_target": bool(ratio >= TARGET_RATIO and same_ids and diff < 1e-9),
    }
