"""Starting a party's gateway server, and the gRPC options both ends share.

``create_gateway`` binds the requested port (0 picks a free one) and returns
the actual port, because the embedded runner starts every party on port 0 and
hands out the route table afterwards; tests do the same, so they never collide.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable
from concurrent import futures
from pathlib import Path

import grpc

from fedspark.federation import federation_pb2_grpc as pb_grpc
from fedspark.federation._errors import BindFailed
from fedspark.federation.security._tls import (
    TlsConfig,
    channel_credentials,
    channel_options,
    in_party_channel_credentials,
    in_party_server_credentials,
    party_dns_name,
    server_credentials,
)
from fedspark.federation.star._relay_servicer import relay_outbound
from fedspark.federation.transport._chunks import MAX_CHUNK_BYTES
from fedspark.federation.transport._gateway import DEFAULT_JOB_QUOTA_BYTES, DEFAULT_MAX_MESSAGE_BYTES, Gateway
from fedspark.federation.transport._mailbox import DEFAULT_MEMORY_LIMIT_BYTES
from fedspark.federation.transport._plaintext import check_bind
from fedspark.federation.transport._servicer import GatewayServicer

GRPC_MESSAGE_LIMIT = 2 * MAX_CHUNK_BYTES
"""Per gRPC message (one chunk plus its header); whole payloads are limited separately."""

CHANNEL_OPTIONS: list[tuple[str, int]] = [
    ("grpc.max_send_message_length", GRPC_MESSAGE_LIMIT),
    ("grpc.max_receive_message_length", GRPC_MESSAGE_LIMIT),
]

SERVER_OPTIONS: list[tuple[str, int]] = [
    *CHANNEL_OPTIONS,
    # gRPC turns SO_REUSEPORT on by default: a second gateway could then bind
    # the same port and silently receive half of a party's messages.
    ("grpc.so_reuseport", 0),
]

CLIENT_CHANNEL_OPTIONS: list[tuple[str, int]] = [
    *CHANNEL_OPTIONS,
    # Reconnect soon after a peer comes up: our own retry loop sets the pace,
    # and gRPC's default (1 s growing to 120 s) would outwait a short deadline.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


def dial(address: str, tls: TlsConfig | None, party_id: str) -> grpc.Channel:
    """A client channel to ``address``; with TLS, the server must prove it is ``party_id``."""
    if tls is None:
        return grpc.insecure_channel(address, options=CLIENT_CHANNEL_OPTIONS)
    options = [*CLIENT_CHANNEL_OPTIONS, *channel_options(tls, party_id)]
    return grpc.secure_channel(address, channel_credentials(tls), options=options)


def dial_in_party(address: str, ca_pem: bytes | None, party_id: str) -> grpc.Channel:
    """An executor's channel to its own party's gateway: verifies the gateway (CA only), presents no key."""
    if ca_pem is None:
        return grpc.insecure_channel(address, options=CLIENT_CHANNEL_OPTIONS)
    options = [*CLIENT_CHANNEL_OPTIONS, ("grpc.ssl_target_name_override", party_dns_name(party_id))]
    return grpc.secure_channel(address, in_party_channel_credentials(ca_pem), options=options)


def format_address(host: str, port: int) -> str:
    """``host:port``, bracketing bare IPv6 hosts."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{port}"


def create_gateway(
    party_id: str,
    host: str = "127.0.0.1",
    port: int = 0,
    tap_dir: Path | str | None = None,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    *,
    max_workers: int = 16,
    tls: TlsConfig | None = None,
    work_dir: Path | str | None = None,
    memory_limit_bytes: int = DEFAULT_MEMORY_LIMIT_BYTES,
    relays: Iterable[str] = (),
    in_party_host: str | None = None,
    insecure_plaintext: bool = False,
    job_quota_bytes: int | None = DEFAULT_JOB_QUOTA_BYTES,
) -> tuple[Gateway, int]:
    """Start ``party_id``'s gateway on ``host:port`` and return it with the bound port.

    Each concurrent incoming stream holds one of ``max_workers`` threads.
    Without ``tls`` the server is plaintext, so it must bind a loopback
    address: off loopback it is refused (``PlaintextOffLoopback``) unless
    ``insecure_plaintext`` (the party's own opt-in; see ``_plaintext``). With ``tls`` it requires client
    certificates from the federation CA, and every message must come from the
    party its sender's certificate names. Payloads beyond
    ``memory_limit_bytes`` spill under ``work_dir``; one party may send at most
    ``job_quota_bytes`` in one job (``QuotaExceeded`` names it). ``relays`` are the
    certified exchanges that may deliver other parties' messages (star topology).

    With ``tls`` a second, *in-party* port is bound on ``in_party_host``
    (default ``host``, port chosen freely) where the gateway shows its
    certificate but asks none: this party's executors, which hold no key,
    hand it table partitions there (``Gateway.in_party_address``, see
    ``_relay``). Without ``tls`` they use the one plaintext port.
    """
    if tls is not None:
        tls.check()
    check_bind(f"party {party_id}", host, port, tls=tls is not None, insecure_plaintext=insecure_plaintext)
    gateway = Gateway(
        party_id,
        tap_dir=tap_dir,
        max_message_bytes=max_message_bytes,
        work_dir=work_dir,
        memory_limit_bytes=memory_limit_bytes,
        requires_identity=tls is not None,
        relays=relays,
        job_quota_bytes=job_quota_bytes,
    )
    servicer = GatewayServicer(gateway, relay_outbound=relay_outbound)
    in_party: list[int] = []

    def register(srv: grpc.Server) -> None:
        pb_grpc.add_GatewayServicer_to_server(servicer, srv)  # type: ignore[no-untyped-call]
        if tls is not None:
            address = format_address(in_party_host or host, 0)
            in_party.append(_bind(srv, address, in_party_server_credentials(tls), str(party_id)))

    server, executor, bound = start_server(
        f"gateway-{party_id}", register, host, port, tls=tls, max_workers=max_workers, owner=str(party_id)
    )
    gateway.attach_server(server, bound, executor)
    gateway.in_party_address = format_address(_advertised(in_party_host or host), in_party[0] if in_party else bound)
    return gateway, bound


def _advertised(host: str) -> str:
    """The name executors dial for a gateway bound to ``host``: a wildcard bind is reached by this machine's name.

    ("0.0.0.0" would make an executor on another machine dial itself; Spark
    already requires executors to reach the driver's machine by name.)
    """
    if host in ("0.0.0.0", "::", "[::]", ""):
        return socket.getfqdn()
    return host


def start_server(
    label: str,
    register: Callable[[grpc.Server], None],
    host: str,
    port: int,
    *,
    tls: TlsConfig | None,
    max_workers: int,
    owner: str,
) -> tuple[grpc.Server, futures.ThreadPoolExecutor, int]:
    """Bind and start a gRPC server with fedspark's options (mTLS when ``tls``); return it, its pool, its port.

    Shared by party gateways and the exchange, so both bind, refuse port reuse
    and require client certificates the same way.
    """
    executor = futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=label)
    server = grpc.server(executor, options=SERVER_OPTIONS)
    try:
        register(server)
        bound = _bind(server, format_address(host, port), server_credentials(tls) if tls is not None else None, owner)
    except BindFailed:
        server.stop(None)
        executor.shutdown(wait=False)
        raise
    server.start()
    return server, executor, bound


def _bind(server: grpc.Server, address: str, credentials: grpc.ServerCredentials | None, owner: str) -> int:
    """Add a (secure when ``credentials``) port to ``server``; ``BindFailed`` naming it when it cannot."""
    try:
        if credentials is not None:
            bound = server.add_secure_port(address, credentials)
        else:
            bound = server.add_insecure_port(address)
    except RuntimeError as exc:  # recent grpcio raises instead of returning 0
        raise BindFailed(owner, address, str(exc)) from exc
    if bound == 0:
        raise BindFailed(owner, address, "the port is taken or the host is not local")
    return int(bound)
