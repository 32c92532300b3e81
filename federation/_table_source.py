"""The executor side of ``recv_table``: each Spark task reads one spilled partition file.

The receiving gateway spills every table partition (an ``ARROW_STREAM``
message) to its own Arrow IPC file, so the receiver's driver only handles the
file *names*. A DataFrame with one row per partition, in partition order, is
mapped by :func:`read_partitions`, which opens the named files in the
executor and yields their batches; Spark keeps partition order, so row i of
the received table is row i of the sent one (vertical algorithms rely on it).

Paths are URIs read through ``pyarrow.fs`` (``file://`` here; a spill folder on
HDFS reads the same way from a cluster's executors).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.fs as pafs

from fedspark.federation._errors import TableIncomplete


@dataclass(frozen=True)
class PartFile:
    """One received partition: where its IPC stream is and how many rows the sender counted."""

    uri: str
    rows: int


@dataclass(frozen=True)
class TableSource:
    """What the reading tasks need (plain data): the files in partition order, and whose table it is."""

    job_id: str
    tag: str
    peer: str
    parts: tuple[PartFile, ...]


def read_part(source: TableSource, index: int) -> Iterator[pa.RecordBatch]:
    """Yield partition ``index``'s batches from its file; check the row count the sender reported."""
    part = source.parts[index]
    filesystem, path = pafs.FileSystem.from_uri(part.uri)
    rows = 0
    try:
        with filesystem.open_input_stream(path) as stream:
            reader = pa.ipc.open_stream(stream)
            for batch in reader:
                rows += batch.num_rows
                yield batch
    except (pa.ArrowException, OSError) as exc:
        raise TableIncomplete(source.job_id, source.tag, source.peer, f"partition {index} ({part.uri}): {exc}") from exc
    if rows != part.rows:
        raise TableIncomplete(
            source.job_id, source.tag, source.peer, f"partition {index} holds {rows} rows, the sender counted {part.rows}"
        )


def read_partitions(source: TableSource, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """The ``mapInArrow`` function of ``recv_table``: partition indexes in, that partition's rows out."""
    for batch in batches:
        indexes: Sequence[int] = batch.column(0).to_pylist()
        for index in indexes:
            yield from read_part(source, int(index))
