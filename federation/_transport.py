"""The interface between the federation and whatever moves bytes between parties.

Algorithms never see a transport (they get a ``Context``); the engine picks one
(gRPC between processes, loopback inside one process) and every implementation
passes the same contract tests, so a protocol that works over loopback works
over the network.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence
from types import TracebackType

from fedspark.common import PartyRef
from fedspark.federation._message import Envelope, MessageKey
from fedspark.federation.tables._fetch import SourceTarget
from fedspark.federation.tables._sink import SinkTarget
from fedspark.federation.transport._spill import ReceivedPayload


class Transport(abc.ABC):
    """Moves keyed payloads between the parties of a job.

    Invariants every implementation keeps:

    * ``send`` returns only once the receiving party has *stored* the message;
      it may be retried with the same envelope and the receiver stores it
      once. (A transport may keep the message until the receiver *read* it,
      to resend it if the receiver lost it in a restart: see ``GrpcTransport``.)
    * ``recv`` waits for one exact key, so messages can arrive in any order.
    * Only messages of jobs opened with ``open_job``, between that job's parties
      and addressed to this transport's party, are accepted.
    """

    @property
    @abc.abstractmethod
    def party_id(self) -> str:
        """The organisation this transport receives for."""

    @abc.abstractmethod
    def open_job(self, job_id: str, parties: Iterable[PartyRef]) -> None:
        """Start accepting messages of ``job_id`` between ``parties``.

        Every party must open the job before any party sends in it; otherwise
        early messages are refused as belonging to an unknown job.
        """

    @abc.abstractmethod
    def close_job(self, job_id: str) -> None:
        """Stop accepting the job's messages and drop what is still stored for it."""

    @abc.abstractmethod
    def send(self, envelope: Envelope) -> None:
        """Deliver ``envelope`` to ``envelope.key.dst``; return once it is stored there."""

    @abc.abstractmethod
    def recv(self, key: MessageKey, timeout_s: float) -> bytes:
        """Wait up to ``timeout_s`` for the message ``key`` and return its payload.

        Raises ``PeerTimeout`` naming the job, tag and sender when it does not come.
        """

    def recv_payload(self, key: MessageKey, timeout_s: float) -> ReceivedPayload:
        """Like ``recv``, but hand over the stored payload instead of its bytes.

        Transports that spill large payloads to disk override this to return
        a file-backed payload, which a reader can memory-map batch by batch;
        this default wraps the bytes ``recv`` returns.
        """
        data = self.recv(key, timeout_s)
        return ReceivedPayload(len(data), data=data)

    def table_sink(self, key: MessageKey) -> SinkTarget | None:
        """Where Spark executors hand ``key``'s table partitions over themselves (see ``send_table``).

        For a networked transport that is this party's own gateway, which
        forwards them to the peer (``star._relay``). None (the default) means
        executors cannot reach this transport, as for an in-process one: the
        driver then sends the table.
        """
        return None

    def table_source(self, key: MessageKey, payloads: Sequence[ReceivedPayload]) -> SourceTarget | None:
        """Where Spark executors read the received table ``payloads`` (its partitions, in order) themselves.

        ``key`` names the table (job, tag, sender, this party; ``seq`` unused).
        For a networked transport that is this party's own gateway, which takes
        the payloads over and streams them to executors holding the returned
        token until the job closes (``transport._served``). None (the default)
        means executors cannot reach this transport: the caller keeps the
        payloads and reads them itself.
        """
        return None

    @abc.abstractmethod
    def close(self) -> None:
        """Release the transport; calls waiting in ``recv`` raise ``TransportClosed``."""

    def __enter__(self) -> Transport:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
