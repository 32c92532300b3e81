"""A party's gateway serves the tables it received to the party's own executors.

A received distributed table stays where the gateway stored it (in memory, or
spilled under the gateway's work dir, which only the gateway's machine can
read). So ``recv_table``'s executors, wherever the cluster runs them, read each
partition from the gateway's *in-party* address (the one ``send_table``'s
executors hand partitions to), as a stream of checksummed chunks, and check the
bytes themselves (``tables._fetch``, ``tables._source.read_part``).

That makes the gateway a reading service, so the in-party hop is
authenticated as the sending one is (``star._relay``): the driver registers the
table's payloads with a fresh random read token (:meth:`ServedTables.serve`,
32 bytes from ``secrets``, for one job, tag and sender) and ships the token to
its executors inside the tasks' closure; each read carries it as metadata and
the gateway compares it with ``hmac.compare_digest``. A caller that presents a
certificate (a peer on the federation port) must be this party. Anything else
is refused with :class:`~fedspark.federation.ReadRefused` before a byte is
sent. Tokens and payloads are dropped when the job closes.

A partition may be read any number of times (Spark recomputes, a cursor
re-reads), so a read never consumes it: each opens the stored bytes afresh.
"""

from __future__ import annotations

import hmac
import secrets
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from fedspark.common import PartyRef
from fedspark.federation._errors import ReadRefused
from fedspark.federation.transport._chunks import DEFAULT_CHUNK_BYTES, MAX_CHUNK_BYTES
from fedspark.federation.transport._spill import ReceivedPayload

READ_TOKEN_METADATA_KEY = "fedspark-read-token"
"""Metadata carrying the per-table read token from an executor to its own gateway."""

TOKEN_BYTES = 32


@dataclass(frozen=True)
class PartRead:
    """One executor's request: partition ``partition`` of the table ``src`` sent under (job, tag), from ``offset``."""

    job_id: str
    tag: str
    src: PartyRef
    partition: int
    offset: int = 0
    chunk_bytes: int = DEFAULT_CHUNK_BYTES


@dataclass(frozen=True)
class _Table:
    token: str
    payloads: tuple[ReceivedPayload, ...]


class ServedTables:
    """The received tables one gateway serves to its party's executors (plain Python; see module doc)."""

    def __init__(self, party_id: str) -> None:
        self.party_id = str(party_id)
        self._lock = threading.Lock()
        self._tables: dict[tuple[str, str, str], _Table] = {}

    def serve(self, job_id: str, tag: str, src: PartyRef, payloads: Sequence[ReceivedPayload]) -> str:
        """Keep ``payloads`` (partitions in order) until the job closes; return the token that reads them.

        The gateway owns the payloads from now on. Serving the same table
        again replaces it (and its token).
        """
        table = _Table(secrets.token_urlsafe(TOKEN_BYTES), tuple(payloads))
        with self._lock:
            old = self._tables.get((job_id, tag, str(src)))
            self._tables[(job_id, tag, str(src))] = table
        if old is not None:
            _release(old.payloads)
        return table.token

    def read(self, request: PartRead, token: str | None, identity: str | None) -> Iterator[bytes]:
        """The partition's bytes from ``request.offset`` on, in chunks; ``ReadRefused`` before any if not allowed."""
        payload = self._check(request, token, identity)
        size = max(1, min(request.chunk_bytes or DEFAULT_CHUNK_BYTES, MAX_CHUNK_BYTES))
        return _chunks(payload, request.offset, size)

    def _check(self, request: PartRead, token: str | None, identity: str | None) -> ReceivedPayload:
        def refuse(why: str) -> ReadRefused:
            return ReadRefused(request.job_id, request.tag, str(request.src), self.party_id, why)

        if identity is not None and identity != self.party_id:
            raise refuse(f"the caller's certificate names party {identity}: only this party's executors read its tables")
        with self._lock:
            table = self._tables.get((request.job_id, request.tag, str(request.src)))
        if table is None:
            raise refuse("no received table is served under this tag (the job closed, or it was never received)")
        if token is None:
            raise refuse("the request carries no read token")
        if not hmac.compare_digest(table.token.encode(), token.encode()):
            raise refuse("wrong read token")
        if not 0 <= request.partition < len(table.payloads):
            raise refuse(f"partition {request.partition} is not one of the table's {len(table.payloads)}")
        payload = table.payloads[request.partition]
        if not 0 <= request.offset <= payload.size:
            raise refuse(f"offset {request.offset} is outside partition {request.partition} ({payload.size} bytes)")
        return payload

    def forget_job(self, job_id: str) -> None:
        """The job closed: its tokens stop working and its payloads are released."""
        with self._lock:
            dropped = [t for key, t in self._tables.items() if key[0] == job_id]
            self._tables = {key: t for key, t in self._tables.items() if key[0] != job_id}
        for table in dropped:
            _release(table.payloads)

    def close(self) -> None:
        with self._lock:
            dropped, self._tables = list(self._tables.values()), {}
        for table in dropped:
            _release(table.payloads)


def _chunks(payload: ReceivedPayload, offset: int, size: int) -> Iterator[bytes]:
    """Read a fresh view of the payload (a read file, not a memory map: see ``ReceivedPayload.stream``)."""
    with payload.stream() as stream:
        stream.seek(offset)
        while True:
            data = stream.read(size)
            if not data:
                return
            yield data


def _release(payloads: Sequence[ReceivedPayload]) -> None:
    for payload in payloads:
        payload.release()
