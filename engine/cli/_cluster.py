"""CLI commands for the Arrow benchmark and for running a party on its own cluster.

Registered in ``engine/cli/__init__.py`` with every other command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

out = Console()


def bench_arrow(
    rows: Annotated[int, typer.Option(help="rows of the synthetic table")] = 10_000_000,
    cols: Annotated[int, typer.Option(help="float64 feature columns")] = 10,
    batch_rows: Annotated[int, typer.Option(help="spark.sql.execution.arrow.maxRecordsPerBatch")] = 10_000,
    codec_rows: Annotated[int, typer.Option(help="rows of the table for the wire-codec figures")] = 1_000_000,
    master: Annotated[str, typer.Option(help="Spark master")] = "local[2]",
    work_dir: Annotated[Path | None, typer.Option(help="folder for the temporary Parquet table")] = None,
    repeats: Annotated[int, typer.Option(min=1, help="interleaved rounds of mapInArrow and the JVM baseline (best kept)")] = 3,
) -> None:
    """Rows/s of one scoring kernel via Row objects (rdd), mapInPandas and mapInArrow, vs Spark SQL in the JVM."""
    from fedspark.bench import run_arrow_bench

    out.print_json(data=run_arrow_bench(rows, cols, batch_rows=batch_rows, codec_rows=codec_rows, master=master,
                                        work_dir=work_dir, repeats=repeats))


def spark_submit(
    job_file: Annotated[Path, typer.Argument(help="job definition; the party's 'cluster' section says where to submit")],
    party: Annotated[str, typer.Option(help="this party, as role:party_id (e.g. guest:9999)")],
    job_id: Annotated[str, typer.Option(help="the job id every party uses")] = "job",
    runs_dir: Annotated[Path, typer.Option(help="where the driver writes this party's results")] = Path("runs"),
    port: Annotated[int | None, typer.Option(help="this party's gateway port")] = None,
    routes: Annotated[Path | None, typer.Option(help="JSON file {party_id: 'host:port'} of every party's gateway")] = None,
    tls_dir: Annotated[Path | None, typer.Option(
        help="client deploy mode: folder with ca.pem, party-<id>.pem and party-<id>.key "
             "(cluster deploy mode reads cluster.tls_dir_on_nodes; keys are never shipped)")] = None,
    master: Annotated[str | None, typer.Option(help="override cluster.master")] = None,
    deploy_mode: Annotated[str | None, typer.Option(help="override cluster.deploy_mode (client or cluster)")] = None,
    python: Annotated[str | None, typer.Option(help="override the executors' Python (PYSPARK_PYTHON)")] = None,
    check: Annotated[bool, typer.Option(help="submit a check instead of the job: load and validate the table, exit")] = False,
    execute: Annotated[bool, typer.Option(help="run the command instead of only printing it")] = False,
) -> None:
    """Print (or with --execute run) the spark-submit command for one party's side of a job."""
    import subprocess

    from fedspark.common import ConfigError, PartyRef
    from fedspark.engine.config._cluster import ClusterConfig
    from fedspark.engine.config._job import load_job
    from fedspark.engine.runtime._submit import spark_submit_command, submit_env

    job = load_job(job_file)
    try:
        me = PartyRef.parse(party)
    except ValueError as exc:
        raise ConfigError(f"--party: {exc}") from None
    cluster = job.party_config(me).cluster or ClusterConfig()
    overrides = {k: v for k, v in (("master", master), ("deploy_mode", deploy_mode), ("python", python)) if v}
    try:
        cluster = ClusterConfig.model_validate({**cluster.model_dump(), **overrides})
    except ValueError as exc:
        raise ConfigError(f"job file {job_file}: party {me}: {exc}") from None
    command = spark_submit_command(cluster, job_file=job_file, me=me, job_id=job_id, runs_dir=runs_dir,
                                   spark_conf=job.spark, port=port, routes_file=routes, tls_dir=tls_dir, check=check)
    print(command.shell(), flush=True)  # plain: one line a shell can run, no rich wrapping or markup
    if execute:
        raise typer.Exit(subprocess.run(command.argv, env=submit_env(command)).returncode)
