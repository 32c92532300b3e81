"""``fedspark exchange``: run the forwarding gateway of a star topology until stopped.

The exchange reads its configuration (``--conf conf/exchange.yaml``; flags
override it), listens, prints one ``ready`` event line with its port (the
embedded runner reads it), and serves until SIGINT or SIGTERM, or, with
``--exit-with-stdin``, until its standard input closes (so an exchange started
by ``fedspark run`` never outlives the runner).
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from fedspark.engine.runtime import _events

if TYPE_CHECKING:  # loaded when the command runs: `fedspark --help` stays quick
    from fedspark.engine.config._exchange import ExchangeConfig

console = Console(stderr=True)


def exchange(
    conf: Annotated[Path | None, typer.Option("--conf", help="exchange configuration, e.g. conf/exchange.yaml")] = None,
    host: Annotated[str | None, typer.Option(help="address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="port to listen on (0: a free one)")] = None,
    route: Annotated[list[str] | None, typer.Option("--route", help="PARTY=HOST:PORT of a party's gateway (repeatable)")] = None,
    name: Annotated[str | None, typer.Option(help="the identity the exchange's certificate names")] = None,
    tls_dir: Annotated[Path | None, typer.Option(help="folder with ca.pem, party-<name>.pem and party-<name>.key")] = None,
    tap_dir: Annotated[Path | None, typer.Option(help="record every forwarded chunk and its header")] = None,
    exit_with_stdin: Annotated[bool, typer.Option(hidden=True, help="stop when standard input closes")] = False,
) -> None:
    """Forward messages between parties' gateways by header; payloads stay sealed end to end."""
    from fedspark.engine.config._exchange import ExchangeConfig, load_exchange_conf
    from fedspark.federation import TlsConfig, create_exchange

    settings = load_exchange_conf(conf) if conf is not None else ExchangeConfig()
    settings = _override(settings, host, port, route, name, tls_dir, tap_dir)
    tls = TlsConfig(settings.tls.ca_cert, settings.tls.cert, settings.tls.key) if settings.tls else None
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    server = create_exchange(settings.routes, settings.host, settings.port, name=settings.name, tls=tls,
                             tap_dir=settings.tap_dir, insecure_plaintext=settings.insecure_plaintext)
    try:
        _events.emit("ready", party=settings.name, port=server.port)
        routed = ", ".join(f"{p} -> {a}" for p, a in sorted(settings.routes.items())) or "no parties"
        console.print(f"exchange {settings.name} on {settings.host}:{server.port} "
                      f"({'mTLS' if tls else 'plaintext'}): {routed}")
        if exit_with_stdin:
            threading.Thread(target=_wait_for_eof, args=(stop,), daemon=True).start()
        while not stop.wait(0.5):
            pass
    finally:
        server.stop(grace_s=1.0)


def _override(
    settings: ExchangeConfig,
    host: str | None,
    port: int | None,
    routes: list[str] | None,
    name: str | None,
    tls_dir: Path | None,
    tap_dir: Path | None,
) -> ExchangeConfig:
    from fedspark.engine.config._exchange import ExchangeTls, parse_route

    changes: dict[str, object] = {}
    if host is not None:
        changes["host"] = host
    if port is not None:
        changes["port"] = port
    if routes:
        changes["routes"] = {**settings.routes, **dict(parse_route(r) for r in routes)}
    if name is not None:
        changes["name"] = name
    if tap_dir is not None:
        changes["tap_dir"] = tap_dir
    if tls_dir is not None:
        who = name or settings.name
        changes["tls"] = ExchangeTls(ca_cert=tls_dir / "ca.pem", cert=tls_dir / f"party-{who}.pem",
                                     key=tls_dir / f"party-{who}.key")
    return settings.model_copy(update=changes)


def _wait_for_eof(stop: threading.Event) -> None:
    while sys.stdin.readline():
        pass
    stop.set()
