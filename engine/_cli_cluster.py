"""CLI commands for the Arrow benchmark and for running a party on its own cluster.

Defined here and registered in ``engine/cli.py`` so the shared CLI module stays small.
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
    batch_rows: Annotated[int, typer.Option(help="spark.sql.execution.arrow.maxRecordsPerBatch")] = 100_000,
    codec_rows: Annotated[int, typer.Option(help="rows of the table for the wire-codec figures")] = 1_000_000,
    master: Annotated[str, typer.Option(help="Spark master")] = "local[2]",
    work_dir: Annotated[Path | None, typer.Option(help="folder for the temporary Parquet table")] = None,
) -> None:
    """Rows/s of one scoring kernel via Row objects (rdd), mapInPandas and mapInArrow, vs Spark SQL in the JVM."""
    from fedspark.engine._bench_arrow import run_arrow_bench

    out.print_json(data=run_arrow_bench(rows, cols, batch_rows=batch_rows, codec_rows=codec_rows, master=master,
                                        work_dir=work_dir))
