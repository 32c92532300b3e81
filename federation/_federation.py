"""One party's view of one job: send and receive values by tag, never bytes or sockets.

``Federation`` checks what the protocol may do (only parties of the job, each
(tag, peer) once) and applies the codec; the transport underneath only moves
bytes. Algorithms normally use it through a :class:`~fedspark.federation.Context`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from fedspark.common import PartyRef, Role
from fedspark.federation import _arrow_ipc
from fedspark.federation._errors import (
    CodecError,
    DuplicateRecv,
    DuplicateSend,
    InvalidRoster,
    UnknownParty,
)
from fedspark.federation._message import Envelope, MessageKey, PayloadKind
from fedspark.federation._transport import Transport
from fedspark.federation.codec import arrow_stream_span, decode_value, encode_value
from fedspark.federation.tables._fetch import SourceTarget
from fedspark.federation.tables._sink import SinkTarget
from fedspark.federation.transport._spill import ReceivedPayload

if TYPE_CHECKING:
    from fedspark.federation.security._pair_keys import PairKeys

_SINGLE_ROLES = (Role.GUEST, Role.ARBITER)


class Federation:
    """Typed, tagged messaging between the parties of one job.

    Parameters
    ----------
    job_id
        The job every message belongs to.
    me
        The role and party this process plays.
    parties
        Every party of the job, in roster order (``ctx.hosts`` keeps it).
    transport
        Moves the bytes; it must receive for ``me.party_id``.
    timeout_s
        How long ``recv`` waits before raising ``PeerTimeout``.
    pair_keys
        This party's pair secrets with its peers (``security.PairKeys``), for
        protocols that authenticate what a third party relays (secure
        aggregation); None where the party has no sealing material.
    """

    def __init__(
        self,
        job_id: str,
        me: PartyRef,
        parties: Sequence[PartyRef],
        transport: Transport,
        timeout_s: float = 600.0,
        pair_keys: PairKeys | None = None,
    ) -> None:
        self.job_id = job_id
        self.pair_keys = pair_keys
        self.me = me
        self.parties: tuple[PartyRef, ...] = tuple(parties)
        self.timeout_s = timeout_s
        self._transport = transport
        self._check_roster()
        self._lock = threading.Lock()
        self._sent: set[tuple[str, PartyRef]] = set()
        self._received: set[tuple[str, PartyRef]] = set()

    def _check_roster(self) -> None:
        if not self.job_id:
            raise InvalidRoster(self.job_id, "the job id is empty")
        if len(set(self.parties)) != len(self.parties):
            raise InvalidRoster(self.job_id, f"a party is listed twice in {_names(self.parties)}")
        if self.me not in self.parties:
            raise UnknownParty(self.job_id, str(self.me), _names(self.parties))
        for role in _SINGLE_ROLES:
            holders = self.parties_with_role(role)
            if len(holders) > 1:
                raise InvalidRoster(self.job_id, f"{len(holders)} parties play {role}: {_names(holders)}")
        if self._transport.party_id != self.me.party_id:
            raise InvalidRoster(
                self.job_id,
                f"this party is {self.me} but its transport receives for party {self._transport.party_id}",
            )

    def parties_with_role(self, role: Role) -> tuple[PartyRef, ...]:
        """The parties playing ``role``, in roster order."""
        return tuple(party for party in self.parties if party.role == role)

    def send(self, tag: str, value: object, to: PartyRef) -> None:
        """Encode ``value`` and deliver it to ``to`` under ``tag``; returns once stored there."""
        self.broadcast(tag, value, [to])

    def broadcast(self, tag: str, value: object, to: Iterable[PartyRef]) -> None:
        """Send one value to several parties, encoding it once.

        All (tag, party) pairs are claimed before anything is sent, so a
        duplicate is reported before any party got the value.
        """
        targets = list(to)
        for party in targets:
            self._check_member(party)
        if not targets:
            return
        self._reserve(self._sent, tag, targets, DuplicateSend)
        try:
            payload = self._encode(tag, value, targets[0])
        except BaseException:
            self._release(self._sent, tag, targets)
            raise
        for done, party in enumerate(targets):
            try:
                key = MessageKey(self.job_id, tag, self.me, party)
                self._transport.send(Envelope(key, payload, PayloadKind.VALUE))
            except BaseException:
                # These values may not have arrived: let the caller try again under
                # the same tag (a resend that did arrive is de-duplicated).
                self._release(self._sent, tag, targets[done:])
                raise

    def recv(self, tag: str, frm: PartyRef, timeout_s: float | None = None) -> Any:
        """Wait for the value ``frm`` sent under ``tag`` and decode it."""
        self._check_member(frm)
        self._reserve(self._received, tag, [frm], DuplicateRecv)
        key = MessageKey(self.job_id, tag, frm, self.me)
        try:
            payload = self._transport.recv(key, self.timeout_s if timeout_s is None else timeout_s)
        except BaseException:
            self._release(self._received, tag, [frm])
            raise
        try:
            return decode_value(payload)
        except CodecError as exc:
            raise exc.with_context(self.job_id, tag, str(frm)) from exc

    def recv_stream(self, tag: str, frm: PartyRef, timeout_s: float | None = None) -> Iterator[pa.RecordBatch]:
        """Wait for a table ``frm`` sent under ``tag``, then yield it batch by batch.

        For tables too large to hold twice: when the gateway spilled the
        message to disk, the batches are read from the file (a raw Arrow
        stream, one batch in memory at a time) or a memory map of it (a
        value), so the table is never loaded whole. The message may be a table or
        record batch sent as a value (``send``/``put``) or a raw Arrow IPC
        stream (``PayloadKind.ARROW_STREAM``). The wait happens in this call
        (a ``PeerTimeout`` raises here); the stored message is deleted once
        the iterator is exhausted or closed.
        """
        self._check_member(frm)
        self._reserve(self._received, tag, [frm], DuplicateRecv)
        key = MessageKey(self.job_id, tag, frm, self.me)
        try:
            payload = self._transport.recv_payload(key, self.timeout_s if timeout_s is None else timeout_s)
        except BaseException:
            self._release(self._received, tag, [frm])
            raise
        try:
            reader = _open_arrow_stream(payload)
        except CodecError as exc:
            payload.release()
            raise exc.with_context(self.job_id, tag, str(frm)) from exc
        return self._batches(reader, payload, tag, frm)

    # ------------------------------------------------------------ distributed tables (see _tables)

    def table_sink(self, tag: str, to: PartyRef) -> SinkTarget | None:
        """Where executors send ``tag``'s partitions to ``to``, or None when they cannot (in-process transport)."""
        self._check_member(to)
        return self._transport.table_sink(MessageKey(self.job_id, tag, self.me, to))

    def send_part(self, tag: str, seq: int, payload: bytes, to: PartyRef) -> None:
        """Send one table partition (raw Arrow IPC) from this process, as message ``seq`` under ``tag``."""
        self._check_member(to)
        self._transport.send(Envelope(MessageKey(self.job_id, tag, self.me, to, seq), payload, PayloadKind.ARROW_STREAM))

    def table_source(self, tag: str, frm: PartyRef, payloads: Sequence[ReceivedPayload]) -> SourceTarget | None:
        """Hand ``tag``'s received partitions to whatever serves them to executors (None: in-process transport)."""
        self._check_member(frm)
        return self._transport.table_source(MessageKey(self.job_id, tag, frm, self.me), payloads)

    def recv_part(self, tag: str, frm: PartyRef, seq: int, timeout_s: float | None = None) -> ReceivedPayload:
        """Wait for table partition ``seq`` under ``tag`` and hand over its stored payload (unread)."""
        self._check_member(frm)
        key = MessageKey(self.job_id, tag, frm, self.me, seq)
        return self._transport.recv_payload(key, self.timeout_s if timeout_s is None else timeout_s)

    def _batches(
        self, reader: pa.ipc.RecordBatchStreamReader, payload: ReceivedPayload, tag: str, frm: PartyRef
    ) -> Iterator[pa.RecordBatch]:
        """Each batch fully validated before the caller sees it (see ``_arrow_ipc.checked_batch``)."""
        try:
            batches = _arrow_ipc.read_batches(reader, "a table")
            while True:
                try:
                    batch = next(batches)
                except StopIteration:
                    return
                except CodecError as exc:
                    raise exc.with_context(self.job_id, tag, str(frm)) from exc
                yield batch
        finally:
            payload.release()

    def _encode(self, tag: str, value: object, party: PartyRef) -> bytes:
        try:
            return encode_value(value)
        except CodecError as exc:
            raise exc.with_context(self.job_id, tag, str(party)) from exc

    def _check_member(self, party: PartyRef) -> None:
        if party not in self.parties:
            raise UnknownParty(self.job_id, str(party), _names(self.parties))

    def _reserve(
        self,
        used: set[tuple[str, PartyRef]],
        tag: str,
        parties: Sequence[PartyRef],
        error: type[DuplicateSend] | type[DuplicateRecv],
    ) -> None:
        if not tag:
            raise ValueError(f"job {self.job_id}: a message needs a non-empty tag")
        with self._lock:
            for party in parties:
                if (tag, party) in used:
                    raise error(self.job_id, tag, str(party))
            used.update((tag, party) for party in parties)

    def _release(self, used: set[tuple[str, PartyRef]], tag: str, parties: Sequence[PartyRef]) -> None:
        with self._lock:
            used.difference_update((tag, party) for party in parties)

    def __repr__(self) -> str:
        return f"Federation(job={self.job_id!r}, me={self.me}, parties=[{', '.join(_names(self.parties))}])"


def _open_arrow_stream(payload: ReceivedPayload) -> pa.ipc.RecordBatchStreamReader:
    """An IPC reader over the payload's Arrow bytes, opened after its message headers were checked.

    A raw Arrow stream (a table partition, always spilled) is read from its
    file batch by batch, so the reader holds one batch at a time; a stream
    inside a typed value is sliced out of the payload's buffer without a copy.
    Either way compressed messages are refused before any body is read
    (``_arrow_ipc.check_messages``).
    """
    if payload.kind is PayloadKind.RAW:
        raise CodecError("a raw payload is not an Arrow stream")
    try:
        if payload.kind is PayloadKind.ARROW_STREAM:
            return _arrow_ipc.open_stream(payload.stream(), "a table")
        buffer = payload.buffer()
    except (pa.ArrowException, ValueError, OSError) as exc:
        raise CodecError(f"invalid Arrow IPC stream: {exc}") from exc
    offset, length = arrow_stream_span(memoryview(buffer))
    return _arrow_ipc.open_stream(buffer.slice(offset, length), "a table")


def _names(parties: Iterable[PartyRef]) -> list[str]:
    return [str(party) for party in parties]
