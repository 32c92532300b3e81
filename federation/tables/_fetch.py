"""An executor fetches one received partition from its own party's gateway (the reading half of ``_sink``).

Like the sink, this is code inside a Spark task that opens a connection (STYLE
rule 7): it dials the gateway's in-party address with
``transport._server.dial_in_party`` (the gateway's certificate verified against
the federation CA, no key presented) and calls ``ReadPart`` with the table's
read token, which the gateway checks (``transport._served``). Chunks carry a
CRC-32C; a broken stream resumes from the last byte received until the
connect deadline; more bytes than the manifest declared are refused as they
arrive.

The bytes are spooled, in memory up to :data:`SPOOL_IN_MEMORY_BYTES` and to
an unlinked temporary file beyond (in Spark's local dir), because the checks
``read_part`` runs before any batch is decoded walk the stream's message
headers by seeking; a partition is then read batch by batch as from a file.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from typing import cast

import pyarrow as pa

from fedspark.common import PartyRef, Role
from fedspark.federation._errors import CodecError, TableIncomplete

SPOOL_IN_MEMORY_BYTES = 32 << 20
"""Partitions up to this size are fetched into memory; larger ones into a temporary file."""

_FIRST_BACKOFF_S, _MAX_BACKOFF_S = 0.05, 1.0


@dataclass(frozen=True)
class SourceTarget:
    """Where and how executors read one received table: plain data, safe to ship to executors.

    Built by the receiving party's transport (``Transport.table_source``):
    ``address`` is the party's own gateway (its in-party port), ``token`` the
    secret that gateway registered for this table, ``ca_pem`` the federation
    CA certificate (public) to verify the gateway, which must show
    ``party_id``'s certificate, when TLS is on. No key, no file path: whoever
    sees a task's closure can at most read this one table, through this
    party's gateway, until the job ends.
    """

    job_id: str
    tag: str
    src_role: str
    src_party: str
    party_id: str
    address: str
    token: str
    chunk_bytes: int
    connect_deadline_s: float
    rpc_timeout_s: float
    ca_pem: bytes | None = None



def fetch_part(target: SourceTarget, index: int, size: int | None, peer: str) -> pa.NativeFile:
    """Partition ``index`` of ``target``'s table, whole and checksummed, as a seekable file positioned at 0.

    ``size`` is the partition's byte count from the manifest (None: not
    bounded here). A refusal, a failed checksum or a wrong size is a
    ``TableIncomplete`` naming the job, tag, peer and partition.
    """
    import grpc

    from fedspark.federation import codec
    from fedspark.federation import federation_pb2_grpc as pb_grpc
    from fedspark.federation.transport._sender import RETRYABLE_CODES
    from fedspark.federation.transport._served import READ_TOKEN_METADATA_KEY, PartRead
    from fedspark.federation.transport._server import dial_in_party

    def incomplete(why: str) -> TableIncomplete:
        return TableIncomplete(target.job_id, target.tag, peer, f"partition {index} from the gateway at {target.address}: {why}")

    src = PartyRef(Role(target.src_role), target.src_party)
    metadata = ((READ_TOKEN_METADATA_KEY, target.token),)
    spool = _Spool(size)
    channel = dial_in_party(target.address, target.ca_pem, target.party_id)
    deadline, backoff = time.monotonic() + target.connect_deadline_s, _FIRST_BACKOFF_S
    try:
        stub = pb_grpc.GatewayStub(channel)  # type: ignore[no-untyped-call]
        while True:
            request = codec.part_read_to_proto(PartRead(target.job_id, target.tag, src, index, spool.size, target.chunk_bytes))
            try:
                for message in stub.ReadPart(request, timeout=target.rpc_timeout_s, metadata=metadata):
                    data = codec.part_chunk_from_proto(message)
                    if size is not None and spool.size + len(data) > size:
                        raise incomplete(f"the gateway sends more than the {size} bytes the manifest declared")
                    spool.write(data)
                break
            except grpc.RpcError as exc:
                call = cast(grpc.Call, exc)
                if call.code() in RETRYABLE_CODES and time.monotonic() < deadline:
                    time.sleep(backoff)
                    backoff = min(2 * backoff, _MAX_BACKOFF_S)
                    continue
                raise incomplete(f"{call.code().name}: {call.details()}") from None
        if size is not None and spool.size != size:
            raise incomplete(f"{spool.size} bytes arrived, the manifest declared {size}")
        return spool.finish()
    except CodecError as exc:
        spool.discard()
        raise incomplete(exc.reason) from exc
    except BaseException:
        spool.discard()
        raise
    finally:
        channel.close()


class _Spool:
    """Bytes received so far: a list of chunks, or an unlinked temporary file once past the memory limit."""

    def __init__(self, expected: int | None) -> None:
        self.size = 0
        self._pieces: list[bytes] = []
        self._file: int | None = None
        if expected is None or expected > SPOOL_IN_MEMORY_BYTES:
            self._file = _temporary_file()

    def write(self, data: bytes) -> None:
        if self._file is None:
            self._pieces.append(data)
            if self.size + len(data) > SPOOL_IN_MEMORY_BYTES:  # the size was not announced: move to a file
                self._file = _temporary_file()
                for piece in self._pieces:
                    _write_all(self._file, piece)
                self._pieces = []
        else:
            _write_all(self._file, data)
        self.size += len(data)

    def finish(self) -> pa.NativeFile:
        if self._file is None:
            return pa.BufferReader(pa.py_buffer(b"".join(self._pieces)))
        fd, self._file = self._file, None
        os.lseek(fd, 0, os.SEEK_SET)
        return pa.PythonFile(os.fdopen(fd, "rb"), mode="r")

    def discard(self) -> None:
        self._pieces = []
        if self._file is not None:
            os.close(self._file)
            self._file = None


def _temporary_file() -> int:
    """A file in Spark's local dir (the system temp dir outside Spark), already unlinked: gone when closed."""
    local_dirs = os.environ.get("SPARK_LOCAL_DIRS", "")
    folder = local_dirs.split(",")[0] or None
    fd, path = tempfile.mkstemp(prefix="fedspark-part-", suffix=".arrows", dir=folder)
    os.unlink(path)
    return fd


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
