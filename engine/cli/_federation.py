"""Federation commands of the CLI: ``fedspark ping`` and ``fedspark bench federation``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

console = Console(stderr=True)
out = Console()


def ping(
    conf: Annotated[Path, typer.Option("--conf", help="this party's conf (party_id, routes, optional tls); none ships, see the README")],
    party: Annotated[list[str] | None, typer.Option("--party", help="peer party id to check (repeatable)")] = None,
    job: Annotated[Path | None, typer.Option("--job", help="check every other party this job names")] = None,
    count: Annotated[int, typer.Option(help="pings per peer")] = 3,
    timeout: Annotated[float, typer.Option(help="seconds to wait for each answer")] = 5.0,
) -> None:
    """Check that this party reaches its peers' gateways (with mTLS when configured); print each latency."""
    from fedspark.common import ConfigError, FederationError
    from fedspark.engine.config._party import load_party_conf
    from fedspark.federation import PingFailed, ping_peer

    me = load_party_conf(conf)
    if party:
        peers = [str(p) for p in party]
    elif job is not None:
        from fedspark.engine.config._job import load_job

        peers = [ref.party_id for ref in load_job(job).party_refs() if ref.party_id != me.party_id]
    else:
        peers = [p for p in me.routes if p != me.party_id]
    if not peers:
        raise ConfigError(f"party conf {conf}: no peer to ping (give --party or --job, or list routes)")
    tls = me.tls_config()
    failures: dict[str, str] = {}
    for peer in dict.fromkeys(peers):
        address = me.routes.get(peer)
        if address is None:
            failures[peer] = f"no route in {conf} (routes: {', '.join(sorted(me.routes)) or 'none'})"
            out.print(f"party {peer}: [red]no route[/]", highlight=False, soft_wrap=True)
            continue
        try:
            result = ping_peer(peer, address, from_party=me.party_id, tls=tls, count=count, timeout_s=timeout,
                               insecure_plaintext=me.federation.insecure_plaintext)
        except FederationError as exc:
            failures[peer] = f"{address}: {getattr(exc, 'reason', exc)}"
            out.print(f"party {peer} at {address}: [red]unreachable[/]", highlight=False, soft_wrap=True)
            continue
        link = f"mTLS, certificate names party {peer}" if result.tls else "plaintext"
        out.print(
            f"party {peer} at {address}: ok, {result.latency_ms:.2f} ms "
            f"(first {result.connect_ms:.1f} ms with connect; {link})",
            highlight=False,
            soft_wrap=True,
        )
    if failures:
        raise PingFailed(me.party_id, failures)


def bench_federation(
    size: Annotated[str, typer.Option(help="bytes of the message and of the table, e.g. 1GiB or 8MiB")] = "1GiB",
    partitions: Annotated[int | None, typer.Option(help="table partitions (default: one per 64 MiB, at least 2)")] = None,
    chunk: Annotated[str, typer.Option(help="the federation's chunk size (the bare baseline always uses 1MiB)")] = "1MiB",
) -> None:
    """MB/s of a message and a table through two real gateways vs bare gRPC and Spark alone; receiver peak RSS."""
    from fedspark.bench import parse_size, run_federation_bench

    out.print_json(data=run_federation_bench(parse_size(size), partitions, parse_size(chunk)))
