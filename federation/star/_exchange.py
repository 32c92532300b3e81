"""The exchange of a star topology: one forwarding gateway that every party dials.

Organisations that cannot open a port to every other member (or do not want
to) run a mesh of one: each party's routes all point at the exchange, which
forwards every message to the gateway of the party its header names. The
exchange holds a route table ``{party_id: "host:port"}`` and nothing else: no
job, no mailbox, no sealing key. It reads headers (job, tag, src, dst, seq,
sizes) to route and to log, and passes chunks through untouched; the payloads
are sealed end to end by the parties (see ``security._seal``), so what it carries is
opaque to it.

Nothing is lost in the middle because the exchange acknowledges nothing on its
own: each Transfer is relayed as one stream to the receiving gateway, and the
sender sees exactly the receiver's acks ("chunk written", "resend from",
"complete"). A chunk the exchange took but the receiver did not write is
simply not acked, and the sender's retry resumes from the receiver's answer;
the receiver still de-duplicates by (job, tag, src, dst, seq).

With mTLS the exchange presents its own certificate (a party certificate for
its name, e.g. ``exchange``), accepts a sender only for messages in the
sender's own name, and dials each receiver verifying that the certificate
names the destination party. Receiving gateways list the exchange in their
``relays``, the one identity allowed to deliver in other parties' names.
Without mTLS the exchange listens and routes only on loopback unless
``insecure_plaintext`` (the same rule as a party's gateway, ``transport._plaintext``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc

from fedspark.federation import federation_pb2_grpc as pb_grpc
from fedspark.federation._errors import IdentityMismatch, UnknownDestination
from fedspark.federation._message import MessageKey
from fedspark.federation.security._tls import TlsConfig
from fedspark.federation.transport._plaintext import check_bind, check_routes
from fedspark.federation.transport._server import dial
from fedspark.federation.transport._tap import RecordingTap

log = logging.getLogger("fedspark.federation.exchange")

DEFAULT_EXCHANGE_NAME = "exchange"
"""The identity an exchange's certificate names (``fedspark certs issue --party exchange``)."""

Tamper = Callable[[MessageKey, int, bytes], bytes]
"""(key, chunk index, data) -> data to forward: tests play a malicious exchange with it."""


class Exchange:
    """Route table, identity rules and downstream channels of one exchange.

    Built and served by ``create_exchange``; ``stop`` ends the server and
    closes the channels.

    Parameters
    ----------
    name
        The identity this exchange's certificate names (and what it answers to Ping).
    routes
        ``{party_id: "host:port"}`` of the parties' gateways.
    tls
        The exchange's own TLS material; with it, senders must present
        certificates from the same CA and receivers are verified by party name.
    tap_dir
        Record every chunk forwarded, with its header (tests and audits:
        proof of what the exchange could see).
    rpc_timeout_s
        Upper bound on one relayed call when the sender set no deadline.
    tamper
        Alter forwarded chunks (tests only; the receiver must catch it).
    insecure_plaintext
        Without ``tls``, accept routes off loopback (refused otherwise).
    """

    def __init__(
        self,
        name: str = DEFAULT_EXCHANGE_NAME,
        routes: Mapping[str, str] | None = None,
        *,
        tls: TlsConfig | None = None,
        tap_dir: Path | str | None = None,
        rpc_timeout_s: float = 600.0,
        tamper: Tamper | None = None,
        insecure_plaintext: bool = False,
    ) -> None:
        self.name = str(name)
        self.tls = tls
        self.insecure_plaintext = insecure_plaintext
        self.tap = RecordingTap(tap_dir) if tap_dir is not None else None
        self.rpc_timeout_s = rpc_timeout_s
        self.tamper = tamper
        self._lock = threading.Lock()
        self._routes: dict[str, str] = {}
        self._channels: dict[tuple[str, str], grpc.Channel] = {}
        self.port: int | None = None
        self._server: grpc.Server | None = None
        self._executor: ThreadPoolExecutor | None = None
        self.set_routes(routes or {})

    @property
    def routes(self) -> dict[str, str]:
        with self._lock:
            return dict(self._routes)

    def set_routes(self, routes: Mapping[str, str]) -> None:
        """Replace the route table; channels to addresses no longer routed are closed.

        Without TLS a route off loopback is refused (``PlaintextOffLoopback``) unless ``insecure_plaintext``.
        """
        new_routes = {str(party): str(address) for party, address in routes.items()}
        check_routes(f"exchange {self.name}", new_routes, tls=self.tls is not None,
                     insecure_plaintext=self.insecure_plaintext)
        with self._lock:
            self._routes = new_routes
            keep = set(new_routes.items())
            closing = [self._channels.pop(target) for target in list(self._channels) if target not in keep]
        for channel in closing:
            channel.close()

    def check_sender(self, key: MessageKey, identity: str | None) -> None:
        """With mTLS, a party may send through the exchange only in its own name."""
        if self.tls is not None and identity != key.src.party_id:
            raise IdentityMismatch(key.job_id, key.tag, str(key.src), identity)

    def check_speaker(self, party_id: str, identity: str | None, what: str) -> None:
        """The same rule for requests that speak for a whole gateway (heartbeats)."""
        if self.tls is not None and identity != party_id:
            raise IdentityMismatch("-", what, f"party {party_id}", identity)

    def address(self, party_id: str, job_id: str, tag: str, src: str) -> str:
        """The gateway of ``party_id``, or ``UnknownDestination`` naming it."""
        with self._lock:
            address = self._routes.get(party_id)
            known = list(self._routes)
        if address is None:
            raise UnknownDestination(job_id, tag, src, party_id, self.name, known)
        return address

    def stub(self, party_id: str, address: str) -> pb_grpc.GatewayStub:
        """A stub on the channel to ``party_id``'s gateway (with TLS: verified to be that party)."""
        target = (party_id, address)
        with self._lock:
            channel = self._channels.get(target)
            if channel is None:
                channel = dial(address, self.tls, party_id)
                self._channels[target] = channel
        return pb_grpc.GatewayStub(channel)  # type: ignore[no-untyped-call]

    def attach_server(self, server: grpc.Server, port: int, executor: ThreadPoolExecutor) -> None:
        """Called by ``create_exchange``: the server whose lifetime ``stop`` ends."""
        self._server, self.port, self._executor = server, port, executor

    def stop(self, grace_s: float | None = 1.0) -> None:
        """Stop serving, close the channels to the parties, end the worker threads."""
        server, self._server = self._server, None
        executor, self._executor = self._executor, None
        if server is not None:
            server.stop(grace_s).wait()
        with self._lock:
            channels = list(self._channels.values())
            self._channels.clear()
        for channel in channels:
            channel.close()
        if executor is not None:
            executor.shutdown(wait=True)


def create_exchange(
    routes: Mapping[str, str] | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    name: str = DEFAULT_EXCHANGE_NAME,
    tls: TlsConfig | None = None,
    tap_dir: Path | str | None = None,
    max_workers: int = 32,
    rpc_timeout_s: float = 600.0,
    tamper: Tamper | None = None,
    insecure_plaintext: bool = False,
) -> Exchange:
    """Start an exchange on ``host:port`` (0 picks a free port, see ``Exchange.port``).

    Every relayed call holds one worker thread for its duration (two streams
    in flight per party pair is typical), hence more workers than a gateway.
    Without ``tls`` it must listen on loopback unless ``insecure_plaintext``.
    """
    from fedspark.federation.star._exchange_servicer import ExchangeServicer
    from fedspark.federation.transport._server import start_server

    if tls is not None:
        tls.check()
    check_bind(f"exchange {name}", host, port, tls=tls is not None, insecure_plaintext=insecure_plaintext, what="exchange")
    exchange = Exchange(name, routes, tls=tls, tap_dir=tap_dir, rpc_timeout_s=rpc_timeout_s, tamper=tamper,
                        insecure_plaintext=insecure_plaintext)
    servicer = ExchangeServicer(exchange)
    server, executor, bound = start_server(
        f"exchange-{name}",
        lambda srv: pb_grpc.add_GatewayServicer_to_server(servicer, srv),  # type: ignore[no-untyped-call]
        host,
        port,
        tls=tls,
        max_workers=max_workers,
        owner=name,
    )
    exchange.attach_server(server, bound, executor)
    return exchange
