"""``fedspark bench federation``: what the federation layer costs over what gRPC and Spark deliver alone.

Two party processes on loopback: this one sends (party 9999, with a Spark
session for the table), a child receives (party 10000, see
:mod:`._federation_peer`). Two comparisons, each against a baseline
measured in the same run:

* ``send`` of one message of ``size`` bytes (a raw Arrow IPC stream of binary
  values) through the real gateways, vs a bare gRPC client stream of the same
  bytes in 1 MiB chunks into the same child process;
* ``send_table`` of a DataFrame of ``size`` bytes (16 double columns) from the
  executors, vs a ``mapInArrow`` pass over the same DataFrame that discards
  its batches (what Spark alone delivers).

Also the receiving process's peak RSS while it receives and reads both back
(message through ``recv_stream``, table partitions file by file): spilling must
keep it far below ``size``. Headline ``ratio``: the smaller of the two ratios.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import IO, Any

import pyarrow as pa

from fedspark.engine import GATEWAY_MALLOC_ENV

TARGET_RATIO = 0.5
TARGET_RSS_MIB = 300.0
COLUMNS = 16
BARE_CHUNK = 1 << 20
MiB = 1 << 20


def parse_size(text: str) -> int:
    """``1GiB``, ``8MiB``, ``512KiB`` or a plain number of bytes."""
    from fedspark.common import ConfigError

    units = {"gib": 1 << 30, "mib": 1 << 20, "kib": 1 << 10, "gb": 10**9, "mb": 10**6, "kb": 10**3, "b": 1, "": 1}
    match = re.fullmatch(r"\s*([0-9.]+)\s*([a-z]*)\s*", text.lower())
    if match is None or match[2] not in units:
        raise ConfigError(f"--size {text!r}: expected a size such as 1GiB, 64MiB or 1000000")
    try:
        size = int(float(match[1]) * units[match[2]])
    except ValueError:
        raise ConfigError(f"--size {text!r}: expected a size such as 1GiB, 64MiB or 1000000") from None
    if size < MiB:
        raise ConfigError(f"--size {text!r}: at least 1MiB")
    return size


def blob_stream(size: int) -> bytes:
    """An Arrow IPC stream of about ``size`` bytes: one binary column of 1 MiB values."""
    value = os.urandom(MiB)
    count = max(1, size // MiB)
    batch = pa.RecordBatch.from_arrays([pa.array([value] * min(count, 16), pa.binary())], names=["blob"])
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        for start in range(0, count, 16):
            writer.write_batch(batch.slice(0, min(16, count - start)))
    data: bytes = sink.getvalue().to_pybytes()
    return data


def run_federation_bench(size: int, partitions: int | None = None, chunk_bytes: int = 1 << 20) -> dict[str, Any]:
    from fedspark.common import PartyRef, Role
    from fedspark.engine import build_session
    from fedspark.federation import Envelope, Federation, GrpcTransport, MessageKey, PayloadKind, SendOptions

    sender, receiver = PartyRef(Role.GUEST, "9999"), PartyRef(Role.HOST, "10000")
    job_id = f"bench-federation-{int(time.time())}"
    rows = max(1, size // (8 * COLUMNS))
    partitions = partitions or max(2, size // (64 * MiB))
    # Spark first: its JVM is forked from this process, which must not hold gRPC threads yet.
    spark = build_session("fedspark-bench-federation", {"spark.driver.memory": "1g"})
    with tempfile.TemporaryDirectory(prefix="fedspark-bench-fed-") as folder:
        peer = subprocess.Popen(
            [sys.executable, "-m", "fedspark.bench._federation_peer", "--job-id", job_id,
             "--work-dir", folder, "--max-message-bytes", str(2 * size + (64 << 20))],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True, start_new_session=True,
            env={**os.environ, **GATEWAY_MALLOC_ENV},
        )
        transport: GrpcTransport | None = None
        try:
            hello = _line(peer.stdout)
            transport = GrpcTransport(sender, send=SendOptions(
                chunk_bytes=chunk_bytes, keep_until_read=False, connect_deadline_s=60.0, rpc_timeout_s=3600.0))
            transport.set_routes({receiver.party_id: f"127.0.0.1:{hello['port']}"})
            transport.open_job(job_id, [sender, receiver])

            payload = blob_stream(size)
            bare_s = _bare_stream(f"127.0.0.1:{hello['sink_port']}", payload)
            started = time.perf_counter()
            transport.send(Envelope(MessageKey(job_id, "blob", sender, receiver), payload, PayloadKind.ARROW_STREAM))
            send_s = time.perf_counter() - started
            message_bytes = len(payload)
            del payload

            df = spark.range(0, rows, numPartitions=partitions).selectExpr(
                *[f"cast(id as double) * {i + 1}.5 as c{i}" for i in range(COLUMNS)]
            )
            spark.range(0, 2, numPartitions=2).mapInArrow(_discard, "n long").collect()  # start Python workers
            started = time.perf_counter()
            df.mapInArrow(_discard, "n long").collect()
            spark_s = time.perf_counter() - started
            from fedspark.federation.tables import send_table

            started = time.perf_counter()
            send_table(Federation(job_id, sender, [sender, receiver], transport), "table", df, receiver)
            table_s = time.perf_counter() - started
            report = _line(peer.stdout)
        finally:
            if transport is not None:
                transport.close()
            try:
                peer.wait(timeout=60)
            except subprocess.TimeoutExpired:
                peer.kill()
                peer.wait()
    table_bytes = int(report["table_bytes"])
    rate = {
        "bare": message_bytes / bare_s / 1e6,
        "send": message_bytes / send_s / 1e6,
        "spark": table_bytes / spark_s / 1e6,
        "table": table_bytes / table_s / 1e6,
    }
    ratios = {"send_vs_bare_grpc": rate["send"] / rate["bare"], "send_table_vs_spark_discard": rate["table"] / rate["spark"]}
    ratio = min(ratios.values())
    rss = float(report["peak_rss_mib"])
    return {
        "bench": "federation",
        "params": {"size_bytes": size, "message_bytes": message_bytes, "table_rows": rows, "table_columns": COLUMNS,
                   "table_partitions": partitions, "table_ipc_bytes": table_bytes, "chunk_bytes": chunk_bytes, "bare_chunk_bytes": BARE_CHUNK,
                   "received_intact": report["message_bytes"] > 0 and report["table_rows"] == rows
                   and report["drained_bytes"] == message_bytes},
        "results": {
            "send": {"rate": rate["send"], "unit": "MB/s", "seconds": send_s},
            "send_table": {"rate": rate["table"], "unit": "MB/s", "seconds": table_s},
            "receiver_peak_rss": {"rate": rss, "unit": "MiB", "process_start_mib": hello["rss_mib"],
                                  "by_phase_mib": report["peak_rss_by_phase_mib"]},
        },
        "baseline": {
            "bare_grpc_stream": {"rate": rate["bare"], "unit": "MB/s", "seconds": bare_s},
            "spark_map_in_arrow_discard": {"rate": rate["spark"], "unit": "MB/s", "seconds": spark_s},
        },
        "ratios": ratios,
        "ratio": ratio,
        "target": {"ratio": f">= {TARGET_RATIO}", "receiver_peak_rss_mib": f"<= {TARGET_RSS_MIB:g}"},
        "meets_target": bool(ratio >= TARGET_RATIO and rss <= TARGET_RSS_MIB),
    }


def _discard(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """The Spark-only baseline: receive every batch in Python, keep nothing."""
    rows = sum(batch.num_rows for batch in batches)
    yield pa.RecordBatch.from_pydict({"n": [rows]})


def _bare_stream(address: str, payload: bytes) -> float:
    """Seconds to push ``payload`` as a plain gRPC client stream of 1 MiB messages (no checks, no acks)."""
    import grpc

    from fedspark.federation.transport import CLIENT_CHANNEL_OPTIONS

    view = memoryview(payload)
    with grpc.insecure_channel(address, options=CLIENT_CHANNEL_OPTIONS) as channel:
        drain = channel.stream_unary("/fedspark.bench.Sink/Drain")
        started = time.perf_counter()
        drain((bytes(view[i : i + BARE_CHUNK]) for i in range(0, len(view), BARE_CHUNK)), timeout=3600)
        return time.perf_counter() - started


def _line(stream: IO[str] | None) -> dict[str, Any]:
    from fedspark.common import FederationError

    line = stream.readline() if stream is not None else ""
    if not line:
        raise FederationError("bench federation: the receiving process ended early (see its stderr above)")
    result: dict[str, Any] = json.loads(line)
    return result
