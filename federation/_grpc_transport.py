"""The network transport: this party's gateway plus clients that push to peers' gateways.

Sending is a client-streaming ``Push`` of checksummed chunks to the peer's
gateway, found through a route table ``{party_id: "host:port"}`` that can be
set after construction (each party binds port 0 first and learns the others'
ports later). A send that fails because the peer is not (yet) reachable is
retried with backoff until the connect deadline: resending is safe because the
receiver de-duplicates by message key. A refusal is final and raised at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import cast

import grpc

from fedspark.common import PartyRef
from fedspark.federation import codec
from fedspark.federation import federation_pb2_grpc as pb_grpc
from fedspark.federation._chunks import DEFAULT_CHUNK_BYTES, MAX_CHUNK_BYTES, split
from fedspark.federation._errors import (
    BindFailed,
    NoRoute,
    PeerUnreachable,
    RefusalReason,
    SendRefused,
    TransportClosed,
)
from fedspark.federation._gateway import DEFAULT_MAX_MESSAGE_BYTES, Gateway
from fedspark.federation._grpc_server import CLIENT_CHANNEL_OPTIONS, create_gateway
from fedspark.federation._message import Envelope, MessageKey
from fedspark.federation._servicer import REFUSAL_METADATA_KEY
from fedspark.federation._transport import Transport

RETRYABLE_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
"""Codes after which the message may not have been stored, so a resend is due."""

_FIRST_BACKOFF_S = 0.05
_MAX_BACKOFF_S = 1.0


class GrpcTransport(Transport):
    """Sends through peers' gateways and receives through this party's own.

    The transport owns its gateway: ``close`` stops the server.

    Parameters
    ----------
    gateway
        This party's running gateway (from ``create_gateway``), or the party
        (``PartyRef`` or party id) for which to start one on ``host:port``
        with ``tap_dir`` and ``max_message_bytes``.
    routes
        ``{party_id: "host:port"}`` of peers' gateways; may be given later
        with :meth:`set_routes`.
    chunk_bytes
        Size of the chunks a payload is split into (at most 16 MiB).
    connect_deadline_s
        How long one ``send`` keeps retrying an unreachable peer before
        raising ``PeerUnreachable``.
    rpc_timeout_s
        Upper bound on one push attempt, transfer included.
    """

    def __init__(
        self,
        gateway: Gateway | PartyRef | str,
        routes: Mapping[str, str] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tap_dir: Path | str | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
        connect_deadline_s: float = 30.0,
        rpc_timeout_s: float = 600.0,
    ) -> None:
        if not 0 < chunk_bytes <= MAX_CHUNK_BYTES:
            raise ValueError(f"chunk_bytes must be in 1..{MAX_CHUNK_BYTES}, got {chunk_bytes}")
        if not isinstance(gateway, Gateway):
            party_id = gateway.party_id if isinstance(gateway, PartyRef) else str(gateway)
            gateway, _ = create_gateway(party_id, host, port, tap_dir, max_message_bytes)
        self._gateway = gateway
        self.chunk_bytes = chunk_bytes
        self.connect_deadline_s = connect_deadline_s
        self.rpc_timeout_s = rpc_timeout_s
        self._lock = threading.Lock()
        self._routes: dict[str, str] = {}
        self._channels: dict[str, grpc.Channel] = {}
        self._closed = False
        if routes:
            self.set_routes(routes)

    @property
    def party_id(self) -> str:
        return self._gateway.party_id

    @property
    def gateway(self) -> Gateway:
        return self._gateway

    @property
    def port(self) -> int:
        """The port this party's gateway listens on (what peers' routes must point at)."""
        if self._gateway.port is None:
            raise BindFailed(self.party_id, "-", "this gateway has no server (not built by create_gateway)")
        return self._gateway.port

    @property
    def routes(self) -> dict[str, str]:
        with self._lock:
            return dict(self._routes)

    def set_routes(self, routes: Mapping[str, str]) -> None:
        """Replace the route table; channels to addresses no longer used are closed."""
        new_routes = {str(party): address for party, address in routes.items()}
        with self._lock:
            self._routes = new_routes
            keep = set(new_routes.values())
            stale = [address for address in self._channels if address not in keep]
            closing = [self._channels.pop(address) for address in stale]
        for channel in closing:
            channel.close()

    def open_job(self, job_id: str, parties: Iterable[PartyRef]) -> None:
        self._gateway.open_job(job_id, parties)

    def close_job(self, job_id: str) -> None:
        self._gateway.close_job(job_id)

    def send(self, envelope: Envelope) -> None:
        key = envelope.key
        address = self._address(key.dst.party_id, key.job_id, key.tag, str(key.dst))
        stub = pb_grpc.GatewayStub(self._channel(address, key))  # type: ignore[no-untyped-call]
        deadline = time.monotonic() + self.connect_deadline_s
        backoff = _FIRST_BACKOFF_S
        while True:
            try:
                stub.Push(
                    (codec.chunk_to_proto(part) for part in split(envelope, self.chunk_bytes)),
                    timeout=self.rpc_timeout_s,
                )
                return
            except grpc.RpcError as exc:
                call = cast(grpc.Call, exc)
                code = call.code()
                if code not in RETRYABLE_CODES:
                    raise _refused(key, call) from None
                if self._closed:
                    raise TransportClosed(key.job_id, key.tag, str(key.dst), "sending") from None
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise PeerUnreachable(
                        key.job_id, key.tag, str(key.dst), address, f"{code.name}: {call.details()}"
                    ) from None
                time.sleep(min(backoff, remaining))
                backoff = min(backoff * 2, _MAX_BACKOFF_S)

    def recv(self, key: MessageKey, timeout_s: float) -> bytes:
        if key.dst.party_id != self.party_id:
            raise ValueError(f"{key} is not addressed to party {self.party_id}, which this transport serves")
        return self._gateway.take(key, timeout_s)

    def ping(self, party_id: str, timeout_s: float = 5.0) -> str:
        """Ask a peer's gateway who it is; returns the party id it reports."""
        peer = f"party {party_id}"
        address = self._address(str(party_id), "-", "ping", peer)
        stub = pb_grpc.GatewayStub(self._channel(address))  # type: ignore[no-untyped-call]
        try:
            reply = stub.Ping(codec.ping_request_to_proto(self.party_id), timeout=timeout_s)
        except grpc.RpcError as exc:
            call = cast(grpc.Call, exc)
            raise PeerUnreachable(
                "-", "ping", peer, address, f"{call.code().name}: {call.details()}"
            ) from None
        return codec.ping_reply_from_proto(reply)

    def close(self) -> None:
        """Close channels to peers and stop this party's gateway."""
        with self._lock:
            self._closed = True
            channels = list(self._channels.values())
            self._channels.clear()
        for channel in channels:
            channel.close()
        self._gateway.stop(grace_s=1.0)

    def _address(self, party_id: str, job_id: str, tag: str, peer: str) -> str:
        with self._lock:
            address = self._routes.get(party_id)
            known = list(self._routes)
        if address is None:
            raise NoRoute(job_id, tag, peer, party_id, known)
        return address

    def _channel(self, address: str, key: MessageKey | None = None) -> grpc.Channel:
        with self._lock:
            if self._closed:
                job_id, tag, peer = (key.job_id, key.tag, str(key.dst)) if key else ("-", "-", address)
                raise TransportClosed(job_id, tag, peer, "sending")
            channel = self._channels.get(address)
            if channel is None:
                channel = grpc.insecure_channel(address, options=CLIENT_CHANNEL_OPTIONS)
                self._channels[address] = channel
            return channel


def _refused(key: MessageKey, call: grpc.Call) -> SendRefused:
    reason: RefusalReason | None = None
    for name, value in call.trailing_metadata() or ():
        if name == REFUSAL_METADATA_KEY:
            try:
                reason = RefusalReason(value)
            except ValueError:
                reason = None
    detail = f"{call.code().name}: {call.details()}"
    return SendRefused(key.job_id, key.tag, str(key.dst), reason, detail)
