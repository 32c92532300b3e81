"""The ``fedspark`` command line (typer + rich): every command is registered here, at the top.

The commands live by concern in this package's modules (jobs, certificates,
the exchange, federation, homo_nn, PSI, clusters, benchmarks); this module
only builds the app from them, so ``fedspark --help`` and this file list the
same commands. Expected failures (bad job file, bad table, a peer that failed
or timed out) print one clear message and exit non-zero; usage errors print
the usage line and exit 2; only bugs show a traceback.
"""

from __future__ import annotations

import typer
from rich.console import Console

from fedspark.common import FedsparkError
from fedspark.engine.cli._certs import certs_init, certs_issue
from fedspark.engine.cli._cluster import bench_arrow, spark_submit
from fedspark.engine.cli._exchange import exchange
from fedspark.engine.cli._federation import bench_federation, ping
from fedspark.engine.cli._figures import bench_hetero_lr, bench_paillier, bench_scoring
from fedspark.engine.cli._homo_nn import bench_homo_nn
from fedspark.engine.cli._homo_nn import predict as predict_nn
from fedspark.engine.cli._jobs import examples, predict, run
from fedspark.engine.cli._psi import bench_psi

__all__ = ["app", "main"]

console = Console(stderr=True)
out = Console()

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Federated learning on Spark.")
certs_app = typer.Typer(no_args_is_help=True, help="Federation CA and party certificates for mTLS.")
bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks: one JSON object on stdout each.")

app.command()(run)
app.command()(predict)
app.command()(examples)
app.add_typer(certs_app, name="certs")
certs_app.command("init")(certs_init)
certs_app.command("issue")(certs_issue)
app.add_typer(bench_app, name="bench")
bench_app.command("paillier")(bench_paillier)
bench_app.command("hetero-lr")(bench_hetero_lr)
bench_app.command("scoring")(bench_scoring)
bench_app.command("federation")(bench_federation)
bench_app.command("homo-nn")(bench_homo_nn)
bench_app.command("psi")(bench_psi)
bench_app.command("arrow")(bench_arrow)
app.command("exchange")(exchange)
app.command()(ping)
app.command("predict-nn")(predict_nn)
app.command("spark-submit")(spark_submit)


def version() -> None:
    """Print the installed fedspark version."""
    from importlib.metadata import version as dist_version

    out.print(dist_version("fedspark"))


app.command()(version)


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
