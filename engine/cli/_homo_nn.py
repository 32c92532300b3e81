"""``fedspark run`` for simulation jobs and ``fedspark bench homo-nn``.

Kept out of ``cli.py``: the CLI registers these functions, they hold the logic.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from fedspark.engine.config._job import JobConfig


def run_simulation_job(job: JobConfig, job_id: str, runs_dir: Path, console: Console) -> dict[str, Any]:
    """Run a simulation job in this process (:func:`fedspark.algorithms.homo_nn.simulate`); writes
    ``runs/<job_id>/simulation/``."""
    from fedspark.algorithms.homo_nn import HomoNNParams, simulate
    from fedspark.engine.runtime import _worker_daemon
    from fedspark.engine.runtime._spark import SIM_SPARK_CONF, build_session

    if job.simulation is None:
        raise ValueError(f"job {job.name} has no simulation section")
    params = HomoNNParams.model_validate(job.params)
    started = time.monotonic()
    spark = build_session(f"fedspark-sim-{job_id}", {**SIM_SPARK_CONF, **job.spark})

    def on_round(round_no: int, record: dict[str, Any]) -> None:
        loss = record.get("loss")
        console.print(f"round {round_no + 1}/{params.rounds} {len(record['reported'])} clients "
                      f"{record['seconds']:.2f}s" + (f" loss {loss:.5f}" if loss is not None else ""))

    try:
        metrics = simulate(spark, job.simulation.settings(), params, job_id, runs_dir / job_id / "simulation",
                           timeout_s=job.federation.timeout_s, on_round=on_round, workers=_worker_daemon)
    finally:
        spark.stop()
    metrics["total_seconds"] = time.monotonic() - started
    return metrics


def bench_homo_nn(
    clients: Annotated[int, typer.Option(help="virtual clients")] = 100,
    rounds: Annotated[int, typer.Option(help="plaintext rounds (the first includes start-up)")] = 5,
    masked_rounds: Annotated[int, typer.Option(help="rounds with pairwise masking (the ratio uses those after "
                                                    "the first, as for plaintext)")] = 3,
    neighbours: Annotated[int, typer.Option(help="clients each masks with (0 = all: full Bonawitz)")] = 16,
    paillier_rounds: Annotated[int, typer.Option(help="timed rounds of the 10k-parameter model, plain and Paillier")] = 2,
    paillier_key_size: Annotated[int, typer.Option(help="the clients' shared Paillier key (under 2048 is insecure)")] = 2048,
    sim: Annotated[bool, typer.Option("--sim/--no-sim", help="simulated clients as Spark tasks (the only mode)")] = True,
) -> None:
    """Rounds/s of simulated clients on breast, and masked vs plaintext round time (one JSON object)."""
    from fedspark.bench import run_homo_nn_bench
    from fedspark.common import ConfigError

    if not sim:
        raise ConfigError("bench homo-nn measures simulated clients only: pass --sim")
    Console().print_json(data=run_homo_nn_bench(clients=clients, rounds=rounds, masked_rounds=masked_rounds,
                                                      neighbours=neighbours or None, paillier_rounds=paillier_rounds,
                                                      paillier_key_size=paillier_key_size))


def predict(
    model: Annotated[Path, typer.Argument(help="a homo_nn model.json from a run folder")],
    table: Annotated[str, typer.Argument(help="the table to score (path or URI, CSV or Parquet)")],
    out: Annotated[Path, typer.Option("--out", help="Parquet folder to write")] = Path("scores.parquet"),
    id_column: Annotated[str, typer.Option(help="the table's id column")] = "id",
    threshold: Annotated[float, typer.Option(help="decision threshold for 'prediction' (bce models)")] = 0.5,
) -> None:
    """Score a table with a trained homo_nn model as a Spark job; writes id, score, prediction as Parquet."""
    from fedspark.algorithms.homo_nn import predict_table
    from fedspark.engine.runtime._spark import build_session

    spark = build_session("fedspark-predict", {})
    try:
        result = predict_table(spark, model, table, out, id_column=id_column, threshold=threshold)
    finally:
        spark.stop()
    Console().print(f"scored {result['rows']} rows into {result['out']}")
