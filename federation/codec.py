"""Every conversion between the wire (``federation_pb2``) and domain objects.

Paired ``x_to_proto`` / ``x_from_proto`` functions, plus :func:`encode_value` /
:func:`decode_value` for the payload of a ``VALUE`` message. Nothing else in
fedspark builds or reads protobuf messages, so the wire format can only change
here (and in ``federation.proto``).

Values use a small typed encoding (``Value`` in the proto) and Arrow IPC for
array-likes. There is deliberately no fallback to pickle or any other
"serialize anything" format: bytes come from another organisation, and
unpickling them would let that organisation run code on our machines. A type
without an encoding is a :class:`CodecError` naming the type and where it sits
inside the value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
from google.protobuf.message import DecodeError

from fedspark.common import PartyRef, Role
from fedspark.federation import _arrow_ipc
from fedspark.federation import federation_pb2 as pb
from fedspark.federation._errors import CodecError, UnknownPayloadKind
from fedspark.federation._message import (
    Heartbeat,
    HeartbeatReply,
    JobState,
    MessageKey,
    PayloadKind,
    Receipt,
    TransferAck,
)
from fedspark.federation.transport._chunks import ChunkPart, Header, checksum
from fedspark.federation.transport._served import PartRead

MAX_DEPTH = 64
"""Deepest nesting of lists/dicts; protobuf's own parser stops at 100."""

_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1

SUPPORTED_TYPES = (
    "None, bool, int, float, str, bytes, list, tuple, dict with str keys, "
    "numpy arrays (bool/int/float) and pyarrow Array, RecordBatch, Table"
)

# ------------------------------------------------------------------ parties

_ROLE_TO_PROTO = {Role.GUEST: pb.ROLE_GUEST, Role.HOST: pb.ROLE_HOST, Role.ARBITER: pb.ROLE_ARBITER}
_ROLE_FROM_PROTO: dict[int, Role] = {number: role for role, number in _ROLE_TO_PROTO.items()}


def role_to_proto(role: Role) -> pb.Role:
    return _ROLE_TO_PROTO[Role(role)]


def role_from_proto(number: int) -> Role:
    role = _ROLE_FROM_PROTO.get(number)
    if role is None:
        raise CodecError(f"unknown role number {number}")
    return role


def party_to_proto(party: PartyRef) -> pb.Party:
    return pb.Party(role=role_to_proto(party.role), party_id=party.party_id)


def party_from_proto(message: pb.Party) -> PartyRef:
    if not message.party_id:
        raise CodecError("party without a party id")
    return PartyRef(role_from_proto(message.role), message.party_id)


# ------------------------------------------------------------------ headers and chunks

_KIND_TO_PROTO = {
    PayloadKind.VALUE: pb.PAYLOAD_KIND_VALUE,
    PayloadKind.ARROW_STREAM: pb.PAYLOAD_KIND_ARROW_STREAM,
    PayloadKind.RAW: pb.PAYLOAD_KIND_RAW,
}
_KIND_FROM_PROTO: dict[int, PayloadKind] = {number: kind for kind, number in _KIND_TO_PROTO.items()}


def payload_kind_to_proto(kind: PayloadKind) -> pb.PayloadKind:
    return _KIND_TO_PROTO[kind]


def payload_kind_from_proto(number: int) -> PayloadKind:
    kind = _KIND_FROM_PROTO.get(number)
    if kind is None:
        raise UnknownPayloadKind(number)
    return kind


def header_to_proto(header: Header) -> pb.Header:
    key = header.key
    return pb.Header(
        job_id=key.job_id,
        tag=key.tag,
        src=party_to_proto(key.src),
        dst=party_to_proto(key.dst),
        seq=key.seq,
        payload_kind=payload_kind_to_proto(header.kind),
        total_bytes=header.total_bytes,
        chunk_count=header.chunk_count,
        chunk_bytes=header.chunk_bytes,
    )


def header_from_proto(message: pb.Header) -> Header:
    """Check and convert a header; a peer's malformed header is a ``CodecError``."""
    if not message.job_id or not message.tag:
        raise CodecError("message header without job id or tag")
    if not message.HasField("src") or not message.HasField("dst"):
        raise CodecError(f"header of '{message.tag}' lacks its source or destination party")
    if message.chunk_count < 1:
        raise CodecError(f"header of '{message.tag}' announces {message.chunk_count} chunks")
    key = MessageKey(
        job_id=message.job_id,
        tag=message.tag,
        src=party_from_proto(message.src),
        dst=party_from_proto(message.dst),
        seq=message.seq,
    )
    return Header(
        key,
        payload_kind_from_proto(message.payload_kind),
        message.total_bytes,
        message.chunk_count,
        message.chunk_bytes,
    )


def chunk_to_proto(part: ChunkPart) -> pb.Chunk:
    return _fill_chunk(pb.Chunk(), part)


def _fill_chunk(chunk: pb.Chunk, part: ChunkPart) -> pb.Chunk:
    """Set ``chunk``'s fields in place.

    Why in place: handing a built Chunk to a parent message's constructor
    copies it through a serialisation with upb, ~2.3 ms per MiB, which made
    this copy the sender's largest cost (measured: 0.026 ms in place).
    """
    chunk.index = part.index
    chunk.data = part.data
    chunk.crc32 = part.crc32
    if part.header is not None:
        chunk.header.CopyFrom(header_to_proto(part.header))
    return chunk


def chunk_from_proto(message: pb.Chunk) -> ChunkPart:
    header = header_from_proto(message.header) if message.HasField("header") else None
    return ChunkPart(index=message.index, data=message.data, crc32=message.crc32, header=header)


def receipt_to_proto(receipt: Receipt) -> pb.PushAck:
    return pb.PushAck(duplicate=receipt.duplicate, stored_bytes=receipt.stored_bytes)


def receipt_from_proto(message: pb.PushAck) -> Receipt:
    return Receipt(duplicate=message.duplicate, stored_bytes=message.stored_bytes)


# ------------------------------------------------------------------ transfers and heartbeats


def message_ref_to_proto(key: MessageKey) -> pb.MessageRef:
    return pb.MessageRef(tag=key.tag, src=party_to_proto(key.src), dst=party_to_proto(key.dst), seq=key.seq)


def message_ref_from_proto(job_id: str, message: pb.MessageRef) -> MessageKey:
    """A reference inside a request of job ``job_id`` (the job travels once, in the request)."""
    if not message.tag or not message.HasField("src") or not message.HasField("dst"):
        raise CodecError("message reference without tag, source or destination")
    return MessageKey(job_id, message.tag, party_from_proto(message.src), party_from_proto(message.dst), message.seq)


def _refs_to_proto(job_id: str, keys: tuple[MessageKey, ...] | list[MessageKey]) -> list[pb.MessageRef]:
    for key in keys:
        if key.job_id != job_id:
            raise CodecError(f"{key} cannot be referenced from a request of job {job_id}")
    return [message_ref_to_proto(key) for key in keys]


def transfer_open_to_proto(header: Header, pending: tuple[MessageKey, ...] = ()) -> pb.TransferRequest:
    opening = pb.TransferOpen(header=header_to_proto(header), pending=_refs_to_proto(header.key.job_id, pending))
    return pb.TransferRequest(open=opening)


def transfer_chunk_to_proto(part: ChunkPart) -> pb.TransferRequest:
    request = pb.TransferRequest()
    _fill_chunk(request.chunk, part)
    return request


def transfer_request_from_proto(message: pb.TransferRequest) -> tuple[Header, tuple[MessageKey, ...]] | ChunkPart:
    """The open (header and pending keys) or a chunk; anything else is a ``CodecError``."""
    body = message.WhichOneof("body")
    if body == "chunk":
        return chunk_from_proto(message.chunk)
    if body == "open":
        if not message.open.HasField("header"):
            raise CodecError("transfer opened without a header")
        header = header_from_proto(message.open.header)
        pending = tuple(message_ref_from_proto(header.key.job_id, ref) for ref in message.open.pending)
        return header, pending
    raise CodecError("transfer request is neither an open nor a chunk")


def transfer_ack_to_proto(ack: TransferAck, job_id: str) -> pb.TransferReply:
    return pb.TransferReply(
        next_index=ack.next_index,
        resend=ack.resend,
        complete=ack.complete,
        duplicate=ack.duplicate,
        stored_bytes=ack.stored_bytes,
        boot_id=ack.boot_id,
        read=_refs_to_proto(job_id, ack.read),
        missing=_refs_to_proto(job_id, ack.missing),
    )


def transfer_ack_from_proto(message: pb.TransferReply, job_id: str) -> TransferAck:
    return TransferAck(
        next_index=message.next_index,
        resend=message.resend,
        complete=message.complete,
        duplicate=message.duplicate,
        stored_bytes=message.stored_bytes,
        boot_id=message.boot_id,
        read=tuple(message_ref_from_proto(job_id, ref) for ref in message.read),
        missing=tuple(message_ref_from_proto(job_id, ref) for ref in message.missing),
    )


_JOB_STATE_TO_PROTO = {
    JobState.UNKNOWN: pb.JOB_STATE_UNKNOWN,
    JobState.OPEN: pb.JOB_STATE_OPEN,
    JobState.CLOSED: pb.JOB_STATE_CLOSED,
}
_JOB_STATE_FROM_PROTO: dict[int, JobState] = {number: state for state, number in _JOB_STATE_TO_PROTO.items()}


def heartbeat_to_proto(beat: Heartbeat) -> pb.HeartbeatRequest:
    return pb.HeartbeatRequest(
        job_id=beat.job_id,
        from_party_id=beat.from_party_id,
        boot_id=beat.boot_id,
        pending=_refs_to_proto(beat.job_id, beat.pending),
    )


def heartbeat_from_proto(message: pb.HeartbeatRequest) -> Heartbeat:
    if not message.job_id or not message.from_party_id:
        raise CodecError("heartbeat without job id or sender party")
    pending = tuple(message_ref_from_proto(message.job_id, ref) for ref in message.pending)
    return Heartbeat(message.job_id, message.from_party_id, message.boot_id, pending)


def heartbeat_reply_to_proto(reply: HeartbeatReply, job_id: str) -> pb.HeartbeatReply:
    return pb.HeartbeatReply(
        party_id=reply.party_id,
        boot_id=reply.boot_id,
        job_state=_JOB_STATE_TO_PROTO[reply.job_state],
        read=_refs_to_proto(job_id, reply.read),
        missing=_refs_to_proto(job_id, reply.missing),
    )


def heartbeat_reply_from_proto(message: pb.HeartbeatReply, job_id: str) -> HeartbeatReply:
    state = _JOB_STATE_FROM_PROTO.get(message.job_state)
    if state is None:
        raise CodecError(f"unknown job state number {message.job_state}")
    return HeartbeatReply(
        party_id=message.party_id,
        boot_id=message.boot_id,
        job_state=state,
        read=tuple(message_ref_from_proto(job_id, ref) for ref in message.read),
        missing=tuple(message_ref_from_proto(job_id, ref) for ref in message.missing),
    )


def ping_request_to_proto(from_party_id: str) -> pb.PingRequest:
    return pb.PingRequest(from_party_id=from_party_id)


def ping_request_from_proto(message: pb.PingRequest) -> str:
    return message.from_party_id


def ping_reply_to_proto(party_id: str) -> pb.PingReply:
    return pb.PingReply(party_id=party_id)


def ping_reply_from_proto(message: pb.PingReply) -> str:
    return message.party_id


# ------------------------------------------------------------------ reading a received table (in-party)


def part_read_to_proto(read: PartRead) -> pb.ReadPartRequest:
    return pb.ReadPartRequest(job_id=read.job_id, tag=read.tag, src=party_to_proto(read.src), partition=read.partition,
                              offset=read.offset, chunk_bytes=read.chunk_bytes)


def part_read_from_proto(message: pb.ReadPartRequest) -> PartRead:
    if not message.job_id or not message.tag:
        raise CodecError("a partition read without a job id or tag")
    return PartRead(message.job_id, message.tag, party_from_proto(message.src), message.partition, message.offset,
                    message.chunk_bytes)


def part_chunk_to_proto(data: bytes) -> pb.PartChunk:
    return pb.PartChunk(data=data, crc32=checksum(data))


def part_chunk_from_proto(message: pb.PartChunk) -> bytes:
    """The chunk's bytes; a ``CodecError`` when they do not match their CRC-32C."""
    if checksum(message.data) != message.crc32:
        raise CodecError(f"a partition chunk of {len(message.data)} bytes fails its checksum")
    return message.data


# ------------------------------------------------------------------ values


def value_to_proto(value: object) -> pb.Value:
    """Encode a supported Python value; anything else raises ``CodecError``."""
    return _to_proto(value, "value", 0)


def _to_proto(value: object, path: str, depth: int) -> pb.Value:
    if depth > MAX_DEPTH:
        raise CodecError(f"cannot encode {path}: nested deeper than {MAX_DEPTH} levels")
    if value is None:
        return pb.Value(null_value=pb.NULL_VALUE)
    if isinstance(value, (bool, np.bool_)):
        return pb.Value(bool_value=bool(value))
    if isinstance(value, (int, np.integer)):
        return _int_to_proto(int(value))
    if isinstance(value, (float, np.floating)):
        return pb.Value(double_value=float(value))
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise CodecError(f"cannot encode {path}: string is not valid UTF-8 ({exc.reason})") from exc
        return pb.Value(string_value=value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return pb.Value(bytes_value=bytes(value))
    if isinstance(value, (list, tuple)):
        items = [_to_proto(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value)]
        return pb.Value(list_value=pb.ValueList(items=items))
    if isinstance(value, Mapping):
        return pb.Value(map_value=_map_to_proto(value, path, depth))
    arrow = _arrow_to_proto(value, path)
    if arrow is not None:
        return pb.Value(arrow_value=arrow)
    raise CodecError(
        f"cannot encode {path} of type {_type_name(value)}: supported are {SUPPORTED_TYPES}"
    )


def _int_to_proto(number: int) -> pb.Value:
    if _INT64_MIN <= number <= _INT64_MAX:
        return pb.Value(int_value=number)
    # Two's complement, minimal length: bit_length + 1 sign bit, rounded up to bytes.
    length = (number.bit_length() + 8) // 8
    return pb.Value(big_int_value=number.to_bytes(length, "big", signed=True))


def _map_to_proto(mapping: Mapping[Any, Any], path: str, depth: int) -> pb.ValueMap:
    result = pb.ValueMap()
    for key, item in mapping.items():
        if not isinstance(key, str):
            raise CodecError(
                f"cannot encode {path}: dict key {key!r} is {_type_name(key)}, only str keys travel"
            )
        result.entries[key].CopyFrom(_to_proto(item, f"{path}[{key!r}]", depth + 1))
    return result


def _arrow_to_proto(value: object, path: str) -> pb.ArrowValue | None:
    try:
        if isinstance(value, np.ndarray):
            return pb.ArrowValue(kind=pb.ARROW_KIND_NDARRAY, ipc_stream=_arrow_ipc.ndarray_to_ipc(value))
        if isinstance(value, pa.Table):
            return pb.ArrowValue(kind=pb.ARROW_KIND_TABLE, ipc_stream=_arrow_ipc.table_to_ipc(value))
        if isinstance(value, pa.RecordBatch):
            return pb.ArrowValue(kind=pb.ARROW_KIND_RECORD_BATCH, ipc_stream=_arrow_ipc.batch_to_ipc(value))
        if isinstance(value, pa.Array):
            return pb.ArrowValue(kind=pb.ARROW_KIND_ARRAY, ipc_stream=_arrow_ipc.array_to_ipc(value))
    except CodecError as exc:
        raise CodecError(f"cannot encode {path}: {exc.reason}") from exc
    except (pa.ArrowException, ValueError, TypeError) as exc:
        raise CodecError(f"cannot encode {path} ({_type_name(value)}) as Arrow IPC: {exc}") from exc
    return None


def value_from_proto(message: pb.Value) -> object:
    """Decode a ``Value``; lists come back as ``list``, maps as ``dict``."""
    kind = message.WhichOneof("kind")
    if kind is None:
        raise CodecError("value has no kind set (empty or foreign message)")
    if kind == "null_value":
        return None
    if kind == "bool_value":
        return message.bool_value
    if kind == "int_value":
        return message.int_value
    if kind == "big_int_value":
        if not message.big_int_value:
            raise CodecError("big integer with no bytes")
        return int.from_bytes(message.big_int_value, "big", signed=True)
    if kind == "double_value":
        return message.double_value
    if kind == "string_value":
        return message.string_value
    if kind == "bytes_value":
        return message.bytes_value
    if kind == "list_value":
        return [value_from_proto(item) for item in message.list_value.items]
    if kind == "map_value":
        return {key: value_from_proto(item) for key, item in message.map_value.entries.items()}
    return _arrow_from_proto(message.arrow_value)


_ARROW_DECODERS = {
    pb.ARROW_KIND_TABLE: _arrow_ipc.table_from_ipc,
    pb.ARROW_KIND_RECORD_BATCH: _arrow_ipc.batch_from_ipc,
    pb.ARROW_KIND_ARRAY: _arrow_ipc.array_from_ipc,
    pb.ARROW_KIND_NDARRAY: _arrow_ipc.ndarray_from_ipc,
}


def _arrow_from_proto(message: pb.ArrowValue) -> object:
    decoder = _ARROW_DECODERS.get(message.kind)
    if decoder is None:
        raise CodecError(f"unknown Arrow value kind number {message.kind}")
    return decoder(message.ipc_stream)


def encode_value(value: object) -> bytes:
    """Serialize a value for a ``VALUE`` payload (see :func:`value_to_proto`)."""
    return value_to_proto(value).SerializeToString()


def decode_value(data: bytes) -> object:
    """Parse a ``VALUE`` payload; bytes that are not one raise ``CodecError``."""
    message = pb.Value()
    try:
        message.ParseFromString(data)
    except (DecodeError, RecursionError, ValueError) as exc:
        raise CodecError(f"payload of {len(data)} bytes is not an encoded value: {exc}") from exc
    return value_from_proto(message)


# ------------------------------------------------------------------ streaming Arrow values

_STREAMABLE_ARROW_KINDS = frozenset({pb.ARROW_KIND_TABLE, pb.ARROW_KIND_RECORD_BATCH})
_VALUE_ARROW_TAG = (10 << 3) | 2  # Value.arrow_value, length-delimited
_ARROW_KIND_TAG = (1 << 3) | 0  # ArrowValue.kind, varint
_ARROW_IPC_TAG = (2 << 3) | 2  # ArrowValue.ipc_stream, length-delimited


def arrow_stream_span(payload: memoryview) -> tuple[int, int]:
    """Where the Arrow IPC bytes of a VALUE payload holding a table or batch lie: (offset, length).

    Lets a receiver read a large table batch by batch straight from a memory
    map of the spilled payload, without parsing (and so copying) the whole
    protobuf. Only the few framing bytes are read, strictly: the payload must
    be exactly one ``arrow_value`` of a table or record batch, or this raises
    ``CodecError``.
    """
    size = len(payload)
    tag, pos = _varint(payload, 0)
    if tag != _VALUE_ARROW_TAG:
        raise CodecError("payload is not an Arrow table or record batch value")
    length, pos = _varint(payload, pos)
    if pos + length != size:
        raise CodecError(f"Arrow value framing announces {length} bytes where {size - pos} follow")
    kind: int | None = None
    span: tuple[int, int] | None = None
    while pos < size:
        tag, pos = _varint(payload, pos)
        if tag == _ARROW_KIND_TAG:
            kind, pos = _varint(payload, pos)
        elif tag == _ARROW_IPC_TAG:
            length, pos = _varint(payload, pos)
            if pos + length > size:
                raise CodecError("Arrow IPC bytes run past the end of the payload")
            span = (pos, length)
            pos += length
        else:
            raise CodecError(f"unexpected field (tag {tag}) in an Arrow value")
    if kind not in _STREAMABLE_ARROW_KINDS:
        raise CodecError(f"Arrow value of kind number {kind} cannot be read as a stream of batches")
    if span is None:
        raise CodecError("Arrow value without IPC bytes")
    return span


def _varint(data: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise CodecError("truncated or overlong varint in value framing")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _type_name(value: object) -> str:
    cls = type(value)
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"
