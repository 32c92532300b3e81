"""Arrow IPC stream bytes for tables, batches, arrays and numpy arrays.

Arrow IPC is a data-only format: decoding it allocates buffers and never runs
code, which is why every array-like value crosses the wire this way (ciphertext
columns included, as ``fixed_size_binary`` of the key's width). numpy arrays
travel as a one-column batch of the flattened array, with the shape and dtype
in the schema metadata, so reshaping on arrival needs no trust in the sender
beyond checking that the numbers fit together.

Reading is where the peer's bytes are checked, before anything uses them
(see :func:`open_stream` and :func:`checked_batch`): IPC *compression* is
refused outright, since fedspark never writes it and a few kilobytes of zstd
can announce gigabytes that Arrow would allocate and inflate; every batch is
then fully validated, because Arrow's reader checks only buffer sizes, and an
offset pointing past its data buffer is an out-of-bounds read in whatever
touches the value next (numpy, Spark's JVM, a kernel).
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa

from fedspark.federation._errors import CodecError

_SHAPE_KEY = b"fedspark.ndarray.shape"
_DTYPE_KEY = b"fedspark.ndarray.dtype"
_NDARRAY_COLUMN = "data"
_ARRAY_COLUMN = "values"
# bool, signed and unsigned integers, floats: what Arrow maps one-to-one.
_NDARRAY_KINDS = frozenset("biuf")


def _write(schema: pa.Schema, batches: list[pa.RecordBatch]) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema) as writer:
        for batch in batches:
            writer.write_batch(batch)
    return bytes(sink.getvalue().to_pybytes())


def _read_batches(data: bytes, what: str) -> tuple[pa.Schema, list[pa.RecordBatch]]:
    reader = open_stream(data, what)
    return reader.schema, list(read_batches(reader, what))


# ------------------------------------------------------------------ reading a peer's stream

_CONTINUATION = 0xFFFFFFFF
_SCHEMA, _DICTIONARY_BATCH, _RECORD_BATCH = 1, 2, 3
"""``MessageHeader`` union types of ``Message.fbs`` (tensors, 4 and 5, never travel)."""
_EXPERIMENTAL_COMPRESSION = b"ARROW:experimental_compression"
"""Message metadata key through which Arrow still honours pre-1.0 (V4) compressed bodies."""


def open_stream(source: pa.NativeFile | pa.Buffer | bytes, what: str) -> pa.ipc.RecordBatchStreamReader:
    """A reader over a peer's IPC stream, opened only after every message's framing passed :func:`check_messages`.

    ``source`` is bytes, a buffer, or a seekable file (a spilled payload, a
    partition file): the check walks message headers only (seeking past the
    bodies), then the reader starts again from the same position. ``what``
    names the value in the ``CodecError`` ("a table").
    """
    if not isinstance(source, pa.NativeFile):
        source = pa.BufferReader(source if isinstance(source, pa.Buffer) else pa.py_buffer(source))
    check_messages(source, what)
    try:
        return pa.ipc.open_stream(source)
    except (pa.ArrowException, ValueError, OSError) as exc:
        raise CodecError(f"invalid Arrow IPC stream for {what}: {exc}") from exc


def read_batches(reader: pa.ipc.RecordBatchStreamReader, what: str) -> Iterator[pa.RecordBatch]:
    """The reader's batches, each fully validated (:func:`checked_batch`); a bad one is a ``CodecError``."""
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except (pa.ArrowException, ValueError, OSError) as exc:
            raise CodecError(f"invalid Arrow IPC stream for {what}: {exc}") from exc
        yield checked_batch(batch, what)


def checked_batch(batch: pa.RecordBatch, what: str) -> pa.RecordBatch:
    """``batch`` after Arrow's full validation; anything inconsistent is a ``CodecError``.

    Arrow's IPC reader checks that buffers are big enough, not what they hold:
    an offset past the end of its data, a dictionary index past the
    dictionary, or invalid UTF-8 would only surface as a wrong read (or a
    crash) in the code that uses the value. Full validation is linear in the
    batch's size, which is already bounded by the message limit.
    """
    try:
        batch.validate(full=True)
    except (pa.ArrowException, ValueError) as exc:
        raise CodecError(f"invalid Arrow batch in {what}: {exc}") from exc
    return batch


def check_messages(source: pa.NativeFile, what: str) -> None:
    """Walk the stream's message headers from the current position and refuse compressed or foreign messages.

    Compressed record batches are refused rather than capped: fedspark never
    compresses IPC (values and partitions are mostly ciphertexts, which do not
    compress), and a compressed body states its own inflated size, which Arrow
    allocates before it can tell the sender lied. Messages other than schemas
    and (dictionary) record batches are refused too. Framing errors are left
    to Arrow's reader unless they would make this walk read past the end.
    The position is restored afterwards.
    """
    start = source.tell()
    end = source.size()
    pos = start
    try:
        while end - pos >= 4:
            source.seek(pos)
            (marker,) = struct.unpack("<I", source.read(4))
            prefix = 4
            if marker == _CONTINUATION:
                if end - pos < 8:
                    break
                (length,) = struct.unpack("<i", source.read(4))
                prefix = 8
            else:  # pre-0.15 framing: the first word is the length
                (length,) = struct.unpack("<i", struct.pack("<I", marker))
            if length == 0:  # end-of-stream marker: Arrow reads no further
                break
            if length < 0 or length > end - pos - prefix:
                raise CodecError(f"invalid Arrow IPC stream for {what}: a message header of {length} bytes "
                                 f"at offset {pos - start} runs past the end of the stream")
            body = _message_body_length(source.read(length), what)
            pos += prefix + length + body
            if pos > end:
                raise CodecError(f"invalid Arrow IPC stream for {what}: a message body of {body} bytes "
                                 "runs past the end of the stream")
    finally:
        source.seek(start)


def _message_body_length(metadata: bytes, what: str) -> int:
    """Check one ``Message`` flatbuffer (``Message.fbs``) and return its body length."""
    try:
        fb = _Flatbuffer(metadata)
        message = fb.root()
        kind = fb.scalar(message, 1, "<B")
        body = fb.scalar(message, 3, "<q")
        if kind in (_RECORD_BATCH, _DICTIONARY_BATCH):
            batch = fb.table(message, 2)
            if batch is not None and kind == _DICTIONARY_BATCH:
                batch = fb.table(batch, 1)
            if batch is not None and fb.has(batch, 3):  # RecordBatch.compression
                raise CodecError(f"compressed Arrow IPC for {what} is refused: fedspark never compresses IPC, "
                                 "and a compressed body announces its own inflated size")
            if _EXPERIMENTAL_COMPRESSION in fb.keys(message, 4):  # Message.custom_metadata
                raise CodecError(f"compressed Arrow IPC for {what} is refused (experimental compression marker)")
        elif kind != _SCHEMA:
            raise CodecError(f"Arrow IPC message of type {kind} in {what}: only schemas and record batches travel")
    except (struct.error, IndexError) as exc:
        raise CodecError(f"invalid Arrow IPC message header in {what}: {exc}") from exc
    if body < 0:
        raise CodecError(f"invalid Arrow IPC message header in {what}: negative body length {body}")
    return int(body)


class _Flatbuffer:
    """Just enough of the flatbuffers format to read a few fields of a peer's message header, bounds-checked.

    pyarrow exposes a message's header only as flatbuffer bytes; this reads
    tables, scalars, offsets and string vectors and raises ``struct.error``
    for any position outside the bytes (a crafted header must not make the
    check itself read somewhere else).
    """

    def __init__(self, data: bytes) -> None:
        self._data = data

    def _unpack(self, fmt: str, pos: int) -> int:
        if pos < 0 or pos + struct.calcsize(fmt) > len(self._data):
            raise struct.error(f"offset {pos} outside the {len(self._data)}-byte header")
        return int(struct.unpack_from(fmt, self._data, pos)[0])

    def root(self) -> int:
        return self._unpack("<I", 0)

    def _field(self, table: int, index: int) -> int:
        """Absolute position of field ``index`` of the table at ``table``, or 0 when absent."""
        vtable = table - self._unpack("<i", table)
        slot = 4 + 2 * index
        if slot + 2 > self._unpack("<H", vtable):
            return 0
        offset = self._unpack("<H", vtable + slot)
        return table + offset if offset else 0

    def has(self, table: int, index: int) -> bool:
        return self._field(table, index) != 0

    def scalar(self, table: int, index: int, fmt: str) -> int:
        pos = self._field(table, index)
        return self._unpack(fmt, pos) if pos else 0

    def _deref(self, pos: int) -> int:
        return pos + self._unpack("<I", pos)

    def table(self, table: int, index: int) -> int | None:
        pos = self._field(table, index)
        return self._deref(pos) if pos else None

    def keys(self, table: int, index: int) -> list[bytes]:
        """The keys of a ``[KeyValue]`` field (empty when absent)."""
        pos = self._field(table, index)
        if not pos:
            return []
        vector = self._deref(pos)
        count = self._unpack("<I", vector)
        if vector + 4 + 4 * count > len(self._data):
            raise struct.error(f"a vector of {count} entries runs past the header")
        keys = []
        for i in range(count):
            entry = self._deref(vector + 4 + 4 * i)
            key = self._field(entry, 0)
            if key:
                string = self._deref(key)
                size = self._unpack("<I", string)
                if string + 4 + size > len(self._data):
                    raise struct.error("a string runs past the header")
                keys.append(self._data[string + 4 : string + 4 + size])
        return keys


# ------------------------------------------------------------------ values


def table_to_ipc(table: pa.Table) -> bytes:
    return _write(table.schema, table.to_batches())


def table_from_ipc(data: bytes) -> pa.Table:
    schema, batches = _read_batches(data, "a table")
    return pa.Table.from_batches(batches, schema=schema)


def batch_to_ipc(batch: pa.RecordBatch) -> bytes:
    return _write(batch.schema, [batch])


def batch_from_ipc(data: bytes) -> pa.RecordBatch:
    _, batches = _read_batches(data, "a record batch")
    if len(batches) != 1:
        raise CodecError(f"a record batch must travel as exactly one batch, got {len(batches)}")
    return batches[0]


def array_to_ipc(array: pa.Array[Any]) -> bytes:
    batch = pa.RecordBatch.from_arrays([array], names=[_ARRAY_COLUMN])
    return batch_to_ipc(batch)


def array_from_ipc(data: bytes) -> pa.Array[Any]:
    batch = batch_from_ipc(data)
    if batch.num_columns != 1:
        raise CodecError(f"an array must travel as one column, got {batch.num_columns}")
    return batch.column(0)


def ndarray_to_ipc(array: np.ndarray[Any, Any]) -> bytes:
    """Encode a bool/int/float array of any shape; other dtypes raise ``CodecError``.

    Object, string, complex and datetime arrays are refused rather than
    converted: each has a lossy or ambiguous Arrow form, and object arrays are
    how pickling sneaks back in.
    """
    if array.dtype.kind not in _NDARRAY_KINDS:
        raise CodecError(
            f"cannot encode numpy array of dtype {array.dtype}: only bool, integer and "
            "float arrays travel (use a pyarrow Table for other columns)"
        )
    native = array.astype(array.dtype.newbyteorder("="), copy=False)
    flat = np.ascontiguousarray(native).reshape(-1)
    column = pa.array(flat)
    metadata: dict[bytes | str, bytes | str] = {_SHAPE_KEY: json.dumps(list(array.shape)).encode(), _DTYPE_KEY: native.dtype.str.encode()}
    schema = pa.schema([pa.field(_NDARRAY_COLUMN, column.type)], metadata=metadata)
    return _write(schema, [pa.RecordBatch.from_arrays([column], schema=schema)])


def ndarray_from_ipc(data: bytes) -> np.ndarray[Any, Any]:
    """Rebuild a writable array with the sender's shape and dtype, after checking both against the column.

    The metadata is the sender's claim and the column is what it shipped: the
    dtype must be one that travels and the very type Arrow gives the column,
    so a peer cannot have ``float64`` values silently cast to ``int8`` (or
    the reverse) on arrival; the shape must be a plain list of dimensions
    whose product is the column's length.
    """
    batch = batch_from_ipc(data)
    metadata = batch.schema.metadata or {}
    if batch.num_columns != 1 or _SHAPE_KEY not in metadata or _DTYPE_KEY not in metadata:
        raise CodecError("numpy array payload lacks its single column or shape/dtype metadata")
    dtype = _NDARRAY_DTYPES.get(metadata[_DTYPE_KEY])
    if dtype is None:
        raise CodecError(f"numpy array payload declares unsupported dtype {metadata[_DTYPE_KEY][:32]!r}")
    shape = _parse_shape(metadata[_SHAPE_KEY])
    column = batch.column(0)
    expected = pa.from_numpy_dtype(dtype)
    if column.type != expected:
        raise CodecError(
            f"numpy array payload declares dtype {dtype} (Arrow {expected}) but its column holds {column.type}"
        )
    size = 1
    for n in shape:
        size *= n
    if size != len(column) or column.null_count:
        raise CodecError(
            f"numpy array payload has {len(column)} values ({column.null_count} null) "
            f"for shape {tuple(shape)}"
        )
    flat = column.to_numpy(zero_copy_only=False)
    try:
        # IPC buffers are read-only; receivers update arrays in place, so hand out a copy.
        return np.array(flat, dtype=dtype, copy=True).reshape(shape)
    except ValueError as exc:  # e.g. an empty array with a dimension beyond what numpy indexes
        raise CodecError(f"numpy array payload declares shape {tuple(shape)} numpy cannot build: {exc}") from exc


_NDARRAY_DTYPES: dict[bytes, np.dtype[Any]] = {
    ordered.str.encode(): ordered
    for dtype in map(np.dtype, (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16,
                                np.uint32, np.uint64, np.float16, np.float32, np.float64))
    for ordered in (dtype.newbyteorder("<"), dtype.newbyteorder(">"))
}
"""The dtype strings a sender may declare (``dtype.str``, either byte order): exactly what ``ndarray_to_ipc`` writes."""

_MAX_NDIM = 32
"""numpy's own limit on older versions (64 on numpy 2); deeper shapes are refused, not attempted."""
_SHAPE = re.compile(rb"\[\s*(?:\d{1,19}\s*(?:,\s*\d{1,19}\s*)*)?\]")


def _parse_shape(text: bytes) -> list[int]:
    """The declared shape: a flat JSON list of at most ``_MAX_NDIM`` non-negative integers, nothing else.

    Matched before parsing, so nested lists (a deep one is a ``RecursionError``
    in ``json``), booleans and floats never reach numpy.
    """
    if len(text) > 1024 or _SHAPE.fullmatch(text) is None:
        raise CodecError(f"numpy array payload declares invalid shape {text[:64]!r}")
    shape = [int(n) for n in json.loads(text)]
    if len(shape) > _MAX_NDIM:
        raise CodecError(f"numpy array payload declares {len(shape)} dimensions, more than {_MAX_NDIM}")
    return shape
