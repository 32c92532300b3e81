"""The receiving side of one Transfer stream, as a plain object the servicer drives.

A Transfer is resumable: the session starts where the message's mailbox entry
stopped (a broken earlier stream may have written some chunks), acks each chunk
once written, and ends the stream with a ``resend`` ack as soon as a chunk is
corrupt, short or missing, telling the sender where to resume. A chunk that
keeps failing is refused after ``max_strikes`` attempts, so a broken sender
cannot make the gateway loop forever; the message is never decoded either way.
"""

from __future__ import annotations

from fedspark.federation._chunks import ChunkPart, Header
from fedspark.federation._errors import CorruptMessage
from fedspark.federation._mailbox import Mailbox, WriteStatus
from fedspark.federation._message import MessageKey, TransferAck

DEFAULT_MAX_STRIKES = 3
"""How often in a row one chunk may arrive bad before the message is refused."""

ACK_EVERY_BYTES = 8 << 20
"""Written chunks are acknowledged together, one ack per this many bytes (and at the end).

An ack still means "written": it carries the index after the last stored chunk.
Coalescing matters because the synchronous gRPC server waits for each reply to
go out before it reads the next request; an ack per 1 MiB chunk held a 1 GiB
send to a fraction of a bare stream's rate. A broken stream loses nothing: the
next attempt's first ack says where the stored chunks end.
"""


class TransferSession:
    """Writes one stream's chunks into the message's mailbox entry and says what to ack.

    ``first_ack`` answers the open; ``write`` returns the ack for a chunk (or
    None when there is nothing to say); ``finish`` is called at the end of the
    sender's stream. Once ``done``, the servicer ends the stream.
    """

    def __init__(
        self,
        mailbox: Mailbox,
        header: Header,
        *,
        boot_id: str,
        read: tuple[MessageKey, ...] = (),
        missing: tuple[MessageKey, ...] = (),
        max_strikes: int = DEFAULT_MAX_STRIKES,
    ) -> None:
        self.header = header
        self._mailbox = mailbox
        self._owner = object()
        self._max_strikes = max_strikes
        self._ack_every = max(1, ACK_EVERY_BYTES // header.chunk_bytes) if header.chunk_bytes > 0 else 1
        opened = mailbox.open_entry(header, self._owner)
        self._entry = opened.entry
        self.done = opened.duplicate
        self.first_ack = TransferAck(
            next_index=opened.next_index,
            complete=opened.duplicate,
            duplicate=opened.duplicate,
            stored_bytes=opened.stored_bytes,
            boot_id=boot_id,
            read=read,
            missing=missing,
        )

    def write(self, part: ChunkPart) -> TransferAck | None:
        """Offer one chunk; raises ``CorruptMessage`` when a chunk failed too often."""
        if self.done or self._entry is None:
            return None
        result = self._mailbox.write(self._entry, self._owner, part)
        status = result.status
        if status is WriteStatus.WRITTEN:
            return TransferAck(result.next_index) if result.next_index % self._ack_every == 0 else None
        if status is WriteStatus.COMPLETE:
            self.done = True
            return TransferAck(result.next_index, complete=True, stored_bytes=self.header.total_bytes)
        if status is WriteStatus.BEHIND:
            return None
        if status is WriteStatus.STALE:
            # A newer stream for this message took over (or its job closed):
            # end this one quietly, the newer one carries on.
            self.done = True
            return None
        if status is WriteStatus.BAD and result.strikes >= self._max_strikes:
            key = self.header.key
            raise CorruptMessage(
                key.job_id,
                key.tag,
                str(key.src),
                f"{result.problem} ({result.strikes} times in a row; giving up on this message)",
            )
        # BAD (resendable) or AHEAD (a chunk went missing): resume from next_index.
        self.done = True
        return TransferAck(result.next_index, resend=True)

    def finish(self) -> TransferAck | None:
        """The sender ended its stream: if the message is incomplete, say where to resume."""
        if self.done or self._entry is None:
            return None
        self.done = True
        return TransferAck(self._entry.next_index, resend=True)
