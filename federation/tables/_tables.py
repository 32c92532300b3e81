"""Distributed tables between parties: ``send_table`` / ``recv_table``.

A party sends a Spark DataFrame to a peer and the peer gets a Spark DataFrame
back; neither driver holds the table. On the sending side every executor
hands its partition, as one Arrow IPC message, to its own party's gateway
(:mod:`._sink`), which forwards it to the peer's gateway in the party's
name, sealed first in a star (``star._relay``); the driver only collects one small report row per
partition and sends the *manifest*: the data's Arrow schema, and per
partition which attempt's message to read, its rows and bytes. The
receiving gateway stores every partition (spilling large ones to files on its
machine); the receiver's driver waits for the manifest's messages, hands them
back to its gateway to serve (``Transport.table_source``), and returns a
DataFrame whose tasks stream their partition from that gateway's in-party
address with a per-table read token (:mod:`._source`, :mod:`._fetch`),
partition by partition in order, on whichever machine the cluster runs them.

Wire layout under the table's tag: seq 0 is the manifest (a typed value
holding an Arrow record batch), seq ``part_seq(p, a)`` partition p as sent by
task attempt a (raw Arrow IPC stream). Nothing else crosses, and nothing is
pickled. A sender whose Spark job fails sends a *withdrawn* manifest instead
(no rows, a marker in its metadata, never the error's text, which may quote
its data), so the receiver stops at once with :class:`TableIncomplete`
instead of waiting out its timeout for a manifest that will not come.

The gateway serves the partitions until the job is closed, so a received
DataFrame is readable for the rest of the job (write it out to keep it
longer). In-process transports (loopback, for protocol tests) cannot be
reached from executors: there the driver sends the table as one partition and
the receiver builds the DataFrame from memory (or, when the partitions
spilled, from this machine's files), which is correct but bounded by the
driver's machine.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import pyarrow as pa

from fedspark.common import PartyRef
from fedspark.federation import _arrow_ipc
from fedspark.federation._errors import CodecError, TableIncomplete
from fedspark.federation.tables._sink import REPORT_DDL, REPORT_SCHEMA, encode_partition, part_seq, sink_partition
from fedspark.federation.tables._source import PartFile, TableRows, TableSource, read_partitions
from fedspark.federation.transport._spill import ReceivedPayload

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from fedspark.federation._federation import Federation

SCHEMA_METADATA_KEY = b"fedspark.table.schema"
"""Manifest schema metadata: the table's Arrow schema (IPC-serialised), so even an empty table has one."""
WITHDRAWN_METADATA_KEY = b"fedspark.table.withdrawn"
"""Manifest schema metadata: present when the sender could not produce the table."""
WITHDRAWN = "the sender withdrew it: its Spark job stopped before every partition was sent (its own log says why)"


def send_table(federation: Federation, tag: str, df: DataFrame, to: PartyRef) -> None:
    """Send every row of ``df`` to ``to`` under ``tag``, partition by partition from the executors."""
    from pyspark.sql.pandas.types import to_arrow_schema

    schema = to_arrow_schema(df.schema, timezone="UTC")
    target = federation.table_sink(tag, to)
    try:
        if target is None:
            report = _send_through_driver(federation, tag, df, schema, to)
        else:
            kernel = functools.partial(sink_partition, target, schema.serialize().to_pybytes())
            # One small row per partition reaches the driver; the rows went to the peer.
            report = df.mapInArrow(kernel, REPORT_DDL).toArrow()
    except Exception:
        _withdraw(federation, tag, schema, to)
        raise
    federation.send(tag, manifest_of(report, schema, federation.job_id, tag, str(to)), to)


def _withdraw(federation: Federation, tag: str, schema: pa.Schema, to: PartyRef) -> None:
    """Tell ``to`` the table will not come (best effort: the sender's own error is what gets raised)."""
    metadata = {SCHEMA_METADATA_KEY: schema.serialize().to_pybytes(), WITHDRAWN_METADATA_KEY: b"1"}
    withdrawn = pa.RecordBatch.from_pylist([], schema=REPORT_SCHEMA.with_metadata(metadata))
    try:
        federation.send(tag, withdrawn, to)
    except Exception:  # noqa: BLE001 - an unreachable peer times out on its own; the job's error matters here
        pass


def _send_through_driver(federation: Federation, tag: str, df: DataFrame, schema: pa.Schema, to: PartyRef) -> pa.Table:
    payload, rows = encode_partition(schema, iter(df.toArrow().to_batches()))
    federation.send_part(tag, part_seq(0, 0), payload.to_pybytes(), to)
    return pa.Table.from_pylist([{"partition": 0, "attempt": 0, "rows": rows, "bytes": payload.size}], schema=REPORT_SCHEMA)


def manifest_of(report: pa.Table, schema: pa.Schema, job_id: str, tag: str, peer: str) -> pa.RecordBatch:
    """The manifest: one row per partition in partition order, the table's schema in the metadata."""
    report = report.cast(REPORT_SCHEMA).sort_by("partition")
    partitions = report.column("partition").to_pylist()
    if partitions != list(range(len(partitions))):
        raise TableIncomplete(job_id, tag, peer, f"the sink reported partitions {partitions}, not 0..{len(partitions) - 1} once each")
    metadata = {SCHEMA_METADATA_KEY: schema.serialize().to_pybytes()}
    return pa.RecordBatch.from_arrays(
        [report.column(name).combine_chunks() for name in REPORT_SCHEMA.names],
        schema=REPORT_SCHEMA.with_metadata(metadata),
    )


def recv_table(federation: Federation, tag: str, frm: PartyRef, spark: SparkSession) -> DataFrame:
    """Receive the table ``frm`` sent under ``tag`` as a DataFrame of this party's session.

    Waits for the manifest and every partition it names (so a missing one is
    a ``PeerTimeout`` here, not a failure deep inside a later Spark job), but
    does not read the rows: executors do, when the DataFrame is used.
    """
    schema, received = _receive(federation, tag, frm)
    if isinstance(received, TableSource):
        return _read_parts(spark, received, schema)
    return spark.createDataFrame(received)


def recv_table_rows(federation: Federation, tag: str, frm: PartyRef) -> TableRows:
    """Receive the table ``frm`` sent under ``tag`` for reading by row position (:class:`TableRows`).

    Waits exactly as :func:`recv_table` does; no Spark session is involved, the
    rows are read where the returned object is used.
    """
    _schema, received = _receive(federation, tag, frm)
    if isinstance(received, TableSource):
        return TableRows(source=received)
    return TableRows(table=received)


def _receive(federation: Federation, tag: str, frm: PartyRef) -> tuple[pa.Schema, TableSource | pa.Table]:
    """Wait for the manifest and its partitions: where executors read them, or (in-process transports) the rows."""
    peer = str(frm)
    manifest = federation.recv(tag, frm)
    schema, rows = _parse_manifest(manifest, federation.job_id, tag, peer)
    payloads: list[ReceivedPayload] = []
    for partition, (attempt, _rows, size) in enumerate(rows):
        payload = federation.recv_part(tag, frm, part_seq(partition, attempt))
        payloads.append(payload)
        if payload.size != size:
            raise TableIncomplete(
                federation.job_id, tag, peer, f"partition {partition} has {payload.size} bytes, the manifest says {size}"
            )
    target = federation.table_source(tag, frm, payloads)
    if target is not None:  # the gateway keeps the payloads and serves them to executors
        parts = tuple(PartFile(None, count, size) for _, count, size in rows)
        return schema, TableSource(federation.job_id, tag, peer, parts, schema, gateway=target)
    if all(p.path is not None for p in payloads):  # an in-process transport's spill: this machine's files
        parts = tuple(PartFile(p.path.resolve().as_uri(), count, size)
                      for p, (_, count, size) in zip(payloads, rows, strict=True) if p.path)
        return schema, TableSource(federation.job_id, tag, peer, parts, schema)
    return schema, _from_memory(payloads, TableSource(federation.job_id, tag, peer, (), schema))


def _parse_manifest(manifest: object, job_id: str, tag: str, peer: str) -> tuple[pa.Schema, list[tuple[int, int, int]]]:
    """The table's schema and (attempt, rows, bytes) per partition; anything malformed is refused."""
    if not isinstance(manifest, pa.RecordBatch):
        raise TableIncomplete(job_id, tag, peer, f"expected a table manifest (record batch), got {type(manifest).__name__}")
    metadata = manifest.schema.metadata or {}
    if WITHDRAWN_METADATA_KEY in metadata:
        raise TableIncomplete(job_id, tag, peer, WITHDRAWN)
    if SCHEMA_METADATA_KEY not in metadata or manifest.schema.remove_metadata() != REPORT_SCHEMA:
        raise TableIncomplete(job_id, tag, peer, f"not a table manifest: columns {manifest.schema.names}")
    try:
        schema = pa.ipc.read_schema(pa.py_buffer(metadata[SCHEMA_METADATA_KEY]))
    except (pa.ArrowException, ValueError) as exc:
        raise TableIncomplete(job_id, tag, peer, f"the manifest's schema does not decode: {exc}") from exc
    columns = manifest.to_pydict()
    if columns["partition"] != list(range(manifest.num_rows)):
        raise TableIncomplete(job_id, tag, peer, f"manifest partitions {columns['partition']} are not 0..n-1 in order")
    rows = list(zip(columns["attempt"], columns["rows"], columns["bytes"], strict=True))
    if any(min(row) < 0 for row in rows):
        raise TableIncomplete(job_id, tag, peer, "the manifest has a negative attempt, row count or size")
    return schema, rows


def _read_parts(spark: SparkSession, source: TableSource, schema: pa.Schema) -> DataFrame:
    """A DataFrame over the received partitions: one task per partition, in partition order."""
    from pyspark.sql.pandas.types import from_arrow_schema

    spark_schema = from_arrow_schema(schema, prefer_timestamp_ntz=False)
    count = len(source.parts)
    if count == 0:
        return spark.createDataFrame([], spark_schema)
    # range(n) in n slices puts index i alone in partition i, so partition order is kept.
    indexes = spark.range(0, count, 1, numPartitions=count)
    return indexes.mapInArrow(functools.partial(read_partitions, source), spark_schema)


def _from_memory(payloads: list[ReceivedPayload], source: TableSource) -> pa.Table:
    """In-process transports only: the partitions are already in this process's memory.

    Checked as the executors check what they read (``read_part``): no
    compression, the manifest's schema, every batch fully validated.
    """
    batches: list[pa.RecordBatch] = []
    schema = source.schema
    for index, payload in enumerate(payloads):
        what = f"partition {index} of table '{source.tag}'"
        with payload:
            try:
                reader = _arrow_ipc.open_stream(payload.buffer(), what)
                if schema is not None and not reader.schema.equals(schema):
                    raise CodecError(f"{what} has columns {reader.schema}, the manifest declared {schema}")
                batches.extend(_arrow_ipc.read_batches(reader, what))
            except CodecError as exc:
                raise exc.with_context(source.job_id, source.tag, source.peer) from exc
    return pa.Table.from_batches(batches, schema=schema)
