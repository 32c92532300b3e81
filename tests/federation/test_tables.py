"""Distributed tables cross between two parties and arrive intact, in order, exactly once."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from pyspark.sql import DataFrame, SparkSession

from fedspark.common import PartyRef, Role
from fedspark.federation import (
    Context,
    Envelope,
    Federation,
    GrpcTransport,
    MessageKey,
    PayloadKind,
    TableIncomplete,
    run_parties,
)
from fedspark.federation.tables import PartFile, TableSource, encode_partition, part_seq, push_partition, read_part
from fedspark.federation.transport import ReceivedPayload

GUEST = PartyRef(Role.GUEST, "9999")
HOST = PartyRef(Role.HOST, "10000")
MEMBERS = [GUEST, HOST]
JOB = "tables-job"
ROWS = 200_000

Connect = Callable[..., dict[str, GrpcTransport]]


def test_table_sent_by_host_arrives_as_dataframe_with_every_row(spark: SparkSession) -> None:
    """Over the in-process transport (driver fallback) the API behaves the same."""
    df = spark.range(0, 5000, numPartitions=4).selectExpr("id", "id * 2.5 as x")

    def host(ctx: Context) -> None:
        ctx.guest.put_table("scores", df)

    def guest(ctx: Context) -> list[tuple[int, float]]:
        got = ctx.hosts[0].get_table("scores", spark)
        return [(r["id"], r["x"]) for r in got.collect()]

    results = run_parties("tables", {GUEST: guest, HOST: host})
    rows = results[GUEST]
    assert len(rows) == 5000
    assert rows[0] == (0, 0.0) and rows[-1] == (4999, 4999 * 2.5)
    assert [r[0] for r in rows] == list(range(5000))  # order kept


def _table(spark: SparkSession) -> DataFrame:
    return spark.range(0, ROWS, numPartitions=4).selectExpr(
        "id", "id * 0.5 as x", "cast(id % 7 as int) as k", "if(id % 11 = 0, null, concat('p', id)) as name"
    )


@pytest.fixture
def wire(grpc_network_factory: Connect, tmp_path: Path) -> dict[str, GrpcTransport]:
    return grpc_network_factory(
        JOB, MEMBERS, tap_root=tmp_path / "tap", gateway_options={"9999": {"work_dir": tmp_path / "work"}}
    )


@pytest.fixture
def driver_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Sizes of every stored payload read whole *in this (driver) process*; executors are other processes.

    (The gateway, which runs here too, streams partitions to executors with ``ReceivedPayload.stream``.)
    """
    reads: list[int] = []
    original_read, original_buffer = ReceivedPayload.read, ReceivedPayload.buffer

    def read(self: ReceivedPayload) -> bytes:
        reads.append(self.size)
        return original_read(self)

    def buffer(self: ReceivedPayload) -> pa.Buffer:
        reads.append(self.size)
        return original_buffer(self)

    monkeypatch.setattr(ReceivedPayload, "read", read)
    monkeypatch.setattr(ReceivedPayload, "buffer", buffer)
    return reads


def _spy_sends(monkeypatch: pytest.MonkeyPatch, transport: GrpcTransport) -> list[Envelope]:
    """Every envelope the sending *driver* hands to its transport (executors send on their own)."""
    sent: list[Envelope] = []
    original = transport.send

    def send(envelope: Envelope) -> None:
        sent.append(envelope)
        original(envelope)

    monkeypatch.setattr(transport, "send", send)
    return sent


def test_table_crosses_two_gateways_from_executors_without_either_driver_holding_it(
    spark: SparkSession, wire: dict[str, GrpcTransport], driver_reads: list[int],
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    df = _table(spark)
    driver_sends = _spy_sends(monkeypatch, wire["10000"])
    Context(Federation(JOB, HOST, MEMBERS, wire["10000"])).guest.put_table("scores", df)
    got = Context(Federation(JOB, GUEST, MEMBERS, wire["9999"])).hosts[0].get_table("scores", spark)

    # What the two drivers did: the sender's driver sent only the manifest (the
    # partitions went from executors), the receiver's driver read no payload
    # bytes (its DataFrame's executors stream the spilled partitions from the gateway).
    assert [(e.key.seq, e.kind) for e in driver_sends] == [(0, PayloadKind.VALUE)]
    assert len(driver_sends[0].payload) < 4096
    spilled = sorted((tmp_path / "work").rglob("*.msg"))
    assert len(spilled) == 4 and sum(p.stat().st_size for p in spilled) > 4_000_000
    assert got.rdd.getNumPartitions() == 4

    expected = df.toArrow()
    received = got.toArrow()
    # Only the ~1 KiB manifest was read in this process (by the tap and by recv); no partition.
    assert driver_reads and all(size < 4096 for size in driver_reads)
    assert received.num_rows == ROWS
    assert received.equals(expected)  # same rows in the same order (partition order, then row order)

    # The wire: one manifest (a typed value holding an Arrow batch) and four raw Arrow IPC streams.
    records = [json.loads(p.read_text()) for p in sorted((tmp_path / "tap" / "9999").glob("*.json"))]
    assert sorted((r["seq"], r["kind"]) for r in records) == [
        (0, "value"), *[(part_seq(p, 0), "arrow_stream") for p in range(4)]
    ]
    rows = 0
    for record in records:
        payload = (tmp_path / "tap" / "9999" / record["payload_file"]).read_bytes()
        assert not payload.startswith(b"\x80")  # no pickle protocol marker
        if record["kind"] == "arrow_stream":
            rows += pa.ipc.open_stream(payload).read_all().num_rows
    assert rows == ROWS


def test_retried_task_delivers_each_row_exactly_once(
    spark: SparkSession, wire: dict[str, GrpcTransport], tmp_path: Path
) -> None:
    # Defined here so that Spark ships it by value (executors cannot import test modules).
    def _fail_first_attempt_of_partition_1(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from pyspark import TaskContext

        context = TaskContext.get()
        for count, batch in enumerate(batches):
            if count == 1 and context is not None and context.partitionId() == 1 and context.attemptNumber() == 0:
                raise OSError("executor lost (injected on attempt 0)")
            yield batch

    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "5000")
    try:
        df = _table(spark)
        flaky = df.mapInArrow(_fail_first_attempt_of_partition_1, df.schema)
        # Attempt 0 of partition 1 also *delivered* a copy before dying, as an
        # executor lost after its send would have: the receiver must not read it.
        target = wire["10000"].table_sink(MessageKey(JOB, "scores", HOST, GUEST))
        ghost = df.where("id < 1000").toArrow()
        push_partition(target, 1, 0, encode_partition(ghost.schema, iter(ghost.to_batches()))[0])

        Context(Federation(JOB, HOST, MEMBERS, wire["10000"])).guest.put_table("scores", flaky)
        got = Context(Federation(JOB, GUEST, MEMBERS, wire["9999"])).hosts[0].get_table("scores", spark)
        received = got.toArrow()
    finally:
        spark.conf.unset("spark.sql.execution.arrow.maxRecordsPerBatch")
    assert received.num_rows == ROWS
    assert received.column("id").to_pylist() == list(range(ROWS))
    seqs = sorted(json.loads(p.read_text())["seq"] for p in (tmp_path / "tap" / "9999").glob("*.json"))
    # The ghost (1, 0) and the retry (1, 1) both arrived; the manifest named the retry.
    assert seqs == sorted([0, part_seq(0, 0), part_seq(1, 0), part_seq(1, 1), part_seq(2, 0), part_seq(3, 0)])


def test_received_table_reads_by_row_position_from_any_row(
    spark: SparkSession, wire: dict[str, GrpcTransport], tmp_path: Path,
) -> None:
    """``get_table_rows`` reads a range of the received partitions: across partitions, from mid-batch."""
    df = _table(spark)
    Context(Federation(JOB, HOST, MEMBERS, wire["10000"])).guest.put_table("scores", df)
    rows = Context(Federation(JOB, GUEST, MEMBERS, wire["9999"])).hosts[0].get_table_rows("scores")
    expected = df.toArrow()
    assert rows.source is not None and len(rows.source.parts) == 4 and rows.num_rows == ROWS
    for start, sizes in ((0, [10]), (49_990, [25, 7, 100_000]), (ROWS - 3, [2, 5])):
        cursor, at = rows.cursor(start), start
        for size in sizes:
            got = cursor.take(size)
            want = expected.slice(at, size)
            assert got is not None and got.num_rows == want.num_rows and got.equals(want)
            at += want.num_rows
    assert rows.cursor(ROWS).take(1) is None


def test_received_table_by_row_position_over_the_in_process_transport(spark: SparkSession) -> None:
    df = spark.range(0, 1000, numPartitions=3).selectExpr("id", "id * 0.5 as x")

    def host(ctx: Context) -> None:
        ctx.guest.put_table("t", df)

    def guest(ctx: Context) -> object:
        rows = ctx.hosts[0].get_table_rows("t")
        got = rows.cursor(995).take(10)
        return rows.num_rows, got.column("id").to_pylist() if got is not None else None

    results = run_parties("tables-rows", {GUEST: guest, HOST: host})
    assert results[GUEST] == (1000, [995, 996, 997, 998, 999])


def test_empty_and_null_partitions_encode_and_read_back(tmp_path: Path) -> None:
    schema = pa.schema([("id", pa.int64()), ("name", pa.string())])
    empty, rows = encode_partition(schema, iter([]))
    assert rows == 0 and pa.ipc.open_stream(empty).read_all().num_rows == 0
    batch = pa.RecordBatch.from_pydict({"id": [1, None, 3], "name": ["a", None, "c"]}, schema=schema)
    data, rows = encode_partition(schema, iter([batch, batch.slice(0, 0)]))
    assert rows == 3
    path = tmp_path / "p.msg"
    path.write_bytes(data.to_pybytes())
    source = TableSource(JOB, "t", "host:10000", (PartFile(path.as_uri(), 3), PartFile(path.as_uri(), 4)))
    assert pa.Table.from_batches(list(read_part(source, 0))).to_pydict() == batch.to_pydict()
    with pytest.raises(TableIncomplete, match="partition 1 holds 3 rows, the sender counted 4"):
        list(read_part(source, 1))


def test_a_value_that_is_not_a_manifest_is_refused(wire: dict[str, GrpcTransport], spark: SparkSession) -> None:
    Federation(JOB, HOST, MEMBERS, wire["10000"]).send("scores", {"rows": 1}, GUEST)
    with pytest.raises(TableIncomplete, match=r"table 'scores' from host:10000: expected a table manifest"):
        Context(Federation(JOB, GUEST, MEMBERS, wire["9999"])).hosts[0].get_table("scores", spark)


def test_a_table_whose_job_fails_is_withdrawn_and_the_receiver_stops_at_once(
    wire: dict[str, GrpcTransport], spark: SparkSession, tmp_path: Path
) -> None:
    """The sender raises its own error; the receiver gets a withdrawn manifest, not a wait for its
    timeout, and nothing of the sender's error (which may quote its data) crosses."""
    def _fail_on_partition_2(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from pyspark import TaskContext

        context = TaskContext.get()
        for batch in batches:
            if context is not None and context.partitionId() == 2:
                raise ValueError("secret-cell-value cannot be used")
            yield batch

    df = _table(spark)
    failing = df.mapInArrow(_fail_on_partition_2, df.schema)
    with pytest.raises(Exception, match="secret-cell-value"):
        Context(Federation(JOB, HOST, MEMBERS, wire["10000"])).guest.put_table("scores", failing)
    started = time.monotonic()
    receiver = Context(Federation(JOB, GUEST, MEMBERS, wire["9999"], timeout_s=60))
    with pytest.raises(TableIncomplete, match=r"table 'scores' from host:10000: the sender withdrew it"):
        receiver.hosts[0].get_table("scores", spark)
    assert time.monotonic() - started < 30  # stopped on the withdrawal, not on the 60 s timeout
    stored = b"".join(p.read_bytes() for p in (tmp_path / "tap" / "9999").glob("*"))
    assert b"secret-cell-value" not in stored
