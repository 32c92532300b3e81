"""Job commands of the CLI: ``fedspark run``, ``fedspark predict`` and ``fedspark examples``.

Expected failures (bad job file, bad table, a peer that failed or timed out)
print one clear message and exit non-zero; only bugs show a traceback.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from fedspark.common import ConfigError
from fedspark.crypto import SECURE_MIN_KEY_SIZE

console = Console(stderr=True)
out = Console()



def run(
    job_file: Annotated[Path, typer.Argument(help="job definition, e.g. jobs/hetero_lr_breast.yaml")],
    job_id: Annotated[str | None, typer.Option(help="defaults to <name>-<time>-<random>")] = None,
    runs_dir: Annotated[Path, typer.Option(help="where each party writes its results")] = Path("runs"),
    tap_dir: Annotated[Path | None, typer.Option(hidden=True, help="record every payload a gateway accepts")] = None,
    spark_master: Annotated[str | None, typer.Option(help="run guest and hosts as spark-submit applications on this master, e.g. spark://HOST:7077")] = None,
    cores_max: Annotated[int, typer.Option(help="with --spark-master: spark.cores.max (and executor cores) per party")] = 1,
    min_key_size: Annotated[int, typer.Option(help="smallest Paillier key every local party accepts (under 2048: tests and benchmarks only)")] = SECURE_MIN_KEY_SIZE,
) -> None:
    """Run a job with every party on this machine (one process each, gateways on loopback)."""
    _run_job(job_file, job_id, runs_dir, tap_dir, spark_master=spark_master, cores_max=cores_max,
             min_key_size=min_key_size)


def predict(
    job_file: Annotated[Path, typer.Argument(help="scoring job, e.g. jobs/predict_breast.yaml")],
    job_id: Annotated[str | None, typer.Option(help="defaults to <name>-<time>-<random>")] = None,
    runs_dir: Annotated[Path, typer.Option(help="runs folder: holds the training run and receives this one")] = Path(
        "runs"
    ),
    tap_dir: Annotated[Path | None, typer.Option(hidden=True, help="record every payload a gateway accepts")] = None,
) -> None:
    """Score a table with a trained vertical model, every party on this machine; the guest writes Parquet."""
    _run_job(job_file, job_id, runs_dir, tap_dir, algorithm="hetero_lr_predict")


_RESULT_COLUMNS = {
    "own_ids": "own ids", "matched": "matched", "unmatched": "unmatched ids",
    "epochs": "epochs", "seconds_per_epoch": "s/epoch", "scored_rows": "scored", "unmatched_rows": "unmatched",
    "rows_per_second": "rows/s", "auc": "AUC", "ks": "KS", "accuracy": "accuracy",
}


def _run_job(
    job_file: Path, job_id: str | None, runs_dir: Path, tap_dir: Path | None, algorithm: str | None = None,
    *, spark_master: str | None = None, cores_max: int = 1, min_key_size: int = SECURE_MIN_KEY_SIZE,
) -> None:
    from fedspark.engine.config._job import load_job
    from fedspark.engine.runtime._examples_for_job import ensure_example_data
    from fedspark.engine.runtime._runner import EmbeddedRunner

    job = load_job(job_file)
    if algorithm is not None and job.algorithm != algorithm:
        raise ConfigError(f"job file {job_file}: algorithm is {job.algorithm!r}; this command runs {algorithm!r} jobs")
    for path in ensure_example_data(job):
        console.print(f"generated example table [bold]{path}[/]")
    job_id = job_id or f"{job.name}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
    if job.simulation is not None:  # homo_nn with virtual clients: one process, Spark tasks
        from fedspark.engine.cli._homo_nn import run_simulation_job

        metrics = run_simulation_job(job, job_id, runs_dir, console)
        out.print(f"{job_id}: {metrics['rounds']} rounds of {metrics['clients']} clients, "
                  f"{metrics['rounds_per_second']:.2f} rounds/s, accuracy {_fmt(metrics.get('accuracy'))}")
        out.print(f"results in {runs_dir / job_id / 'simulation'}")
        return
    from fedspark.algorithms import get_algorithm

    steps_param = get_algorithm(job.algorithm).steps_param  # None: one step (scoring, psi)
    max_iter = int(job.params.get(steps_param, 20)) if steps_param is not None else 1
    console.print(f"job [bold]{job_id}[/]: {', '.join(str(p) for p in job.party_refs())}")
    if min_key_size < SECURE_MIN_KEY_SIZE:
        console.print(f"[yellow]parties accept Paillier keys down to {min_key_size} bits (--min-key-size): "
                      "tests and benchmarks only[/]")
    if not job.federation.tls:
        console.print("[yellow]federation.tls: false: parties talk plaintext gRPC on loopback; any local process "
                      "can read and inject their messages[/]")

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[loss]}"), TimeElapsedColumn(), console=console, transient=False,
    ) as progress:
        task = progress.add_task("starting parties", total=max_iter, loss="")

        def on_event(event: dict[str, Any]) -> None:
            kind = event.get("event")
            if kind == "epoch" and event["party"].startswith("arbiter"):
                loss = event.get("loss")
                loss_text = f"loss {loss:.5f}" if loss is not None else ""
                progress.update(task, description="training", completed=event["epoch"], loss=loss_text)
                if not console.is_terminal:  # logs and CI: one line per epoch instead of a redrawn bar
                    console.print(f"{event.get('unit', 'epoch')} {event['epoch']}/{event['total']} {loss_text}")
            elif kind == "ready":
                progress.update(task, description="parties ready")
            elif kind == "done" and event["party"].startswith("guest"):
                done = progress.tasks[0].completed if steps_param is not None else 1
                progress.update(task, description="done", completed=done)

        result = EmbeddedRunner(job, job_file, job_id, runs_dir, tap_dir=tap_dir, on_event=on_event,
                                spark_master=spark_master, cores_max=cores_max, min_key_size=min_key_size).run()

    table = Table(title=f"{job_id} finished in {result.seconds:.1f}s")
    keys = [k for k in _RESULT_COLUMNS if any(k in m for m in result.results.values())]
    for col in ("party", *(_RESULT_COLUMNS[k] for k in keys)):
        table.add_column(col)
    for party, metrics in result.results.items():
        table.add_row(party, *(_fmt(metrics.get(key)) for key in keys))
    out.print(table)
    for party, metrics in result.results.items():
        if "scores" in metrics:
            out.print(f"scores of {party} in {metrics['scores']}")
    modes = sorted({str(m["transport"]) for m in result.results.values() if "transport" in m})
    if modes:
        out.print(f"federation transport: {', '.join(modes)}")
    out.print(f"results in {result.run_dir}")


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else ("" if value is None else str(value))


def examples(
    out_dir: Annotated[Path, typer.Option("--out", help="folder for the example tables")] = Path("data"),
) -> None:
    """Write the example tables (breast cancer, split by columns and by rows like FATE's examples)."""
    from fedspark.engine.runtime._examples import write_breast_examples, write_breast_homo_examples

    for name, path in write_breast_examples(out_dir).items():
        out.print(f"{name}: {path}")
    for name, path in write_breast_homo_examples(out_dir).items():
        out.print(f"homo {name}: {path}")
