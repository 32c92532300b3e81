"""Starting a party's gateway server, and the gRPC options both ends share.

``create_gateway`` binds the requested port (0 picks a free one) and returns
the actual port, because the embedded runner starts every party on port 0 and
hands out the route table afterwards; tests do the same, so they never collide.
"""

from __future__ import annotations

from concurrent import futures
from pathlib import Path

import grpc

from fedspark.federation import federation_pb2_grpc as pb_grpc
from fedspark.federation._chunks import MAX_CHUNK_BYTES
from fedspark.federation._errors import BindFailed
from fedspark.federation._faults import FaultPlan
from fedspark.federation._gateway import DEFAULT_MAX_MESSAGE_BYTES, Gateway
from fedspark.federation._mailbox import DEFAULT_MEMORY_LIMIT_BYTES
from fedspark.federation._servicer import GatewayServicer
from fedspark.federation._tls import TlsConfig, channel_credentials, channel_options, server_credentials

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


def open_channel(address: str, tls: TlsConfig | None, party_id: str) -> grpc.Channel:
    """A client channel to ``party_id``'s gateway at ``address``; with TLS it verifies that party's certificate."""
    if tls is None:
        return grpc.insecure_channel(address, options=CLIENT_CHANNEL_OPTIONS)
    options = [*CLIENT_CHANNEL_OPTIONS, *channel_options(tls, party_id)]
    return grpc.secure_channel(address, channel_credentials(tls), options=options)


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
    faults: FaultPlan | None = None,
) -> tuple[Gateway, int]:
    """Start ``party_id``'s gateway on ``host:port`` and return it with the bound port.

    Each concurrent incoming stream holds one of ``max_workers`` threads.
    Without ``tls`` the server is plaintext: bind it to loopback unless the
    network is otherwise protected. With ``tls`` it requires client
    certificates from the federation CA, and every message must come from the
    party its sender's certificate names. Payloads beyond
    ``memory_limit_bytes`` spill under ``work_dir``. ``faults`` (tests only)
    damages arriving chunks, see :class:`FaultPlan`.
    """
    if tls is not None:
        tls.check()
    gateway = Gateway(
        party_id,
        tap_dir=tap_dir,
        max_message_bytes=max_message_bytes,
        work_dir=work_dir,
        memory_limit_bytes=memory_limit_bytes,
        requires_identity=tls is not None,
    )
    executor = futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=f"gateway-{party_id}")
    server = grpc.server(executor, options=SERVER_OPTIONS)
    pb_grpc.add_GatewayServicer_to_server(GatewayServicer(gateway, faults), server)  # type: ignore[no-untyped-call]
    address = format_address(host, port)
    try:
        if tls is not None:
            bound = server.add_secure_port(address, server_credentials(tls))
        else:
            bound = server.add_insecure_port(address)
    except RuntimeError as exc:  # recent grpcio raises instead of returning 0
        server.stop(None)
        executor.shutdown(wait=False)
        raise BindFailed(str(party_id), address, str(exc)) from exc
    if bound == 0:
        server.stop(None)
        executor.shutdown(wait=False)
        raise BindFailed(str(party_id), address, "the port is taken or the host is not local")
    server.start()
    gateway.attach_server(server, bound, executor)
    return gateway, bound
