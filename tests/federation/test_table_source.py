"""A received table is read by the party's executors from their OWN gateway (issue 19, item 2).

Real gRPC gateways on 127.0.0.1 port 0 and the session's local Spark, whose
executors are separate Python worker processes. Checked: executors stream
every partition from the gateway (the spill files they used to open are moved
away first, so they could not have read them); what they get is an address
and a per-table token, never a path; a read needs the token, ends with the job,
and is refused to a peer's certificate; and the streamed bytes are checked as
a file's were (compression, schema, size).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path

import grpc
import pyarrow as pa
import pytest
from pyspark.sql import SparkSession

from fedspark.common import PartyRef, Role
from fedspark.federation import (
    CodecError,
    Context,
    Federation,
    GrpcTransport,
    MessageKey,
    RefusalReason,
    Security,
    TableIncomplete,
    TlsConfig,
    codec,
)
from fedspark.federation import federation_pb2_grpc as pb_grpc
from fedspark.federation.tables import PartFile, SourceTarget, TableSource, fetch_part, read_part
from fedspark.federation.transport import (
    READ_TOKEN_METADATA_KEY,
    REFUSAL_METADATA_KEY,
    Gateway,
    PartRead,
    ReceivedPayload,
    ServedTables,
    dial,
)

GUEST = PartyRef(Role.GUEST, "9999")
HOST = PartyRef(Role.HOST, "10000")
MEMBERS = [GUEST, HOST]
JOB = "source-job"

Connect = Callable[..., dict[str, GrpcTransport]]


@pytest.fixture
def spilling(grpc_network_factory: Connect, tmp_path: Path) -> dict[str, GrpcTransport]:
    """Guest and host; the guest's gateway spills every payload under ``tmp_path/work``."""
    return grpc_network_factory(
        JOB, MEMBERS, gateway_options={"9999": {"work_dir": tmp_path / "work", "memory_limit_bytes": 0}}
    )


def _relocate_spills(monkeypatch: pytest.MonkeyPatch, gateway: Gateway, hidden: Path) -> list[Path]:
    """Before the gateway serves a received table, move its spilled files elsewhere (a test hook from outside).

    The paths the driver received stop existing: an executor that opened them
    (as executors did before) would fail; one that streams from the gateway
    does not notice. Returns the paths that vanished.
    """
    vanished: list[Path] = []
    original = gateway.served.serve
    hidden.mkdir()

    def serve(job_id: str, tag: str, src: PartyRef, payloads: list[ReceivedPayload]) -> str:
        moved = []
        for index, payload in enumerate(payloads):
            assert payload.path is not None  # everything spills (memory limit 0)
            target = hidden / f"{tag}-{index}"
            payload.path.rename(target)
            vanished.append(payload.path)
            moved.append(ReceivedPayload(payload.size, path=target, kind=payload.kind))
        return original(job_id, tag, src, moved)

    monkeypatch.setattr(gateway.served, "serve", serve)
    return vanished


def test_executors_stream_a_received_table_from_their_gateway_not_its_spill_files(
    spark: SparkSession, spilling: dict[str, GrpcTransport], monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    df = spark.range(0, 4000, numPartitions=4).selectExpr("id", "id * 0.5 as x", "if(id % 7 = 0, null, 'v') as s")
    vanished = _relocate_spills(monkeypatch, spilling["9999"].gateway, tmp_path / "hidden")
    Context(Federation(JOB, HOST, MEMBERS, spilling["10000"])).guest.put_table("t", df)
    got = Context(Federation(JOB, GUEST, MEMBERS, spilling["9999"])).hosts[0].get_table("t", spark)

    assert len(vanished) == 4 and not any(path.exists() for path in vanished)
    with caplog.at_level(logging.INFO, logger="fedspark.federation.gateway"):
        received = got.toArrow()
    assert received.equals(df.toArrow())  # every row, in order
    served = [r.getMessage() for r in caplog.records if r.getMessage().startswith("served ")]
    assert sorted(int(line.split("partition=")[1].split()[0]) for line in served) == [0, 1, 2, 3]
    assert all(f"job={JOB} " in line and " src=host:10000 " in line for line in served)


def test_what_executors_get_is_the_gateways_address_and_a_token_never_a_path(
    spark: SparkSession, spilling: dict[str, GrpcTransport], tmp_path: Path
) -> None:
    df = spark.range(0, 1000, numPartitions=2).selectExpr("id")
    Context(Federation(JOB, HOST, MEMBERS, spilling["10000"])).guest.put_table("t", df)
    rows = Context(Federation(JOB, GUEST, MEMBERS, spilling["9999"])).hosts[0].get_table_rows("t")

    source = rows.source
    assert source is not None and source.gateway is not None
    assert source.gateway.address == spilling["9999"].gateway.in_party_address
    assert [(part.uri, part.rows) for part in source.parts] == [(None, 500), (None, 500)]
    assert str(tmp_path) not in repr(source)  # no spill folder (nor anything under the test's folder)
    names = {f.name for f in dataclasses.fields(SourceTarget)}
    assert not names & {"path", "uri", "key", "cert"}
    got = rows.cursor(498).take(4)  # read here, through the gateway like an executor
    assert got is not None and got.column("id").to_pylist() == [498, 499, 500, 501]


def _ipc(table: pa.Table, compression: str | None = None) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema, options=pa.ipc.IpcWriteOptions(compression=compression)) as writer:
        writer.write(table)
    return bytes(sink.getvalue().to_pybytes())


def _serve(transport: GrpcTransport, tag: str, *payloads: bytes) -> SourceTarget:
    """As ``recv_table`` does once the partitions arrived: hand them to the gateway, get the executors' target."""
    received = [ReceivedPayload(len(data), data=data) for data in payloads]
    return transport.table_source(MessageKey(JOB, tag, HOST, GUEST), received)


TABLE = pa.table({"id": pa.array(range(100), pa.int64())})


@pytest.fixture
def plain(grpc_network_factory: Connect) -> dict[str, GrpcTransport]:
    return grpc_network_factory(JOB, MEMBERS)


def test_a_read_needs_the_tables_token_and_ends_with_the_job(plain: dict[str, GrpcTransport]) -> None:
    guest = plain["9999"]
    data = _ipc(TABLE)
    target = _serve(guest, "t", data)
    with fetch_part(target, 0, len(data), str(HOST)) as file:
        assert file.read() == data

    def refused(target: SourceTarget, index: int = 0) -> str:
        with pytest.raises(TableIncomplete) as info:
            fetch_part(target, index, len(data), str(HOST))
        assert "PERMISSION_DENIED" in str(info.value)
        return str(info.value)

    assert "wrong read token" in refused(dataclasses.replace(target, token="not-the-token"))
    assert "wrong read token" in refused(dataclasses.replace(target, token=""))
    assert "no received table is served under this tag" in refused(dataclasses.replace(target, tag="other"))
    assert "partition 1 is not one of the table's 1" in refused(target, 1)
    # Another table's token does not open this one.
    other = _serve(guest, "u", data)
    assert "wrong read token" in refused(dataclasses.replace(target, token=other.token))
    guest.close_job(JOB)
    assert "no received table is served under this tag" in refused(target)


def test_a_peer_cannot_read_the_tables_its_party_sent_even_with_the_token(
    grpc_network_factory: Connect, party_tls: dict[str, TlsConfig]
) -> None:
    """On the federation port a caller shows a certificate: only this party's own may read (and executors have none)."""
    security = {pid: {"security": Security(tls=party_tls[pid])} for pid in ("9999", "10000")}
    net = grpc_network_factory(JOB, MEMBERS, gateway_options={pid: {"tls": party_tls[pid]} for pid in ("9999", "10000")},
                               transport_options=security)
    target = _serve(net["9999"], "t", _ipc(TABLE))
    with fetch_part(target, 0, None, str(HOST)) as file:  # an executor: the in-party port, no certificate
        assert file.size() > 0

    channel = dial(f"127.0.0.1:{net['9999'].port}", party_tls["10000"], "9999")  # the host, certified
    try:
        request = codec.part_read_to_proto(PartRead(JOB, "t", HOST, 0))
        call = pb_grpc.GatewayStub(channel).ReadPart(  # type: ignore[no-untyped-call]
            request, timeout=10, metadata=((READ_TOKEN_METADATA_KEY, target.token),))
        with pytest.raises(grpc.RpcError) as info:
            list(call)
    finally:
        channel.close()
    assert info.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert "certificate names party 10000" in str(info.value.details())
    assert (REFUSAL_METADATA_KEY, RefusalReason.READ_REFUSED.value) in tuple(info.value.trailing_metadata() or ())


def _compressed() -> tuple[bytes, pa.Table]:
    return _ipc(TABLE, "zstd"), TABLE


def _other_columns() -> tuple[bytes, pa.Table]:
    return _ipc(pa.table({"id": pa.array([str(i) for i in range(100)])})), TABLE


@pytest.mark.parametrize(("crafted", "error"), [
    (_compressed, "compressed Arrow IPC"),
    (_other_columns, "the manifest declared"),
], ids=["compressed", "other-columns"])
def test_a_streamed_partition_is_checked_as_a_file_was(
    plain: dict[str, GrpcTransport], crafted: Callable[[], tuple[bytes, pa.Table]], error: str
) -> None:
    data, declared = crafted()
    target = _serve(plain["9999"], "t", data)
    source = TableSource(JOB, "t", str(HOST), (PartFile(None, declared.num_rows, len(data)),), declared.schema, target)
    with pytest.raises(CodecError, match=error) as info:
        list(read_part(source, 0))
    assert (info.value.job_id, info.value.tag, info.value.peer) == (JOB, "t", str(HOST))


def test_a_partition_longer_or_shorter_than_the_manifest_says_is_refused(plain: dict[str, GrpcTransport]) -> None:
    data = _ipc(TABLE)
    target = _serve(plain["9999"], "t", data)
    with pytest.raises(TableIncomplete, match=f"more than the {len(data) - 1} bytes the manifest declared"):
        fetch_part(target, 0, len(data) - 1, str(HOST))
    with pytest.raises(TableIncomplete, match=f"{len(data)} bytes arrived, the manifest declared {len(data) + 1}"):
        fetch_part(target, 0, len(data) + 1, str(HOST))
    source = TableSource(JOB, "t", str(HOST), (PartFile(None, 101, len(data)),), TABLE.schema, target)
    with pytest.raises(TableIncomplete, match="holds 100 rows, the sender counted 101"):
        list(read_part(source, 0))


def test_a_chunk_that_fails_its_checksum_is_refused() -> None:
    chunk = codec.part_chunk_to_proto(b"partition bytes")
    chunk.data = b"partition bytez"
    with pytest.raises(CodecError, match="fails its checksum"):
        codec.part_chunk_from_proto(chunk)


def test_a_read_resumes_at_its_offset_and_leaves_the_partition_for_the_next_reader() -> None:
    served = ServedTables("9999")
    data = bytes(range(256)) * 10
    token = served.serve(JOB, "t", HOST, [ReceivedPayload(len(data), data=data)])
    assert b"".join(served.read(PartRead(JOB, "t", HOST, 0, offset=1000, chunk_bytes=64), token, None)) == data[1000:]
    assert b"".join(served.read(PartRead(JOB, "t", HOST, 0), token, None)) == data  # a second (Spark retry) read
    served.close()
