"""The network transport: this party's gateway plus clients that stream to peers' gateways.

Sending is a resumable ``Transfer`` of checksummed chunks to the peer's
gateway (see :mod:`._sender`), found through a route table
``{party_id: "host:port"}`` that can be set after construction (each party
binds port 0 first and learns the others' ports later). A sent message is kept
(:mod:`._outbox`) until the receiver reports it read, and resent if the
receiver lost it in a restart. With :class:`Heartbeats`, the transport
heartbeats the peers of its open jobs, and a receive waiting on a peer that
stopped answering fails with ``PeerSilent`` (:mod:`._liveness`).

Topology is only a matter of routes: in a mesh each peer's route is its own
gateway; in a star every route is the exchange's address,
``Security.exchange`` names the identity its certificate must show, and a
``Security.sealer`` (required in a star: ``UnsealedStar`` otherwise) seals
every payload for its receiver so the exchange forwards opaque bytes
(``security._seal``), bound to the receiver's per-job nonce so a recorded
payload cannot be replayed into a later run of the job (``_freshness``).

Without mTLS the gateway may listen, and routes may point, only on loopback
unless ``Security.insecure_plaintext`` (``_plaintext``); ``mode`` says which
it is, for the party's log and results.

The transport also sends for this party's executors: ``table_sink`` hands
them the gateway's in-party address and a per-table token, and the gateway
forwards what they send through this transport's channels, with its TLS
identity and sealer (``star._relay``). It receives for them the same way:
``table_source`` hands the gateway a received table and them a read token,
and they stream its partitions from the gateway (``_served``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import grpc

from fedspark.common import PartyRef
from fedspark.federation import codec
from fedspark.federation import federation_pb2_grpc as pb_grpc
from fedspark.federation._errors import (
    BindFailed,
    NoRoute,
    PayloadTooLarge,
    PeerUnreachable,
    TransportClosed,
    UnsealedStar,
)
from fedspark.federation._message import Envelope, Heartbeat, HeartbeatReply, JobState, MessageKey
from fedspark.federation._transport import Transport
from fedspark.federation.security._seal import NONCE_TAG, Sealer
from fedspark.federation.security._tls import TlsConfig, diagnose
from fedspark.federation.star._relay import OutboundRelay
from fedspark.federation.tables._fetch import SourceTarget
from fedspark.federation.tables._sink import SinkTarget
from fedspark.federation.transport._chunks import DEFAULT_CHUNK_BYTES, MAX_CHUNK_BYTES
from fedspark.federation.transport._freshness import ReceiveNonces
from fedspark.federation.transport._gateway import DEFAULT_JOB_QUOTA_BYTES, DEFAULT_MAX_MESSAGE_BYTES, Gateway
from fedspark.federation.transport._liveness import HeartbeatLoop, Liveness
from fedspark.federation.transport._mailbox import DEFAULT_MEMORY_LIMIT_BYTES, AliveCheck, Mailbox
from fedspark.federation.transport._outbox import Outbox
from fedspark.federation.transport._plaintext import check_routes, transport_mode
from fedspark.federation.transport._sender import RETRYABLE_CODES, SendSettings, refused, transfer
from fedspark.federation.transport._server import create_gateway, dial
from fedspark.federation.transport._servicer import DST_METADATA_KEY
from fedspark.federation.transport._spill import ReceivedPayload

log = logging.getLogger("fedspark.federation.transport")

DEAD_AFTER_BEATS = 5
"""Without ``Heartbeats.dead_after_s``, a peer is dead after this many missed heartbeat intervals."""


@dataclass(frozen=True)
class GatewayOptions:
    """Where the gateway a transport starts for its party listens, and what it keeps of what arrives.

    Only used when :class:`GrpcTransport` is given a party rather than a running
    gateway (``create_gateway`` takes the same settings as arguments).
    ``in_party_host`` is, with TLS, the interface of the in-party port where
    this party's executors hand over table partitions (default ``host``; bind
    it to the party's internal network, see ``star._relay``). Payloads beyond
    ``memory_limit_bytes`` spill under ``work_dir``; ``tap_dir`` records every
    stored message (tests, debugging). One party may send at most
    ``job_quota_bytes`` in one job (None: no limit).
    """

    host: str = "127.0.0.1"
    port: int = 0
    in_party_host: str | None = None
    work_dir: Path | str | None = None
    memory_limit_bytes: int = DEFAULT_MEMORY_LIMIT_BYTES
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    job_quota_bytes: int | None = DEFAULT_JOB_QUOTA_BYTES
    tap_dir: Path | str | None = None


@dataclass(frozen=True)
class SendOptions:
    """How the transport sends: chunking, deadlines, limits, and whether it keeps messages until read.

    ``connect_deadline_s`` is how long one ``send`` keeps retrying without
    progress before raising ``PeerUnreachable``; ``rpc_timeout_s`` bounds one
    transfer attempt, data included. ``max_send_bytes`` refuses larger
    payloads (``PayloadTooLarge``) before connecting. ``keep_until_read``
    keeps each sent message until the receiver reports it read, and resends it
    if the receiver lost it in a restart (off: forget it at the ack).
    """

    chunk_bytes: int = DEFAULT_CHUNK_BYTES
    connect_deadline_s: float = 30.0
    rpc_timeout_s: float = 600.0
    max_send_bytes: int | None = None
    keep_until_read: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.chunk_bytes <= MAX_CHUNK_BYTES:
            raise ValueError(f"chunk_bytes must be in 1..{MAX_CHUNK_BYTES}, got {self.chunk_bytes}")


@dataclass(frozen=True)
class Heartbeats:
    """Heartbeat the peers of every open job each ``interval_s``; a receive waiting on a peer silent for
    ``dead_after_s`` (default: five intervals) fails with ``PeerSilent`` instead of waiting out its timeout."""

    interval_s: float
    dead_after_s: float | None = None

    def __post_init__(self) -> None:
        if self.interval_s <= 0:
            raise ValueError(f"heartbeat interval_s must be positive, got {self.interval_s}")
        if self.dead_after_s is not None and self.dead_after_s <= 0:
            raise ValueError(f"heartbeat dead_after_s must be positive, got {self.dead_after_s}")

    @property
    def dead_after(self) -> float:
        return self.dead_after_s if self.dead_after_s is not None else DEAD_AFTER_BEATS * self.interval_s


@dataclass(frozen=True)
class Security:
    """How the party proves who it is and what the path may read.

    ``tls``: mutual TLS with the federation CA (peers must use it too).
    ``sealer``: seal every outgoing payload for its receiver and open every
    incoming one, end to end whatever relays it; without it payloads are
    protected per hop by TLS only. ``exchange``: star topology, the certified
    name of the exchange all routes point at; TLS then verifies the server as
    that exchange, and this party's gateway accepts messages the exchange
    delivers in other parties' names. A star requires a ``sealer``: the
    exchange terminates TLS and would read every payload.
    ``insecure_plaintext``: without ``tls``, allow the gateway to listen and
    routes to point off loopback (refused otherwise). Only the party's own
    configuration should set it; runs that use it say so in their results.
    """

    tls: TlsConfig | None = None
    sealer: Sealer | None = None
    exchange: str | None = None
    insecure_plaintext: bool = False

    @property
    def mode(self) -> str:
        """``mtls``, ``plaintext (loopback)`` or ``plaintext (insecure_plaintext: true)``: for logs and results."""
        return transport_mode(self.tls is not None, self.insecure_plaintext)


class Peers:
    """The route table and one channel per (party, address): where this party's messages go.

    With TLS each channel verifies its own party's certificate; in a star the
    server is the exchange for every peer, so one channel verified as the
    exchange serves them all.
    """

    def __init__(
        self,
        tls: TlsConfig | None,
        exchange: str | None,
        is_closed: Callable[[], bool],
        *,
        party_id: str = "-",
        insecure_plaintext: bool = False,
    ) -> None:
        self._tls = tls
        self._exchange = exchange
        self._is_closed = is_closed
        self._party_id = str(party_id)
        self._insecure_plaintext = insecure_plaintext
        self._lock = threading.Lock()
        self._routes: dict[str, str] = {}
        self._channels: dict[tuple[str, str], grpc.Channel] = {}

    @property
    def routes(self) -> dict[str, str]:
        with self._lock:
            return dict(self._routes)

    def set_routes(self, routes: Mapping[str, str]) -> None:
        """Replace the route table; channels to addresses no longer used are closed.

        Without TLS a route off loopback is refused (``PlaintextOffLoopback``) before
        anything changes, unless ``insecure_plaintext``.
        """
        new_routes = {str(party): address for party, address in routes.items()}
        check_routes(f"party {self._party_id}", new_routes, tls=self._tls is not None, insecure_plaintext=self._insecure_plaintext)
        with self._lock:
            self._routes = new_routes
            keep = {(self._exchange or party, address) for party, address in new_routes.items()}
            stale = [target for target in self._channels if target not in keep]
            closing = [self._channels.pop(target) for target in stale]
        for channel in closing:
            channel.close()

    def address(self, party_id: str, job_id: str, tag: str, peer: str) -> str:
        """``party_id``'s route; ``NoRoute`` naming the job, tag and peer when there is none."""
        with self._lock:
            address = self._routes.get(party_id)
            known = list(self._routes)
        if address is None:
            raise NoRoute(job_id, tag, peer, party_id, known)
        return address

    def stub(self, address: str, party_id: str, key: MessageKey | None = None) -> pb_grpc.GatewayStub:
        """A stub on the channel to ``party_id`` at ``address``; ``TransportClosed`` once the transport closed."""
        return pb_grpc.GatewayStub(self._channel(address, party_id, key))  # type: ignore[no-untyped-call]

    def _channel(self, address: str, party_id: str, key: MessageKey | None) -> grpc.Channel:
        party_id = self._exchange or party_id
        target = (party_id, address)
        with self._lock:
            if self._is_closed():
                job_id, tag, peer = (key.job_id, key.tag, str(key.dst)) if key else ("-", "-", address)
                raise TransportClosed(job_id, tag, peer, "sending")
            channel = self._channels.get(target)
            if channel is None:
                channel = dial(address, self._tls, party_id)
                self._channels[target] = channel
            return channel

    def close(self) -> None:
        """Close every channel; calls in flight are cancelled, so a resend ends quickly."""
        with self._lock:
            channels = list(self._channels.values())
            self._channels.clear()
        for channel in channels:
            channel.close()


class GrpcTransport(Transport):
    """Sends through peers' gateways and receives through this party's own.

    The transport owns its gateway: ``close`` stops the server. It is made of
    a few parts: its :class:`Gateway` (receiving), :class:`Peers` (routes and
    channels), an outbox of messages kept until read, and optionally a
    heartbeat loop; the options objects say how each behaves, and their
    defaults are the plain mesh over plaintext.

    Parameters
    ----------
    gateway
        This party's running gateway (from ``create_gateway``), or the party
        (``PartyRef`` or party id) for which to start one as ``listen`` says.
    routes
        ``{party_id: "host:port"}`` of peers' gateways; may be given later
        with :meth:`set_routes`.
    listen, send, heartbeats, security
        See :class:`GatewayOptions`, :class:`SendOptions`, :class:`Heartbeats`
        (None: no heartbeats) and :class:`Security`.
    """

    def __init__(
        self,
        gateway: Gateway | PartyRef | str,
        routes: Mapping[str, str] | None = None,
        *,
        listen: GatewayOptions | None = None,
        send: SendOptions | None = None,
        heartbeats: Heartbeats | None = None,
        security: Security | None = None,
    ) -> None:
        listen = listen or GatewayOptions()
        self.send_options = send or SendOptions()
        self.security = security or Security()
        tls, exchange, sealer = self.security.tls, self.security.exchange, self.security.sealer
        party_id = gateway.party_id if isinstance(gateway, Gateway | PartyRef) else str(gateway)
        if exchange is not None and sealer is None:
            raise UnsealedStar(party_id, exchange)
        if routes:  # refused before a gateway is started, so a refusal leaves nothing running
            check_routes(f"party {party_id}", {str(p): a for p, a in routes.items()}, tls=tls is not None,
                         insecure_plaintext=self.security.insecure_plaintext)
        if tls is not None:
            tls.check()
        if not isinstance(gateway, Gateway):
            gateway, _ = create_gateway(
                party_id,
                listen.host,
                listen.port,
                listen.tap_dir,
                listen.max_message_bytes,
                tls=tls,
                work_dir=listen.work_dir,
                memory_limit_bytes=listen.memory_limit_bytes,
                relays=(exchange,) if exchange is not None else (),
                in_party_host=listen.in_party_host,
                insecure_plaintext=self.security.insecure_plaintext,
                job_quota_bytes=listen.job_quota_bytes,
            )
        self._gateway = gateway
        self._lock = threading.Lock()
        self._closed = False
        self.peers = Peers(tls, exchange, lambda: self._closed, party_id=gateway.party_id,
                           insecure_plaintext=self.security.insecure_plaintext)
        self._nonces = (ReceiveNonces(gateway.party_id, sealer, gateway, self._deliver, self.send_options.connect_deadline_s)
                        if sealer is not None else None)
        if tls is None:
            log.warning("party %s: federation over PLAINTEXT gRPC (%s): peers are not authenticated",
                        gateway.party_id, self.mode)
        else:
            log.info("party %s: federation over mTLS%s", gateway.party_id,
                     f", sealed end to end through exchange {exchange}" if exchange is not None else "")
        self._outbox = Outbox()
        self._resender: ThreadPoolExecutor | None = None
        self._liveness: Liveness | None = None
        self._heartbeats: HeartbeatLoop | None = None
        self._relay = OutboundRelay(
            gateway.party_id,
            self,
            Mailbox(memory_limit_bytes=0, work_dir=gateway.mailbox.work_dir, label=f"{gateway.party_id}-outbound"),
            boot_id=gateway.boot_id,
            rpc_timeout_s=self.send_options.rpc_timeout_s,
        )
        gateway.relay = self._relay
        if routes:
            self.set_routes(routes)
        if heartbeats is not None:
            self._liveness = Liveness(heartbeats.dead_after, gateway.last_heard, gateway.party_id)
            self._heartbeats = HeartbeatLoop(
                f"fedspark-heartbeat-{gateway.party_id}", heartbeats.interval_s, self._peers_of_open_jobs, self._beat
            )
            self._heartbeats.start()

    # ------------------------------------------------------------ identity and routes

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
    def mode(self) -> str:
        """How this party's traffic travels (``Security.mode``): what its log and results report."""
        return self.security.mode

    @property
    def outbox(self) -> Outbox:
        """Messages sent but not yet reported read by their receivers."""
        return self._outbox

    @property
    def routes(self) -> dict[str, str]:
        return self.peers.routes

    def set_routes(self, routes: Mapping[str, str]) -> None:
        """Replace the route table; channels to addresses no longer used are closed."""
        self.peers.set_routes(routes)

    # ------------------------------------------------------------ jobs

    def open_job(self, job_id: str, parties: Iterable[PartyRef]) -> None:
        """Accept the job's messages; when sealing, draw this party's receive nonce and announce it (``_freshness``)."""
        parties = list(parties)
        self._gateway.open_job(job_id, parties)
        if self._nonces is not None:
            self._nonces.open_job(job_id, parties)

    def close_job(self, job_id: str) -> None:
        """Close the job on this gateway and forget the messages kept for it (and its receive nonces)."""
        self._gateway.close_job(job_id)
        if self._nonces is not None:
            self._nonces.close_job(job_id)
        self._relay.forget_job(job_id)
        self._outbox.drop(job_id)

    # ------------------------------------------------------------ sending

    def send(self, envelope: Envelope) -> None:
        key = envelope.key
        size = len(envelope.payload)
        options = self.send_options
        if key.tag == NONCE_TAG:
            raise ValueError(f"{key}: {NONCE_TAG!r} is reserved for receive-nonce announcements")
        if options.max_send_bytes is not None and size > options.max_send_bytes:
            raise PayloadTooLarge(key.job_id, key.tag, str(key.dst), size, options.max_send_bytes)
        address = self.peers.address(key.dst.party_id, key.job_id, key.tag, str(key.dst))
        envelope = self._sealed(envelope, address)
        stub = self.peers.stub(address, key.dst.party_id, key)
        keep = options.keep_until_read
        pending = self._outbox.pending(key.job_id, key.dst.party_id, exclude=key) if keep else ()
        if keep:
            self._outbox.sending(envelope)
        try:
            delivered = transfer(stub, envelope, address, self._settings(), pending=pending, is_closed=lambda: self._closed)
        except BaseException:
            self._outbox.discard(key)
            raise
        if self._liveness is not None:
            self._liveness.saw(key.dst.party_id)
        if keep:
            self._outbox.stored(key, delivered.boot_id)
            self._outbox.forget(delivered.read)
            self._resend_later(delivered.missing)

    def table_sink(self, key: MessageKey) -> SinkTarget:
        """Where executors hand ``key``'s partitions over: this party's own gateway, with a fresh table token.

        The gateway forwards them in this party's name (cut-through, or sealed
        first in a star; see ``star._relay``), so executors carry no key material:
        only the gateway's in-party address, the token, and the public CA
        certificate to verify the gateway.
        """
        self._check_from_me(key)
        self.peers.address(key.dst.party_id, key.job_id, key.tag, str(key.dst))  # no route: fail now, on the driver
        address = self._gateway.in_party_address
        if address is None:
            raise BindFailed(self.party_id, "-", "this gateway has no in-party address (not built by create_gateway)")
        return SinkTarget(
            key.job_id,
            key.tag,
            key.src.role.value,
            key.src.party_id,
            key.dst.role.value,
            key.dst.party_id,
            address,
            self._relay.issue(key),
            chunk_bytes=self.send_options.chunk_bytes,
            connect_deadline_s=self.send_options.connect_deadline_s,
            rpc_timeout_s=self.send_options.rpc_timeout_s,
            ca_pem=self.security.tls.pem("ca_cert") if self.security.tls is not None else None,
        )

    def table_source(self, key: MessageKey, payloads: Sequence[ReceivedPayload]) -> SourceTarget:
        """Where executors read a received table: this party's own gateway, which now keeps ``payloads``.

        The gateway serves them from its in-party address to callers holding a
        fresh read token until the job closes (``_served``), so any executor of
        the party reads them, whichever machine runs it, and none needs the
        gateway's files.
        """
        self._check_mine(key)
        address = self._gateway.in_party_address
        if address is None:
            raise BindFailed(self.party_id, "-", "this gateway has no in-party address (not built by create_gateway)")
        token = self._gateway.served.serve(key.job_id, key.tag, key.src, payloads)
        return SourceTarget(
            key.job_id,
            key.tag,
            key.src.role.value,
            key.src.party_id,
            self.party_id,
            address,
            token,
            chunk_bytes=self.send_options.chunk_bytes,
            connect_deadline_s=self.send_options.connect_deadline_s,
            rpc_timeout_s=self.send_options.rpc_timeout_s,
            ca_pem=self.security.tls.pem("ca_cert") if self.security.tls is not None else None,
        )

    # ------------------------------------------------------------ forwarding for executors (see _relay)

    @property
    def sealing(self) -> bool:
        return self.security.sealer is not None

    def relay_stub(self, key: MessageKey) -> tuple[str, pb_grpc.GatewayStub]:
        """The route and a stub, on this party's own channel (its TLS identity), for ``key``'s destination."""
        address = self.peers.address(key.dst.party_id, key.job_id, key.tag, str(key.dst))
        return address, self.peers.stub(address, key.dst.party_id, key)

    def forward(self, envelope: Envelope) -> None:
        """Seal (in a star) and deliver a partition an executor handed over; kept nowhere after the ack.

        Not kept in the outbox like a driver's message: the partition's
        manifest names one attempt, and a lost one is resent by Spark's task
        retry as a new attempt, as before executors went through the gateway.
        """
        address = self.peers.address(envelope.key.dst.party_id, envelope.key.job_id, envelope.key.tag, str(envelope.key.dst))
        self._deliver(self._sealed(envelope, address))

    def _sealed(self, envelope: Envelope, address: str) -> Envelope:
        """``envelope`` sealed for its receiver with the receiver's nonce for the job (as is when not sealing)."""
        sealer = self.security.sealer
        if sealer is None or self._nonces is None:
            return envelope
        return sealer.seal(envelope, self._nonces.of_receiver(envelope.key, address))

    def _deliver(self, envelope: Envelope) -> None:
        """Send ``envelope`` as it is (already sealed, or an announcement), once, kept nowhere."""
        address, stub = self.relay_stub(envelope.key)
        transfer(stub, envelope, address, self._settings(), is_closed=lambda: self._closed)

    def _settings(self) -> SendSettings:
        tls, exchange = self.security.tls, self.security.exchange
        return SendSettings(
            chunk_bytes=self.send_options.chunk_bytes,
            connect_deadline_s=self.send_options.connect_deadline_s,
            rpc_timeout_s=self.send_options.rpc_timeout_s,
            diagnose=lambda address, party_id: diagnose(address, tls, exchange or party_id),
        )

    def _resend_later(self, keys: Iterable[MessageKey]) -> None:
        """Resend, from a worker thread, messages a receiver reported lost."""
        keys = list(keys)
        if not keys:
            return
        with self._lock:
            if self._closed:
                return
            if self._resender is None:
                self._resender = ThreadPoolExecutor(1, thread_name_prefix=f"fedspark-resend-{self.party_id}")
            resender = self._resender
        for key in keys:
            resender.submit(self._resend, key)

    def _resend(self, key: MessageKey) -> None:
        envelope = self._outbox.claim(key)
        if envelope is None or self._closed:
            return
        log.info("%s: the receiver lost it (restarted?); sending it again", key)
        try:
            address = self.peers.address(key.dst.party_id, key.job_id, key.tag, str(key.dst))
            stub = self.peers.stub(address, key.dst.party_id, key)
            delivered = transfer(stub, envelope, address, self._settings(), is_closed=lambda: self._closed)
        except Exception as exc:  # noqa: BLE001 - kept for the next heartbeat to try again
            log.warning("%s: resend failed, will retry: %s", key, exc)
            self._outbox.unclaim(key)
            return
        self._outbox.stored(key, delivered.boot_id)

    # ------------------------------------------------------------ receiving

    def recv(self, key: MessageKey, timeout_s: float) -> bytes:
        self._check_mine(key)
        if self.security.sealer is None:
            return self._gateway.take(key, timeout_s, alive=self._alive_check(key))
        with self.recv_payload(key, timeout_s) as payload:
            return payload.read()

    def recv_payload(self, key: MessageKey, timeout_s: float) -> ReceivedPayload:
        """Like ``recv``, but hands over the stored payload (memory-mapped when it spilled).

        A sealed payload is opened first (``SealBroken`` naming the sender if
        it does not open); a spilled one is opened into a file, segment by segment.
        """
        self._check_mine(key)
        payload = self._gateway.take_payload(key, timeout_s, alive=self._alive_check(key))
        sealer, nonces = self.security.sealer, self._nonces
        if sealer is None or nonces is None:
            return payload
        try:
            nonce = nonces.own(key)
        except BaseException:
            payload.release()
            raise
        return sealer.open_payload(key, payload, nonce)

    def _check_from_me(self, key: MessageKey) -> None:
        if key.src.party_id != self.party_id:
            raise ValueError(f"{key} is not sent by party {self.party_id}, which this transport serves")

    def _check_mine(self, key: MessageKey) -> None:
        if key.dst.party_id != self.party_id:
            raise ValueError(f"{key} is not addressed to party {self.party_id}, which this transport serves")

    def _alive_check(self, key: MessageKey) -> AliveCheck | None:
        liveness = self._liveness
        if liveness is None:
            return None
        return lambda: liveness.check(key)

    # ------------------------------------------------------------ heartbeats and ping

    def heartbeat(self, party_id: str, job_id: str, timeout_s: float = 5.0) -> HeartbeatReply:
        """Heartbeat ``party_id``'s gateway for ``job_id`` once, reconciling kept messages.

        Messages the peer reports read are forgotten, lost ones resent, and a
        job the peer closed drops what is kept for it there.
        """
        peer = f"party {party_id}"
        address = self.peers.address(str(party_id), job_id, "heartbeat", peer)
        stub = self.peers.stub(address, str(party_id))
        pending = self._outbox.pending(job_id, str(party_id))
        beat = Heartbeat(job_id, self.party_id, self._gateway.boot_id, pending)
        try:
            message = stub.Heartbeat(codec.heartbeat_to_proto(beat), timeout=timeout_s, metadata=_for(party_id))
        except grpc.RpcError as exc:
            call = cast(grpc.Call, exc)
            if call.code() in RETRYABLE_CODES:
                raise PeerUnreachable(job_id, "heartbeat", peer, address, f"{call.code().name}: {call.details()}") from None
            raise refused(job_id, "heartbeat", peer, call) from None
        reply = codec.heartbeat_reply_from_proto(message, job_id)
        if self._liveness is not None:
            self._liveness.saw(str(party_id))
        if reply.job_state is JobState.CLOSED:
            self._outbox.drop(job_id, str(party_id))
        else:
            self._outbox.forget(reply.read)
            self._resend_later(reply.missing)
        return reply

    def _beat(self, job_id: str, party_id: str) -> None:
        interval = self._heartbeats.interval_s if self._heartbeats is not None else 1.0
        self.heartbeat(party_id, job_id, timeout_s=max(0.2, interval))

    def _peers_of_open_jobs(self) -> dict[str, set[str]]:
        routed = set(self.peers.routes)
        jobs = {}
        for job_id, members in self._gateway.open_jobs().items():
            peers = {m.party_id for m in members if m.party_id != self.party_id and m.party_id in routed}
            if peers:
                jobs[job_id] = peers
        return jobs

    def ping(self, party_id: str, timeout_s: float = 5.0) -> str:
        """Ask a peer's gateway who it is; returns the party id it reports."""
        peer = f"party {party_id}"
        address = self.peers.address(str(party_id), "-", "ping", peer)
        stub = self.peers.stub(address, str(party_id))
        try:
            reply = stub.Ping(codec.ping_request_to_proto(self.party_id), timeout=timeout_s, metadata=_for(party_id))
        except grpc.RpcError as exc:
            call = cast(grpc.Call, exc)
            raise PeerUnreachable(
                "-", "ping", peer, address, f"{call.code().name}: {call.details()}"
            ) from None
        return codec.ping_reply_from_proto(reply)

    # ------------------------------------------------------------ lifetime

    def close(self) -> None:
        """Stop heartbeats and resends, close channels to peers, stop this party's gateway."""
        with self._lock:
            self._closed = True
            resender, self._resender = self._resender, None
        if self._heartbeats is not None:
            self._heartbeats.stop()
        self.peers.close()
        if self._nonces is not None:
            self._nonces.stop()
        if resender is not None:
            resender.shutdown(wait=True, cancel_futures=True)
        self._gateway.stop(grace_s=1.0)
        self._relay.mailbox.close()


def _for(party_id: str) -> tuple[tuple[str, str]]:
    """Metadata naming the destination party, for requests whose body does not (an exchange routes by it)."""
    return ((DST_METADATA_KEY, str(party_id)),)
