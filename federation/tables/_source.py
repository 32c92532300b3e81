"""The executor side of ``recv_table``: each Spark task reads one received partition from its party's gateway.

The receiving gateway keeps every table partition (an ``ARROW_STREAM``
message) in memory or spilled to a file on *its* machine, so the receiver's
driver only handles the manifest. A DataFrame with one row per partition, in
partition order, is mapped by :func:`read_partitions`: the task streams its
partition from the gateway's in-party address (:class:`SourceTarget`, the
address executors already hand partitions to when sending; see
``tables._fetch`` and ``transport._served``), so any executor of the party
can read it, on whichever machine the cluster runs it. Spark keeps partition
order, so row i of the received table is row i of the sent one (vertical
algorithms rely on it).

Wherever the bytes come from, they are the peer's bytes as they arrived and
are checked here, in the executor (:func:`read_part`). A partition already in
a file this process can read (an in-process transport's spill) is read through
``pyarrow.fs`` from its URI instead.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.fs as pafs

from fedspark.federation import _arrow_ipc
from fedspark.federation._errors import CodecError, TableIncomplete
from fedspark.federation.tables._fetch import SourceTarget, fetch_part


@dataclass(frozen=True)
class PartFile:
    """One received partition: how many rows and bytes the sender counted, and the file holding it if any.

    ``uri`` is None when the partition is read from the gateway
    (``TableSource.gateway``); ``size`` (None: unknown) bounds what is read.
    """

    uri: str | None
    rows: int
    size: int | None = None


@dataclass(frozen=True)
class TableSource:
    """What the reading tasks need (plain data): the partitions in order, whose table it is, where to read it.

    ``schema`` is the one the manifest declared: every partition must carry
    exactly it, or a peer could hand Spark columns of other types than the
    DataFrame it built from the manifest. ``gateway`` says where the
    partitions are served (None: each part names its file).
    """

    job_id: str
    tag: str
    peer: str
    parts: tuple[PartFile, ...]
    schema: pa.Schema | None = None
    gateway: SourceTarget | None = None


def read_part(source: TableSource, index: int) -> Iterator[pa.RecordBatch]:
    """Yield partition ``index``'s batches, each checked; check the row count the sender reported.

    The bytes are the peer's as they arrived (streamed from the gateway, or a
    file): compressed messages are refused before any body is read, the
    schema must be the manifest's, and each batch is fully validated before
    Spark (or a cursor) sees it. A failure is a ``CodecError`` naming the job,
    tag, peer and partition.
    """
    part = source.parts[index]
    what = f"partition {index} of table '{source.tag}'"
    rows = 0
    try:
        with _open(source, index) as file:
            reader = _arrow_ipc.open_stream(file, what)
            if source.schema is not None and not reader.schema.equals(source.schema):
                raise CodecError(f"{what} has columns {reader.schema}, the manifest declared {source.schema}")
            for batch in _arrow_ipc.read_batches(reader, what):
                rows += batch.num_rows
                yield batch
    except CodecError as exc:
        raise exc.with_context(source.job_id, source.tag, source.peer) from exc
    except (pa.ArrowException, OSError) as exc:
        where = part.uri or (source.gateway.address if source.gateway else "?")
        raise TableIncomplete(source.job_id, source.tag, source.peer, f"partition {index} ({where}): {exc}") from exc
    if rows != part.rows:
        raise TableIncomplete(
            source.job_id, source.tag, source.peer, f"partition {index} holds {rows} rows, the sender counted {part.rows}"
        )


def _open(source: TableSource, index: int) -> pa.NativeFile:
    """Partition ``index`` as a seekable file: fetched from the gateway, or opened from its URI."""
    part = source.parts[index]
    if source.gateway is not None:
        return fetch_part(source.gateway, index, part.size, source.peer)
    if part.uri is None:
        raise TableIncomplete(source.job_id, source.tag, source.peer, f"partition {index} names neither a file nor a gateway")
    filesystem, path = pafs.FileSystem.from_uri(part.uri)
    return filesystem.open_input_file(path)


def read_partitions(source: TableSource, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """The ``mapInArrow`` function of ``recv_table``: partition indexes in, that partition's rows out."""
    for batch in batches:
        indexes: Sequence[int] = batch.column(0).to_pylist()
        for index in indexes:
            yield from read_part(source, int(index))


@dataclass(frozen=True)
class TableRows:
    """A received table read by row position: where the rows are, no Spark needed to read them.

    Vertical scoring pairs row i of the guest's table with row i of each host's
    partial scores. Joining two DataFrames on the row number shuffles both; a
    task that knows its rows are ``start..stop`` can instead read exactly that
    range of each host's table in order (:meth:`cursor`). ``source`` says where
    the partitions are read (gateway transports); in-process transports hand
    over the ``table`` itself. Plain data, so Spark ships it to executors.
    """

    source: TableSource | None = None
    table: pa.Table | None = None

    @property
    def num_rows(self) -> int:
        if self.source is not None:
            return sum(part.rows for part in self.source.parts)
        return self.table.num_rows if self.table is not None else 0

    def cursor(self, start: int) -> RowCursor:
        """A reader positioned at row ``start`` (0-based, in the sender's order)."""
        return RowCursor(self, start)


class RowCursor:
    """Reads a received table's rows forward from a starting row, a slice at a time.

    Skips whole partitions by the sender's counts, reads only the partitions
    the range touches, and never holds more than one partition's current batch.
    """

    def __init__(self, rows: TableRows, start: int) -> None:
        if start < 0:
            raise ValueError(f"row {start} is before the table's first row")
        self._batches = self._from(rows, start)
        self._pending: pa.RecordBatch | None = None

    def take(self, n: int) -> pa.Table | None:
        """The next ``n`` rows (fewer at the end of the table; None if none are left)."""
        pieces: list[pa.RecordBatch] = []
        needed = n
        while needed > 0:
            batch = self._pending if self._pending is not None else next(self._batches, None)
            self._pending = None
            if batch is None:
                break
            if batch.num_rows > needed:
                batch, self._pending = batch.slice(0, needed), batch.slice(needed)
            pieces.append(batch)
            needed -= batch.num_rows
        return pa.Table.from_batches(pieces) if pieces else None

    @staticmethod
    def _from(rows: TableRows, start: int) -> Iterator[pa.RecordBatch]:
        if rows.source is None:
            if rows.table is not None:
                yield from rows.table.slice(start).to_batches()
            return
        first = 0
        for index, part in enumerate(rows.source.parts):
            if first + part.rows <= start:
                first += part.rows
                continue
            skip = max(0, start - first)
            for batch in read_part(rows.source, index):
                if skip >= batch.num_rows:
                    skip -= batch.num_rows
                    continue
                yield batch.slice(skip) if skip else batch
                skip = 0
            first += part.rows
