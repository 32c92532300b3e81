"""A party's receiving side: admission, reassembly, de-duplicating mailbox, tap.

This is the plain-Python half of the gateway; the gRPC servicer only unpacks
the stream and calls :meth:`Gateway.receive`. Keeping the rules here means they
are unit-testable without a server and cannot drift between entry points.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Protocol

from fedspark.common import PartyRef
from fedspark.federation._admission import JobAdmission
from fedspark.federation._chunks import ChunkPart, Header, reassemble
from fedspark.federation._errors import CodecError, CorruptMessage
from fedspark.federation._mailbox import Mailbox
from fedspark.federation._message import MessageKey, Receipt
from fedspark.federation._tap import RecordingTap

DEFAULT_MAX_MESSAGE_BYTES = 1 << 30
"""1 GiB: payloads are held in memory until spilling to disk exists."""


class _Server(Protocol):
    def stop(self, grace: float | None) -> object: ...


class Gateway:
    """One party's gateway: what it accepts, where it stores, what it records.

    Built by ``create_gateway``, which also starts the gRPC server that feeds
    it; ``stop`` shuts both down and wakes any receiver still waiting.
    """

    def __init__(
        self,
        party_id: str,
        *,
        tap_dir: Path | str | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        self._admission = JobAdmission(party_id, max_message_bytes)
        self._mailbox = Mailbox()
        self.tap = RecordingTap(tap_dir) if tap_dir is not None else None
        self.port: int | None = None
        self._server: _Server | None = None

    @property
    def party_id(self) -> str:
        return self._admission.party_id

    @property
    def max_message_bytes(self) -> int | None:
        return self._admission.max_message_bytes

    def open_job(self, job_id: str, parties: Iterable[PartyRef]) -> None:
        """Accept messages of ``job_id`` between ``parties``; anything else is refused."""
        self._admission.open_job(job_id, parties)

    def close_job(self, job_id: str) -> None:
        self._admission.close_job(job_id)
        self._mailbox.drop_job(job_id)

    def receive(self, parts: Iterable[ChunkPart]) -> Receipt:
        """Admit, reassemble, verify and store one pushed message.

        Raises a ``MessageRefused`` subclass when the message must not be
        stored; returns only after the payload is in the mailbox (and tap), so
        the sender's ack means "stored".
        """

        def admit(header: Header) -> None:
            self._admission.admit(header.key, header.total_bytes)

        envelope = reassemble(_corrupt_on_codec_error(parts), admit)
        stored = self._mailbox.put(envelope.key, envelope.payload)
        if stored and self.tap is not None:
            self.tap.record(envelope)
        return Receipt(duplicate=not stored, stored_bytes=len(envelope.payload))

    def take(self, key: MessageKey, timeout_s: float) -> bytes:
        """Wait for ``key`` in the mailbox (see ``Mailbox.take``)."""
        return self._mailbox.take(key, timeout_s)

    def attach_server(self, server: _Server, port: int) -> None:
        """Called by ``create_gateway``: the server whose lifetime ``stop`` ends."""
        self._server, self.port = server, port

    def stop(self, grace_s: float | None = None) -> None:
        """Stop the server (waiting up to ``grace_s`` for running pushes) and wake receivers."""
        server, self._server = self._server, None
        if server is not None:
            event = server.stop(grace_s)
            wait = getattr(event, "wait", None)
            if callable(wait):
                wait()
        self._mailbox.close()


def _corrupt_on_codec_error(parts: Iterable[ChunkPart]) -> Iterator[ChunkPart]:
    """A malformed chunk from a peer is a corrupt message, not an internal error."""
    iterator = iter(parts)
    while True:
        try:
            part = next(iterator)
        except StopIteration:
            return
        except CodecError as exc:
            raise CorruptMessage("?", "?", "?", exc.reason) from exc
        yield part
