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

Each runs twice. First on the cores of this machine, which guest and host then
share (``ratio_two_cores``). Then as a federation is deployed, where parties
share no CPU: each party's process tree pinned to a core of its own before its
JVM starts (``local[1]``), against the baseline pinned to one core (``ratio``,
the target's figure). Each run's CPU seconds per party and process kind are
sampled from ``/proc`` (:mod:`fedspark.bench._cpu`), so a missed target says
where the time went.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from fedspark.bench._cpu import CpuSampler
from fedspark.common import FedsparkError

TARGET_RATIO = 0.25
GUEST, HOST = "guest:9999", "host:10000"
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


def _models(folder: Path, cols: int, seed: int = 1) -> None:
    """Each party's model share, in ``model-<role>/model.json`` (what a trained job leaves)."""
    rng = np.random.default_rng(seed)
    g_cols, h_cols = cols - cols // 2, cols // 2
    guest = {"role": "guest", "party_id": "9999", "feature_names": [f"g{j}" for j in range(g_cols)],
             "weights": rng.normal(0, 0.5, g_cols).tolist(), "intercept": 0.1, "meta": {}}
    host = {"role": "host", "party_id": "10000", "feature_names": [f"h{j}" for j in range(h_cols)],
            "weights": rng.normal(0, 0.5, h_cols).tolist(), "intercept": None, "meta": {}}
    for name, model in (("guest", guest), ("host", host)):
        _model_file(folder, name).parent.mkdir()
        _model_file(folder, name).write_text(json.dumps(model))


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


def _plaintext(folder: Path, joined: Path, out: str, memory: str, cpus: list[int] | None) -> dict[str, Any]:
    """The baseline in its own process (pinned to ``cpus`` if given): seconds, cores, master, CPU-s."""
    result = folder / f"{out}.json"
    cmd = [sys.executable, "-m", "fedspark.bench._scoring_baseline", str(joined), str(folder / out), str(result),
           "--memory", memory, *(arg for name in ("guest", "host") for arg in ("--model", str(_model_file(folder, name))))]
    if cpus:
        cmd += ["--cpus", ",".join(map(str, cpus))]
    sampler = CpuSampler(lambda argv: "plaintext" if str(result) in argv else None).start()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, start_new_session=True)
    finally:
        cpu = sampler.stop()
    if proc.returncode != 0:
        raise FedsparkError(f"bench scoring: the plaintext baseline failed (exit {proc.returncode}): "
                            f"{proc.stderr.strip()[-2000:]}")
    return {**json.loads(result.read_text()), "cpu_s": cpu.get("plaintext", {})}


def _federated(folder: Path, paths: dict[str, Path], out: str, memory: str,
               cpus: dict[str, list[int]] | None) -> dict[str, Any]:
    """The ``hetero_lr_predict`` job, parties pinned to ``cpus`` if given: the guest's and host's results, CPU-s."""
    from fedspark.engine import EmbeddedRunner, load_job

    job = {
        "name": "bench_scoring",
        "algorithm": "hetero_lr_predict",
        "parties": {
            "guest": {"party_id": "9999", "model_dir": str(_model_file(folder, "guest").parent),
                      "data": {"uri": str(paths["guest"]), "label_column": "y"}},
            "hosts": [{"party_id": "10000", "model_dir": str(_model_file(folder, "host").parent),
                       "data": {"uri": str(paths["host"])}}],
        },
        "scoring": {"output": str(folder / out)},
        "align": "same_ids",
        "federation": {"timeout_s": 3600},
        "spark": {"spark.driver.memory": memory},
    }
    job_file = folder / f"{out}.yaml"
    job_file.write_text(yaml.safe_dump(job))
    job_id = f"bench-scoring-{out}-{int(time.time())}"
    sampler = CpuSampler(lambda argv: _party_of(argv) if job_id in argv else None).start()
    started = time.perf_counter()
    try:
        result = EmbeddedRunner(load_job(job_file), job_file, job_id, folder / "runs", cpus=cpus).run()
    finally:
        wall = time.perf_counter() - started
        cpu = sampler.stop()
    return {"guest": result.results[GUEST], "host": result.results[HOST], "whole_run_s": wall, "cpu_s": cpu}


def _party_of(argv: list[str]) -> str | None:
    return argv[argv.index("--party") + 1] if "--party" in argv[:-1] else None


def _model_file(folder: Path, role: str) -> Path:
    return folder / f"model-{role}" / "model.json"


def _federated_figures(rows: int, run: dict[str, Any]) -> dict[str, Any]:
    seconds = float(run["guest"]["seconds"])
    return {"rate": rows / seconds, "unit": "rows/s", "seconds": seconds, "whole_run_s": run["whole_run_s"],
            "guest_phases_s": _phases(run["guest"]), "host_phases_s": _phases(run["host"]), "cpu_s": run["cpu_s"]}


def _plaintext_figures(rows: int, run: dict[str, Any]) -> dict[str, Any]:
    return {"rate": rows / run["seconds"], "unit": "rows/s", "seconds": run["seconds"], "cpus": run["cpus"],
            "spark_master": run["master"], "cpu_s": run["cpu_s"]}


def run_scoring_bench(*, rows: int, cols: int = 10, memory: str = "3g", work_dir: Path | None = None) -> dict[str, Any]:
    """Federated and plaintext scoring, first on the cores all share, then one core per party against one core."""
    cores = sorted(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        folder = Path(tmp)
        paths = write_scoring_tables(folder, rows, cols)
        _models(folder, cols)
        plain = _plaintext(folder, paths["joined"], "plain-scores", memory, None)
        fed = _federated(folder, paths, "fed-scores", memory, None)
        checks = [_agreement(folder / "fed-scores", folder / "plain-scores", rows)]
        if len(cores) >= 2:
            party_cpus = {GUEST: cores[:1], HOST: cores[1:2]}
            plain_one = _plaintext(folder, paths["joined"], "plain-scores-one-core", memory, cores[:1])
            fed_one = _federated(folder, paths, "fed-scores-one-core", memory, party_cpus)
            checks.append(_agreement(folder / "fed-scores-one-core", folder / "plain-scores-one-core", rows))
        diff, same_ids = max(d for d, _ in checks), all(found for _, found in checks)

    results: dict[str, Any] = {"federated": _federated_figures(rows, fed),
                               "plaintext_joined": _plaintext_figures(rows, plain)}
    baseline = {"plaintext_joined": {"rate": results["plaintext_joined"]["rate"], "unit": "rows/s"}}
    ratio_two_cores = results["federated"]["rate"] / results["plaintext_joined"]["rate"]
    ratio: float | None = None
    if len(cores) >= 2:
        one = results["federated_one_core_per_party"] = _federated_figures(rows, fed_one)
        one["pinned"] = {party: {key: fed_one[party.split(":")[0]].get(key) for key in ("cpus", "spark_master")}
                         for party in party_cpus}  # as each party reported it
        plain_fig = results["plaintext_joined_one_core"] = _plaintext_figures(rows, plain_one)
        baseline["plaintext_joined_one_core"] = {"rate": plain_fig["rate"], "unit": "rows/s"}
        ratio = one["rate"] / plain_fig["rate"]
    else:
        results["federated_one_core_per_party"] = {
            "skipped": f"this process may use {len(cores)} core(s) ({cores}); one core per party needs 2"}
    results["agreement"] = {"max_abs_score_diff_sample": diff, "sample_ids_found": same_ids}
    return {
        "bench": "scoring",
        "params": {"rows": rows, "cols": cols, "guest_cols": cols - cols // 2, "host_cols": cols // 2,
                   "spark.driver.memory": memory, "cores": len(cores),
                   "parties": "guest + 1 host, own processes, loopback gRPC"},
        "results": results,
        "baseline": baseline,
        "ratio": ratio,
        "ratio_two_cores": ratio_two_cores,
        "target": {"ratio": f">= {TARGET_RATIO}",
                   "ratio_is": "federated rows/s, one core per party / plaintext rows/s on one core"},
        "meets_target": bool(ratio is not None and ratio >= TARGET_RATIO and same_ids and diff < 1e-9),
    }
