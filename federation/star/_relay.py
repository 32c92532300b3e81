"""A party's gateway forwards the table partitions its own executors hand it.

Executors run inside the party's network and reach only their own gateway;
the gateway alone holds the party's TLS key and sealing key and crosses the
firewall. So ``send_table``'s executors send each partition to their gateway's
*in-party* address (:class:`~fedspark.federation.tables._sink.SinkTarget`),
and the gateway sends it on to the peer (or the exchange) in the party's name.

That makes the gateway a sending service, so the in-party hop is
authenticated: whoever can reach the in-party port must not make the gateway
speak for the party. The driver registers a random per-table token with its
own gateway (:meth:`OutboundRelay.issue`, 32 bytes from ``secrets``, for one
job, tag and destination) and ships it to its executors in the sink target;
each Transfer carries it as metadata and the gateway compares it with
``hmac.compare_digest``. The message must also come from this party and be a
table partition (a raw Arrow stream, never the manifest), and a caller that
presents a certificate (the federation port) must be this party.
Anything else is refused with :class:`~fedspark.federation.RelayRefused`
before a byte is forwarded. Tokens are forgotten when the job closes.

How a partition is forwarded depends on whether payloads are sealed:

* **cut-through** (unsealed: mesh, or a star without sealing): the executor's
  Transfer stream is relayed as one Transfer to the peer, exactly as an
  exchange relays (:func:`~fedspark.federation.star._relay_servicer.relay_stream`):
  chunks pass untouched, the peer's acks flow back, so the executor's "complete"
  means "stored at the peer", and resume, retries and de-duplication are the
  peer's, unchanged. Chosen because it adds no copy and no disk write, and the
  two hops overlap.
* **store-and-forward** (sealed): the seal covers the whole payload (AEAD
  segments bound to the header) and changes its size and chunking, so chunks
  cannot pass through. The partition is written to the gateway's outbound
  spill with the ordinary resumable, checksummed session, then sealed and sent
  on the ordinary send path (retries, acks); the executor's last ack waits for
  the peer's. Cost: one disk write and read, and the sealed partition in the
  gateway's memory while it is sent (a partition, never a table).
"""

from __future__ import annotations

import hmac
import secrets
import threading
from concurrent.futures import Future
from typing import TYPE_CHECKING, Protocol

from fedspark.federation._errors import RelayRefused
from fedspark.federation._message import Envelope, MessageKey, PayloadKind
from fedspark.federation.transport._mailbox import Mailbox

if TYPE_CHECKING:
    from fedspark.federation import federation_pb2_grpc as pb_grpc
    from fedspark.federation.transport._chunks import Header

RELAY_TOKEN_METADATA_KEY = "fedspark-relay-token"
"""Metadata carrying the per-table token from an executor to its own gateway."""

TOKEN_BYTES = 32


class Forwarder(Protocol):
    """What the relay needs from the party's transport: its routes, channels, identity and sealer."""

    @property
    def sealing(self) -> bool: ...

    def relay_stub(self, key: MessageKey) -> tuple[str, pb_grpc.GatewayStub]:
        """The address and a stub (with the party's own TLS identity) for ``key``'s destination."""
        ...

    def forward(self, envelope: Envelope) -> None:
        """Seal (if sealing) and deliver ``envelope`` on the ordinary send path."""
        ...


class OutboundRelay:
    """Tokens, checks and in-flight forwards of one party's gateway (plain Python; see module doc)."""

    def __init__(
        self, party_id: str, forwarder: Forwarder, mailbox: Mailbox, *, boot_id: str, rpc_timeout_s: float
    ) -> None:
        self.party_id = str(party_id)
        self.forwarder = forwarder
        self.mailbox = mailbox
        """Where sealed partitions are stored before they are forwarded (always spilled)."""
        self.boot_id = boot_id
        self.rpc_timeout_s = rpc_timeout_s
        self._lock = threading.Lock()
        self._tokens: dict[tuple[str, str, str], str] = {}
        self._forwards: dict[MessageKey, Future[None]] = {}

    def issue(self, key: MessageKey) -> str:
        """The token executors present to send ``key``'s table (one per job, tag and destination)."""
        slot = (key.job_id, key.tag, key.dst.party_id)
        with self._lock:
            token = self._tokens.get(slot)
            if token is None:
                token = self._tokens[slot] = secrets.token_urlsafe(TOKEN_BYTES)
            return token

    def check(self, header: Header, token: str | None, identity: str | None) -> None:
        """Refuse (``RelayRefused``) unless this party's own executor asks, with the table's token."""
        key = header.key
        dst = str(key.dst)

        def refuse(why: str) -> RelayRefused:
            return RelayRefused(key.job_id, key.tag, dst, self.party_id, why)

        if key.src.party_id != self.party_id:
            raise refuse(f"the message claims to come from {key.src}; a gateway forwards only its own party's messages")
        if identity is not None and identity != self.party_id:
            raise refuse(f"the caller's certificate names party {identity}, not this party")
        if header.kind is not PayloadKind.ARROW_STREAM or key.seq == 0:
            # The manifest (seq 0) and every other message leave through the driver's own send.
            raise refuse(f"only table partitions are forwarded for executors (raw Arrow streams, seq > 0), "
                         f"not a {header.kind.value} message with seq {key.seq}")
        with self._lock:
            expected = self._tokens.get((key.job_id, key.tag, key.dst.party_id))
        if expected is None:
            raise refuse("no table is being sent under this tag (no relay token registered)")
        if token is None:
            raise refuse("the request carries no relay token")
        if not hmac.compare_digest(expected.encode(), token.encode()):
            raise refuse("wrong relay token")

    def forwarding(self, key: MessageKey) -> tuple[Future[None], bool]:
        """The forward of ``key``'s stored partition, and whether this caller must run it.

        The first caller gets a fresh future and runs the forward; a stream
        that reconnects meanwhile (or later) waits for that future instead of
        forwarding twice or reporting "complete" early.
        """
        with self._lock:
            future = self._forwards.get(key)
            if future is not None:
                return future, False
            future = self._forwards[key] = Future()
            return future, True

    def forward_state(self, key: MessageKey) -> Future[None] | None:
        with self._lock:
            return self._forwards.get(key)

    def forget_job(self, job_id: str) -> None:
        """The job closed: its tokens stop working and its forward results are dropped."""
        with self._lock:
            self._tokens = {slot: t for slot, t in self._tokens.items() if slot[0] != job_id}
            self._forwards = {k: f for k, f in self._forwards.items() if k.job_id != job_id}
        self.mailbox.drop_job(job_id)
