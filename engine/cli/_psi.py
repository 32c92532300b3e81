"""PSI commands of the ``fedspark`` CLI (registered in ``cli.py``)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console


def bench_psi(
    rows: Annotated[int, typer.Option(help="ids per party")] = 1_000_000,
    overlap: Annotated[float, typer.Option(help="fraction of each party's ids the other also holds")] = 0.5,
    partitions: Annotated[int, typer.Option(help="Spark partitions of each party's id table")] = 8,
    rate_seconds: Annotated[float, typer.Option(help="seconds to time each libsodium rate (before and after)")] = 2.0,
) -> None:
    """ECDH PSI ids/s between two parties on loopback, vs the libsodium limit measured in the same run."""
    from fedspark.bench import run_psi_bench
    Console().print_json(data=run_psi_bench(rows, overlap, partitions=partitions, rate_seconds=rate_seconds))
