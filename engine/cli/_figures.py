"""Benchmark commands of the CLI that have no other home: ``fedspark bench paillier``, ``hetero-lr``, ``scoring``.

Each imports :mod:`fedspark.bench` inside the command, so nothing else pays for it.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

out = Console()


def bench_paillier(
    bits: Annotated[int, typer.Option(help="Paillier key size")] = 2048,
    seconds: Annotated[float, typer.Option(help="timed seconds per figure")] = 1.5,
    allow_insecure_key_size: Annotated[bool, typer.Option(help="permit keys under 2048 bits")] = False,
) -> None:
    """Paillier ops/s, fedspark vs phe (gmpy2) on one key, one core and both cores."""
    from fedspark.bench import run_paillier_bench

    out.print_json(data=run_paillier_bench(bits, seconds=seconds, allow_insecure=allow_insecure_key_size))


def bench_hetero_lr(
    rows: Annotated[int, typer.Option(help="rows of each party's table (with --scale: the small table)")] = 100_000,
    guest_features: Annotated[int | None, typer.Option(help="guest feature columns (30; with --scale 10)")] = None,
    host_features: Annotated[int | None, typer.Option(help="host feature columns (300; with --scale 40)")] = None,
    bits: Annotated[int, typer.Option(help="Paillier key size (under 2048 is recorded as insecure)")] = 1024,
    batch_size: Annotated[int, typer.Option(help="rows per mini-batch")] = 10_000,
    epochs: Annotated[int, typer.Option(help="epochs to time")] = 1,
    compute: Annotated[str, typer.Option(help="auto, driver or spark")] = "auto",
    align: Annotated[str, typer.Option(help="same_ids or psi")] = "same_ids",
    scale: Annotated[bool, typer.Option(help="executor path on --rows and 10× --rows vs the driver path on --rows; "
                                             "peak RSS per party")] = False,
    scale_factor: Annotated[int, typer.Option(help="with --scale: the large table's rows ÷ --rows")] = 10,
) -> None:
    """Seconds per epoch of vertical LR on FATE's published shape, vs phe on the same epoch; or, with
    ``--scale``, whether training stays a Spark job as the table grows."""
    if scale:
        from fedspark.bench import run_hetero_lr_scale_bench

        out.print_json(data=run_hetero_lr_scale_bench(
            rows=rows, factor=scale_factor, guest_features=guest_features or 10, host_features=host_features or 40,
            bits=bits, batch_size=batch_size))
        return
    from fedspark.bench import run_hetero_lr_bench

    result = run_hetero_lr_bench(rows=rows, guest_features=guest_features or 30, host_features=host_features or 300,
                                 bits=bits, batch_size=batch_size, epochs=epochs, compute=compute, align=align)
    out.print_json(data=result)


def bench_scoring(
    rows: Annotated[int, typer.Option(help="rows of the scoring table")] = 10_000_000,
    cols: Annotated[int, typer.Option(help="feature columns in all (the guest holds half, the host the rest)")] = 10,
    memory: Annotated[str, typer.Option(help="spark.driver.memory of each party and of the baseline")] = "3g",
) -> None:
    """Federated scoring rows/s (guest + one host on loopback) vs plaintext scoring of the joined table.

    Twice: on the cores guest and host share here, then one core per party against the plaintext job on one.
    """
    from fedspark.bench import run_scoring_bench

    out.print_json(data=run_scoring_bench(rows=rows, cols=cols, memory=memory))
