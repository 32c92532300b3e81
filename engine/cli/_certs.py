"""Certificate commands of the CLI: ``fedspark certs init`` and ``fedspark certs issue``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

console = Console(stderr=True)
out = Console()


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


def certs_issue(
    party: Annotated[str, typer.Option("--party", help="the party id the certificate names")],
    ca_dir: Annotated[Path, typer.Option("--ca", help="folder made by 'fedspark certs init'")] = Path("certs/ca"),
    out_dir: Annotated[Path | None, typer.Option("--out", help="defaults to certs/party-<id>")] = None,
    host: Annotated[list[str] | None, typer.Option("--host", help="gateway host name or address (repeatable)")] = None,
    days: Annotated[int, typer.Option(help="validity in days")] = 825,
    overwrite: Annotated[bool, typer.Option(help="replace an existing certificate")] = False,
    sealing: Annotated[bool, typer.Option(help="also make a sealing key (star topology, homo_nn secure aggregation) and certify its public half")] = False,
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
