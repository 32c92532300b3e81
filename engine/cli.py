"""The ``fedspark`` command line (typer + rich).

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

from fedspark.common import ConfigError, FedsparkError
from fedspark.crypto import SECURE_MIN_KEY_SIZE
from fedspark.engine import _cli_exchange
from fedspark.engine._cli_homo_nn import bench_homo_nn
from fedspark.engine._cli_homo_nn import predict as predict_nn

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Federated learning on Spark.")
console = Console(stderr=True)
out = Console()


@app.command()
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


@app.command()
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
    from fedspark.engine._config import load_job
    from fedspark.engine._examples_for_job import ensure_example_data
    from fedspark.engine._runner import EmbeddedRunner

    job = load_job(job_file)
    if algorithm is not None and job.algorithm != algorithm:
        raise ConfigError(f"job file {job_file}: algorithm is {job.algorithm!r}; this command runs {algorithm!r} jobs")
    for path in ensure_example_data(job):
        console.print(f"generated example table [bold]{path}[/]")
    job_id = job_id or f"{job.name}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
    if job.simulation is not None:  # homo_nn with virtual clients: one process, Spark tasks
        from fedspark.engine._cli_homo_nn import run_simulation_job

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
    out.print(f"results in {result.run_dir}")


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else ("" if value is None else str(value))


@app.command()
def examples(
    out_dir: Annotated[Path, typer.Option("--out", help="folder for the example tables")] = Path("data"),
) -> None:
    """Write the example tables (breast cancer, split by columns and by rows like FATE's examples)."""
    from fedspark.engine._examples import write_breast_examples, write_breast_homo_examples

    for name, path in write_breast_examples(out_dir).items():
        out.print(f"{name}: {path}")
    for name, path in write_breast_homo_examples(out_dir).items():
        out.print(f"homo {name}: {path}")


certs_app = typer.Typer(no_args_is_help=True, help="Federation CA and party certificates for mTLS.")
app.add_typer(certs_app, name="certs")


@certs_app.command("init")
def certs_init(
    out_dir: Annotated[Path, typer.Option("--out", help="folder for ca.pem and ca.key")] = Path("certs/ca"),
    name: Annotated[str, typer.Option(help="the CA's common name")] = "fedspark federation CA",
    days: Annotated[int, typer.Option(help="validity in days")] = 3650,
    overwrite: Annotated[bool, typer.Option(help="replace an existing CA (invalidates every party certificate)")] = False,
) -> None:
    """Create a federation CA (keep ca.key offline; share ca.pem with every party)."""
    from fedspark.federation import init_ca

    files = init_ca(out_dir, name=name, days=days, overwrite=overwrite)
    out.print(f"CA certificate: {files.cert}\nCA key: {files.key}")


@certs_app.command("issue")
def certs_issue(
    party: Annotated[str, typer.Option("--party", help="the party id the certificate names")],
    ca_dir: Annotated[Path, typer.Option("--ca", help="folder made by 'fedspark certs init'")] = Path("certs/ca"),
    out_dir: Annotated[Path | None, typer.Option("--out", help="defaults to certs/party-<id>")] = None,
    host: Annotated[list[str] | None, typer.Option("--host", help="gateway host name or address (repeatable)")] = None,
    days: Annotated[int, typer.Option(help="validity in days")] = 825,
    overwrite: Annotated[bool, typer.Option(help="replace an existing certificate")] = False,
    sealing: Annotated[bool, typer.Option(help="also make a sealing key (star topology) and certify its public half")] = False,
) -> None:
    """Issue a party certificate whose subject names the party id, signed by the federation CA."""
    from fedspark.federation import SealingKey, issue_party_cert

    hosts = tuple(host) if host else ("127.0.0.1", "localhost")
    folder = out_dir or Path(f"certs/party-{party}")
    seal_key = SealingKey.generate() if sealing else None
    files = issue_party_cert(ca_dir, folder, party, hosts=hosts, days=days, overwrite=overwrite,
                             sealing_key=bytes.fromhex(seal_key.public_hex) if seal_key else None)
    out.print(f"party {party}: certificate {files.cert}, key {files.key}, CA {files.ca_cert}")
    if seal_key is not None:
        seal_key.save(folder / "sealing.key")
        out.print(f"sealing key {folder / 'sealing.key'} (its public half is in the certificate)")


bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks: one JSON object on stdout each.")
app.add_typer(bench_app, name="bench")


@bench_app.command("paillier")
def bench_paillier(
    bits: Annotated[int, typer.Option(help="Paillier key size")] = 2048,
    seconds: Annotated[float, typer.Option(help="timed seconds per figure")] = 1.5,
    allow_insecure_key_size: Annotated[bool, typer.Option(help="permit keys under 2048 bits")] = False,
) -> None:
    """Paillier ops/s, fedspark vs phe (gmpy2) on one key, one core and both cores."""
    from fedspark.bench import run_paillier_bench

    out.print_json(data=run_paillier_bench(bits, seconds=seconds, allow_insecure=allow_insecure_key_size))


@bench_app.command("hetero-lr")
def bench_hetero_lr(
    rows: Annotated[int, typer.Option(help="rows of each party's table")] = 100_000,
    guest_features: Annotated[int, typer.Option(help="guest feature columns")] = 30,
    host_features: Annotated[int, typer.Option(help="host feature columns")] = 300,
    bits: Annotated[int, typer.Option(help="Paillier key size (under 2048 is recorded as insecure)")] = 1024,
    batch_size: Annotated[int, typer.Option(help="rows per mini-batch")] = 10_000,
    epochs: Annotated[int, typer.Option(help="epochs to time")] = 1,
    compute: Annotated[str, typer.Option(help="auto, driver or spark")] = "auto",
) -> None:
    """Seconds per epoch of vertical LR on FATE's published shape, vs phe on the same epoch."""
    from fedspark.bench import run_hetero_lr_bench

    result = run_hetero_lr_bench(rows=rows, guest_features=guest_features, host_features=host_features,
                                 bits=bits, batch_size=batch_size, epochs=epochs, compute=compute)
    out.print_json(data=result)


@bench_app.command("scoring")
def bench_scoring(
    rows: Annotated[int, typer.Option(help="rows of the scoring table")] = 10_000_000,
    cols: Annotated[int, typer.Option(help="feature columns in all (the guest holds half, the host the rest)")] = 10,
    memory: Annotated[str, typer.Option(help="spark.driver.memory of each party and of the baseline")] = "3g",
) -> None:
    """Federated scoring rows/s (guest + one host on loopback) vs plaintext scoring of the joined table."""
    from fedspark.bench import run_scoring_bench

    out.print_json(data=run_scoring_bench(rows=rows, cols=cols, memory=memory))


app.command("exchange")(_cli_exchange.exchange)

from fedspark.engine._cli_federation import bench_federation, ping  # noqa: E402 - registered where listed

app.command()(ping)
bench_app.command("federation")(bench_federation)
bench_app.command("homo-nn")(bench_homo_nn)
app.command("predict-nn")(predict_nn)
from fedspark.engine._cli_psi import bench_psi  # noqa: E402

bench_app.command("psi")(bench_psi)
from fedspark.engine._cli_cluster import bench_arrow, spark_submit  # noqa: E402

bench_app.command("arrow")(bench_arrow)
app.command("spark-submit")(spark_submit)


@app.command()
def version() -> None:
    """Print the installed fedspark version."""
    from importlib.metadata import version as dist_version

    out.print(dist_version("fedspark"))


def main() -> None:
    try:
        app(standalone_mode=False)
    except FedsparkError as exc:
        console.print(f"[red]error:[/] {exc}", highlight=False)
        raise SystemExit(exc.exit_code) from None
    except KeyboardInterrupt:
        console.print("[red]interrupted[/]")
        raise SystemExit(130) from None
    except typer.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except Exception as exc:  # usage errors come through here with standalone_mode=False
        # typer >= 0.29 vendors click (typer._click) instead of installing it: recognise a usage
        # error by what it can do (show itself, carry an exit code), not by importing click.
        show, exit_code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        if callable(show) and isinstance(exit_code, int):
            show()
            raise SystemExit(exit_code) from None
        raise
