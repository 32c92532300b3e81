"""The executor side of ``send_table``: each Spark task hands its partition to its own party's gateway.

This is the one place where code running inside ``mapInArrow`` opens a
connection (STYLE rule 7): a table of millions of ciphertexts must not pass
through either party's driver, so the executor holding a partition encodes it
as one Arrow IPC stream and sends it as its own message with the ordinary
resumable ``transfer`` (checksummed chunks, retries, acks after the write)
to its party's gateway, which forwards it to the peer (``star._relay``). Executors
live inside the party's network: they never dial a peer, and hold no TLS or
sealing key; the gateway sends in the party's name.

What the executor gets is a :class:`SinkTarget`: plain strings and numbers
(the gateway's in-party address, the per-table relay token, the public CA
certificate to verify the gateway, chunk size) bound into the task's closure
within this party's own Spark application. No live channel or key is
serialised, and nothing pickled ever reaches the peer: the wire carries only
the Arrow IPC bytes.

Spark may run a partition more than once (a failed or speculative attempt).
Each attempt sends under its own sequence number (:func:`part_seq` of
(partition, attempt)), and the task's output, one report row, names the
attempt. Spark keeps the output of exactly one successful attempt per
partition, so the manifest the driver builds from those rows names exactly
one message per partition: the receiver reads that one, and a retried task
never duplicates a row. Messages of failed attempts wait in the receiver's
mailbox unread until the job closes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa

from fedspark.common import PartyRef, Role
from fedspark.federation._errors import TableIncomplete
from fedspark.federation._message import Envelope, MessageKey, PayloadKind

ATTEMPT_BITS = 16
"""Sequence numbers hold (partition << 16 | attempt) + 1; seq 0 is the manifest."""

REPORT_SCHEMA = pa.schema(
    [
        pa.field("partition", pa.int32(), nullable=False),
        pa.field("attempt", pa.int32(), nullable=False),
        pa.field("rows", pa.int64(), nullable=False),
        pa.field("bytes", pa.int64(), nullable=False),
    ]
)
"""One row per partition sent: what the driver's manifest is built from."""

REPORT_DDL = "partition int, attempt int, rows long, bytes long"


def part_seq(partition: int, attempt: int) -> int:
    """The message sequence number of one attempt at one partition (never 0)."""
    if partition < 0 or not 0 <= attempt < (1 << ATTEMPT_BITS):
        raise ValueError(f"partition {partition}, attempt {attempt} out of range")
    return ((partition << ATTEMPT_BITS) | attempt) + 1


@dataclass(frozen=True)
class SinkTarget:
    """Where and how an executor sends one table: plain data, safe to ship to executors.

    Built by the sending party's transport (``Transport.table_sink``):
    ``address`` is the party's own gateway (its in-party port), ``token`` the
    secret that gateway registered for this table, ``ca_pem`` the federation
    CA certificate (public) to verify the gateway when TLS is on. No private
    key, no key path: whoever sees a task's closure can at most send this one
    table, through this party's gateway, until the job ends.
    """

    job_id: str
    tag: str
    src_role: str
    src_party: str
    dst_role: str
    dst_party: str
    address: str
    token: str
    chunk_bytes: int
    connect_deadline_s: float
    rpc_timeout_s: float
    ca_pem: bytes | None = None

    def message_key(self, seq: int) -> MessageKey:
        return MessageKey(
            self.job_id,
            self.tag,
            PartyRef(Role(self.src_role), self.src_party),
            PartyRef(Role(self.dst_role), self.dst_party),
            seq,
        )


def encode_partition(schema: pa.Schema, batches: Iterator[pa.RecordBatch]) -> tuple[pa.Buffer, int]:
    """One partition as Arrow IPC stream bytes, and its row count (a pure kernel step).

    An empty partition still becomes a stream (schema, no batches), so every
    partition has a message and the receiver can tell "empty" from "lost".
    """
    sink = pa.BufferOutputStream()
    rows = 0
    with pa.ipc.new_stream(sink, schema) as writer:
        for batch in batches:
            if batch.schema != schema:
                batch = pa.RecordBatch.from_arrays(batch.columns, schema=schema)
            writer.write_batch(batch)
            rows += batch.num_rows
    return sink.getvalue(), rows


def push_partition(target: SinkTarget, partition: int, attempt: int, payload: pa.Buffer) -> None:
    """Hand one encoded partition to this party's gateway; returns once the peer stored it.

    The gateway acks the last chunk only after the peer's gateway did (see
    ``star._relay``), so a returned call means "delivered", as a direct send did.
    """
    from fedspark.federation import federation_pb2_grpc as pb_grpc
    from fedspark.federation.star._relay import RELAY_TOKEN_METADATA_KEY
    from fedspark.federation.transport._sender import SendSettings, transfer
    from fedspark.federation.transport._server import dial_in_party

    channel = dial_in_party(target.address, target.ca_pem, target.src_party)
    settings = SendSettings(
        chunk_bytes=target.chunk_bytes,
        connect_deadline_s=target.connect_deadline_s,
        rpc_timeout_s=target.rpc_timeout_s,
        metadata=((RELAY_TOKEN_METADATA_KEY, target.token),),
    )
    envelope = Envelope(target.message_key(part_seq(partition, attempt)), payload.to_pybytes(), PayloadKind.ARROW_STREAM)
    try:
        transfer(pb_grpc.GatewayStub(channel), envelope, target.address, settings)  # type: ignore[no-untyped-call]
    finally:
        channel.close()


def sink_partition(
    target: SinkTarget, schema_ipc: bytes, batches: Iterator[pa.RecordBatch]
) -> Iterator[pa.RecordBatch]:
    """The ``mapInArrow`` function of ``send_table``: send this task's partition, yield its report row.

    The partition index and attempt number come from Spark's ``TaskContext``
    (the only Spark call here), so the same function serves every task.
    """
    from pyspark import TaskContext

    context = TaskContext.get()
    if context is None:
        raise TableIncomplete(target.job_id, target.tag, target.dst_role + ":" + target.dst_party,
                              "the table sink runs inside a Spark task (mapInArrow), not on the driver")
    partition, attempt = context.partitionId(), context.attemptNumber()
    schema = pa.ipc.read_schema(pa.py_buffer(schema_ipc))
    payload, rows = encode_partition(schema, batches)
    push_partition(target, partition, attempt, payload)
    yield pa.RecordBatch.from_pylist(
        [{"partition": partition, "attempt": attempt, "rows": rows, "bytes": payload.size}], schema=REPORT_SCHEMA
    )
