"""The receiving party of ``fedspark bench federation``, as its own process.

Runs party 10000's real gateway (spilling to a work dir) and, beside it, a
bare gRPC sink that only counts the bytes of a client stream (the baseline).
It reports its ports as one JSON line, then receives, in order: the big
message, read back through ``recv_stream`` (memory-mapped from its spill
file), and the table's manifest and partitions, whose spilled files it reads
back batch by batch with pyarrow (no Spark: a JVM would dwarf the figure we
measure). Last it prints its own peak RSS, which is the point: spilling must
keep it far below the sizes received.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pyarrow as pa

from fedspark.common import PartyRef, Role
from fedspark.federation import Federation, GatewayOptions, GrpcTransport
from fedspark.federation.transport import SERVER_OPTIONS

SENDER = PartyRef(Role.GUEST, "9999")
RECEIVER = PartyRef(Role.HOST, "10000")
SINK_METHOD = "/fedspark.bench.Sink/Drain"


def start_bare_sink(host: str) -> tuple[grpc.Server, int, list[int]]:
    """A gRPC server whose one method counts the bytes of a client stream and answers with nothing."""
    drained: list[int] = []

    def drain(requests: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
        drained.append(sum(len(r) for r in requests))
        return b""

    handler = grpc.method_handlers_generic_handler(
        "fedspark.bench.Sink", {"Drain": grpc.stream_unary_rpc_method_handler(drain)}
    )
    server = grpc.server(futures.ThreadPoolExecutor(2, thread_name_prefix="bench-sink"), options=SERVER_OPTIONS)
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port(f"{host}:0")
    server.start()
    return server, port, drained


def peak_rss_mib() -> float:
    """This process's peak resident set so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fedspark.bench._federation_peer")
    parser.add_argument("--job-id", required=True)
    parser.add_argument("--work-dir", required=True)
    parser.add_argument("--max-message-bytes", type=int, required=True)
    parser.add_argument("--timeout", type=float, default=3600.0)
    args = parser.parse_args(argv)

    sink, sink_port, drained = start_bare_sink("127.0.0.1")
    transport = GrpcTransport(RECEIVER, listen=GatewayOptions(work_dir=Path(args.work_dir), max_message_bytes=args.max_message_bytes))
    try:
        transport.open_job(args.job_id, [SENDER, RECEIVER])
        print(json.dumps({"port": transport.port, "sink_port": sink_port, "rss_mib": peak_rss_mib()}), flush=True)
        federation = Federation(args.job_id, RECEIVER, [SENDER, RECEIVER], transport, timeout_s=args.timeout)
        started = time.perf_counter()
        batches = federation.recv_stream("blob", SENDER)
        after_bare_and_receive = peak_rss_mib()
        message_bytes = sum(_touch(batch) for batch in batches)
        read_s = time.perf_counter() - started
        after_message = peak_rss_mib()
        rows, table_bytes = _read_table(federation, "table")
        print(json.dumps({
            "drained_bytes": sum(drained), "message_bytes": message_bytes, "message_read_s": read_s,
            "table_rows": rows, "table_bytes": table_bytes, "peak_rss_mib": peak_rss_mib(),
            "peak_rss_by_phase_mib": {"bare_stream_and_message_received": after_bare_and_receive,
                                      "message_read_back": after_message, "table_received_and_read": peak_rss_mib()},
        }), flush=True)
    finally:
        transport.close()
        sink.stop(None)
    return 0


def _read_table(federation: Federation, tag: str) -> tuple[int, int]:
    """Receive a table's manifest and partitions and read every spilled file back, batch by batch."""
    from fedspark.federation.tables import part_seq

    manifest = federation.recv(tag, SENDER)
    rows = size = 0
    for partition, attempt in enumerate(manifest.column("attempt").to_pylist()):
        payload = federation.recv_part(tag, SENDER, part_seq(partition, attempt))
        with payload:
            size += payload.size
            for batch in pa.ipc.open_stream(payload.stream()):
                _touch(batch)
                rows += batch.num_rows
    return rows, size


def _touch(batch: pa.RecordBatch) -> int:
    """Read every byte of the batch (a checksum), as a real consumer would; returns its size."""
    for column in batch.columns:
        for buffer in column.buffers():
            if buffer is not None:
                zlib.crc32(memoryview(buffer))
    return int(batch.nbytes)


if __name__ == "__main__":
    threading.current_thread().name = "bench-peer"
    sys.exit(main())
