"""Attacks with crafted payloads (issue 20, item 6): a peer's bytes are bounded and checked after decoding too.

A peer controls every byte it sends, so each attack here plays a dishonest peer that skips its own
encoder and hands its transport bytes made by hand: a compressed IPC "bomb", an Arrow batch whose
offsets point past its data, a numpy payload whose metadata lies about its column, and a flood past
the receiver's per-job byte quota through a real gateway on 127.0.0.1. The receiving side is the
production code, untouched; each refusal must name the job, the tag (or partition) and the peer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from fedspark.common import PartyRef, Role
from fedspark.federation import (
    CodecError,
    Envelope,
    Federation,
    GrpcTransport,
    LoopbackHub,
    MessageKey,
    PayloadKind,
    RefusalReason,
    SendRefused,
)
from fedspark.federation import federation_pb2 as pb
from fedspark.federation import federation_pb2_grpc as pb_grpc
from fedspark.federation.star._relay_servicer import relay_outbound
from fedspark.federation.tables import PartFile, TableSource, part_seq, read_part, recv_table_rows
from fedspark.federation.tables._tables import manifest_of
from fedspark.federation.transport import Gateway, GatewayServicer
from fedspark.federation.transport._server import start_server

JOB = "job-payloads"
TAG = "attack"
GUEST = PartyRef(Role.GUEST, "9999")
HOST = PartyRef(Role.HOST, "10000")
PARTIES = (GUEST, HOST)

# ------------------------------------------------------------------ crafted bytes


def _ipc(table: pa.Table | pa.RecordBatch, compression: str | None = None) -> bytes:
    """A raw IPC stream, written as a peer could write it (fedspark itself never compresses)."""
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression=compression)
    with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
        writer.write(table)
    return bytes(sink.getvalue().to_pybytes())


def _arrow_value(kind: int, ipc: bytes) -> bytes:
    return pb.Value(arrow_value=pb.ArrowValue(kind=kind, ipc_stream=ipc)).SerializeToString()


BOMB_ROWS = 8 << 20
"""64 MiB of float64 zeros once inflated."""


def _bomb() -> tuple[pa.Table, bytes]:
    table = pa.table({"x": np.zeros(BOMB_ROWS)})
    return table, _ipc(table, "zstd")


def _out_of_bounds_strings() -> tuple[pa.Table, bytes]:
    """Two strings whose middle offset points a gigabyte past the 6-byte data buffer.

    The first and last offsets are honest, which is all Arrow's IPC reader
    checks; reading the first value would read far outside the buffer.
    """
    table = pa.table({"s": ["abc", "def"]})
    ipc = _ipc(table)
    honest = np.array([0, 3, 6], dtype=np.int32).tobytes()
    assert ipc.count(honest) == 1
    return table, ipc.replace(honest, np.array([0, 1 << 30, 6], dtype=np.int32).tobytes())


def _ndarray_value(column: pa.Array, shape: bytes, dtype: bytes) -> bytes:
    """A numpy payload as ``ndarray_to_ipc`` lays it out, with the metadata the attacker chooses."""
    metadata = {b"fedspark.ndarray.shape": shape, b"fedspark.ndarray.dtype": dtype}
    schema = pa.schema([pa.field("data", column.type)], metadata=metadata)
    return _arrow_value(pb.ARROW_KIND_NDARRAY, _ipc(pa.RecordBatch.from_arrays([column], schema=schema)))


# ------------------------------------------------------------------ the receiving paths


@pytest.fixture
def loopback() -> Iterator[tuple[LoopbackHub, Federation]]:
    """The guest's raw transport (the attacker's) and the host's federation (the victim), in one process."""
    hub = LoopbackHub()
    for party in PARTIES:
        hub.transport(party.party_id).open_job(JOB, PARTIES)
    yield hub, Federation(JOB, HOST, PARTIES, hub.transport(HOST.party_id))
    hub.close()


def _send_raw(hub: LoopbackHub, payload: bytes, kind: PayloadKind, seq: int = 0) -> None:
    hub.transport(GUEST.party_id).send(Envelope(MessageKey(JOB, TAG, GUEST, HOST, seq), payload, kind))


Receive = Callable[[LoopbackHub, Federation, pa.Table, bytes, Path], object]


def _as_value(hub: LoopbackHub, host: Federation, table: pa.Table, ipc: bytes, tmp: Path) -> object:
    """A table sent with ``send``/``put``: one typed value."""
    _send_raw(hub, _arrow_value(pb.ARROW_KIND_TABLE, ipc), PayloadKind.VALUE)
    return host.recv(TAG, GUEST, timeout_s=5)


def _as_stream(hub: LoopbackHub, host: Federation, table: pa.Table, ipc: bytes, tmp: Path) -> object:
    """A raw Arrow stream read batch by batch (``recv_stream``)."""
    _send_raw(hub, ipc, PayloadKind.ARROW_STREAM)
    return list(host.recv_stream(TAG, GUEST, timeout_s=5))


def _as_table(hub: LoopbackHub, host: Federation, table: pa.Table, ipc: bytes, tmp: Path) -> object:
    """A distributed table: the manifest and one partition, read in process (``recv_table_rows``)."""
    report = pa.table({"partition": [0], "attempt": [0], "rows": [table.num_rows], "bytes": [len(ipc)]})
    manifest = manifest_of(report, table.schema, JOB, TAG, str(HOST))
    _send_raw(hub, ipc, PayloadKind.ARROW_STREAM, seq=part_seq(0, 0))
    _send_raw(hub, _arrow_value(pb.ARROW_KIND_RECORD_BATCH, _ipc(pa.Table.from_batches([manifest]))), PayloadKind.VALUE)
    rows = recv_table_rows(host, TAG, GUEST)
    return rows.cursor(0).take(table.num_rows)


def _as_partition_file(hub: LoopbackHub, host: Federation, table: pa.Table, ipc: bytes, tmp: Path) -> object:
    """A spilled partition file, as an executor of ``recv_table`` reads it (``read_part``)."""
    path = tmp / "part-0.arrow"
    path.write_bytes(ipc)
    source = TableSource(JOB, TAG, str(GUEST), (PartFile(path.as_uri(), table.num_rows),))
    return list(read_part(source, 0))


def _as_declared_partition_file(hub: LoopbackHub, host: Federation, table: pa.Table, ipc: bytes, tmp: Path) -> object:
    """The same, with the schema the manifest declared (as ``recv_table`` builds the source)."""
    path = tmp / "part-0.arrow"
    path.write_bytes(ipc)
    source = TableSource(JOB, TAG, str(GUEST), (PartFile(path.as_uri(), table.num_rows),), schema=table.schema)
    return list(read_part(source, 0))


PATHS: dict[str, Receive] = {
    "value": _as_value, "stream": _as_stream, "table": _as_table, "partition-file": _as_partition_file,
}
DECLARED: dict[str, Receive] = {"table": _as_table, "partition-file": _as_declared_partition_file}


def _refused(receive: Receive, loopback: tuple[LoopbackHub, Federation], table: pa.Table, ipc: bytes,
             tmp_path: Path) -> CodecError:
    hub, host = loopback
    with pytest.raises(CodecError) as info:
        receive(hub, host, table, ipc, tmp_path)
    error = info.value
    assert (error.job_id, error.tag, error.peer) == (JOB, TAG, str(GUEST)), str(error)
    return error


# ------------------------------------------------------------------ attacks


@pytest.mark.parametrize("path", PATHS)
def test_compressed_ipc_bomb_is_refused_before_it_inflates(
    path: str, loopback: tuple[LoopbackHub, Federation], tmp_path: Path
) -> None:
    """A few kilobytes of zstd announcing 64 MiB: refused from the message header, no body inflated."""
    table, bomb = _bomb()
    assert len(bomb) * 1000 < table.nbytes  # the amplification is the attack
    error = _refused(PATHS[path], loopback, table, bomb, tmp_path)
    assert "compressed Arrow IPC" in str(error)


@pytest.mark.parametrize("path", PATHS)
def test_invalid_arrow_batch_is_refused(path: str, loopback: tuple[LoopbackHub, Federation], tmp_path: Path) -> None:
    """Offsets pointing outside the data buffer pass Arrow's IPC reader; full validation refuses them."""
    table, crafted = _out_of_bounds_strings()
    error = _refused(PATHS[path], loopback, table, crafted, tmp_path)
    assert "invalid Arrow batch" in str(error) and "out of bounds" in str(error)


@pytest.mark.parametrize(("column", "dtype"), [
    (pa.array([1e10, -3.5, 2.0**70]), b"|i1"),  # float64 values claimed int8: silently wrapped before
    (pa.array([2**62, -1], pa.int64()), b"<f8"),  # int64 claimed float64: silently rounded before
    (pa.array([0, 2, 255], pa.uint8()), b"|b1"),  # bytes claimed bool: 2 and 255 became True before
    (pa.array([1.0, 2.0], pa.float32()), b"<f8"),  # same kind, other width
], ids=["float-as-int8", "int-as-float", "uint8-as-bool", "f4-as-f8"])
def test_ndarray_dtype_must_be_its_columns_type(
    column: pa.Array, dtype: bytes, loopback: tuple[LoopbackHub, Federation]
) -> None:
    hub, host = loopback
    _send_raw(hub, _ndarray_value(column, f"[{len(column)}]".encode(), dtype), PayloadKind.VALUE)
    with pytest.raises(CodecError, match=f"declares dtype .* but its column holds {column.type}") as info:
        host.recv(TAG, GUEST, timeout_s=5)
    assert (info.value.job_id, info.value.tag, info.value.peer) == (JOB, TAG, str(GUEST))


@pytest.mark.parametrize(("shape", "values"), [
    (b"[true, 2]", 2),  # a boolean taken for a dimension before
    (b"[" + b", ".join([b"1"] * 65) + b", 2]", 2),  # numpy's dimension limit: a ValueError escaped before
    (b"[9223372036854775807, 0]", 0),  # zero values, an impossible dimension: ValueError before
    (b"[" * 5000 + b"]" * 5000, 0),  # nested lists: json's RecursionError escaped before
], ids=["bool-dimension", "65-dimensions", "huge-empty", "nested"])
def test_ndarray_shape_must_be_a_plain_list_matching_its_values(
    shape: bytes, values: int, loopback: tuple[LoopbackHub, Federation]
) -> None:
    hub, host = loopback
    _send_raw(hub, _ndarray_value(pa.array(np.arange(values, dtype=np.float64)), shape, b"<f8"), PayloadKind.VALUE)
    with pytest.raises(CodecError, match="shape|dimensions") as info:
        host.recv(TAG, GUEST, timeout_s=5)
    assert (info.value.job_id, info.value.tag, info.value.peer) == (JOB, TAG, str(GUEST))


@pytest.mark.parametrize("path", DECLARED)
def test_table_partition_must_carry_the_manifests_columns(
    path: str, loopback: tuple[LoopbackHub, Federation], tmp_path: Path
) -> None:
    """The manifest says float64 scores; the partition ships int64 (or strings): refused, not handed to Spark."""
    declared = pa.table({"score": pa.array([0.5, 0.25])})
    shipped = _ipc(pa.table({"score": pa.array([1, 2], pa.int64())}))
    error = _refused(DECLARED[path], loopback, declared, shipped, tmp_path)
    assert "the manifest declared" in str(error)


# ------------------------------------------------------------------ a flood past the per-job quota


QUOTA = 1 << 20


@pytest.fixture
def quota_gateway() -> Iterator[Gateway]:
    """The host's real gateway on 127.0.0.1 (port 0), accepting 1 MiB per party per job."""
    gateway = Gateway(HOST.party_id, job_quota_bytes=QUOTA)
    servicer = GatewayServicer(gateway, relay_outbound=relay_outbound)
    server, executor, port = start_server(
        f"gateway-{HOST.party_id}",
        lambda srv: pb_grpc.add_GatewayServicer_to_server(servicer, srv),  # type: ignore[no-untyped-call]
        "127.0.0.1", 0, tls=None, max_workers=4, owner=HOST.party_id,
    )
    gateway.attach_server(server, port, executor)
    gateway.open_job(JOB, PARTIES)
    gateway.open_job("job-other", PARTIES)
    yield gateway
    gateway.stop(grace_s=1.0)


def test_peer_over_its_job_quota_is_refused_and_named(
    quota_gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    """Two 400 kB values fit in 1 MiB, the third does not: the guest's send is refused, naming it and the job."""
    guest = GrpcTransport(GUEST.party_id, routes={HOST.party_id: f"127.0.0.1:{quota_gateway.port}"})
    try:
        guest.open_job(JOB, PARTIES)
        sender = Federation(JOB, GUEST, PARTIES, guest)
        blob = np.ones(50_000)  # 400 kB as float64
        sender.send("w-1", blob, HOST)
        sender.send("w-2", blob, HOST)
        with caplog.at_level(logging.WARNING, logger="fedspark.federation.gateway"):
            with pytest.raises(SendRefused) as info:
                sender.send("w-3", blob, HOST)
        error = info.value
        assert error.reason is RefusalReason.QUOTA and (error.job_id, error.tag) == (JOB, "w-3")
        assert f"job {JOB}" in error.detail and "party 9999" in error.detail and str(QUOTA) in error.detail
        logged = [r.getMessage() for r in caplog.records if "reason=quota" in r.getMessage()]
        assert logged and f"job {JOB}" in logged[0] and "party 9999" in logged[0]
        # What was accepted stays readable, and another job has its own quota.
        assert quota_gateway.mailbox.accepted_bytes(JOB, GUEST.party_id) <= QUOTA
        stored = quota_gateway.take(MessageKey(JOB, "w-2", GUEST, HOST), timeout_s=5)
        assert len(stored) > 400_000
        guest.open_job("job-other", PARTIES)
        Federation("job-other", GUEST, PARTIES, guest).send("w-1", blob, HOST)
    finally:
        guest.close()
