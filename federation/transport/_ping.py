"""Is a peer's gateway reachable, is it who the route says, and how far away is it?

An operator's first question when a job will not start is "can party 9999
reach party 10000 at all?". :func:`ping_peer` answers it with the same channel
a send would use (same TLS settings, same check that the peer's certificate
names the party), so a ping that passes means a send will connect.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import cast

import grpc

from fedspark.common import FederationError
from fedspark.federation import codec
from fedspark.federation import federation_pb2_grpc as pb_grpc
from fedspark.federation._errors import HandshakeFailed, PeerUnreachable
from fedspark.federation.security._tls import TlsConfig, diagnose
from fedspark.federation.transport._plaintext import check_routes
from fedspark.federation.transport._sender import tls_failure
from fedspark.federation.transport._server import dial


class PingFailed(FederationError):
    """One or more peers did not answer a ping; the message names each and why."""

    def __init__(self, party_id: str, failures: dict[str, str]) -> None:
        listed = "; ".join(f"party {peer}: {why}" for peer, why in failures.items())
        super().__init__(f"party {party_id} cannot reach {len(failures)} peer(s): {listed}")
        self.party_id, self.failures = party_id, failures


@dataclass(frozen=True)
class PingResult:
    """One reachable peer: where, its round-trip time, and whether the link was mutually authenticated."""

    party_id: str
    address: str
    latency_ms: float
    """Median round trip of the pings after the first (which includes connecting)."""
    connect_ms: float
    """The first ping: connection set-up (and TLS handshake) plus one round trip."""
    tls: bool


def ping_peer(
    party_id: str,
    address: str,
    *,
    from_party: str,
    tls: TlsConfig | None = None,
    count: int = 3,
    timeout_s: float = 5.0,
    insecure_plaintext: bool = False,
) -> PingResult:
    """Ping ``party_id``'s gateway at ``address`` ``count`` times.

    Raises ``HandshakeFailed`` (with the reason) when TLS refuses the link,
    ``PeerUnreachable`` when nobody answers or the gateway there speaks for
    another party, and ``PlaintextOffLoopback`` for a plaintext route off
    loopback without ``insecure_plaintext`` (the route a send would refuse).
    """
    check_routes(f"party {from_party}", {party_id: address}, tls=tls is not None, insecure_plaintext=insecure_plaintext)
    peer = f"party {party_id}"
    channel = dial(address, tls, party_id)
    try:
        stub = pb_grpc.GatewayStub(channel)  # type: ignore[no-untyped-call]
        times: list[float] = []
        for _ in range(max(1, count)):
            started = time.perf_counter()
            try:
                reply = stub.Ping(codec.ping_request_to_proto(from_party), timeout=timeout_s)
            except grpc.RpcError as exc:
                call = cast(grpc.Call, exc)
                details = call.details() or ""
                why = tls_failure(details, address, party_id, lambda a, p: diagnose(a, tls, p))
                if why is not None:
                    raise HandshakeFailed("-", "ping", peer, address, why) from None
                raise PeerUnreachable("-", "ping", peer, address, f"{call.code().name}: {details}") from None
            times.append((time.perf_counter() - started) * 1000)
            answered = codec.ping_reply_from_proto(reply)
            if answered != party_id:
                raise PeerUnreachable("-", "ping", peer, address, f"the gateway there is party {answered}'s")
    finally:
        channel.close()
    rest = times[1:] or times
    return PingResult(party_id, address, statistics.median(rest), times[0], tls is not None)
