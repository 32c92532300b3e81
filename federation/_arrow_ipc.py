"""Arrow IPC stream bytes for tables, batches, arrays and numpy arrays.

Arrow IPC is a data-only format: decoding it allocates buffers and never runs
code, which is why every array-like value crosses the wire this way (ciphertext
columns included, as ``fixed_size_binary`` of the key's width). numpy arrays
travel as a one-column batch of the flattened array, with the shape and dtype
in the schema metadata, so reshaping on arrival needs no trust in the sender
beyond checking that the numbers fit together.
"""

from __future__ import annotations

import json
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


def _open(data: bytes, what: str) -> pa.ipc.RecordBatchStreamReader:
    try:
        return pa.ipc.open_stream(pa.py_buffer(data))
    except (pa.ArrowException, ValueError, OSError) as exc:
        raise CodecError(f"invalid Arrow IPC stream for {what}: {exc}") from exc


def _read_batches(data: bytes, what: str) -> tuple[pa.Schema, list[pa.RecordBatch]]:
    reader = _open(data, what)
    try:
        batches = list(reader)
    except (pa.ArrowException, ValueError, OSError) as exc:
        raise CodecError(f"invalid Arrow IPC stream for {what}: {exc}") from exc
    return reader.schema, batches


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
    """Rebuild a writable array with the sender's shape and dtype, after checking both."""
    batch = batch_from_ipc(data)
    metadata = batch.schema.metadata or {}
    if batch.num_columns != 1 or _SHAPE_KEY not in metadata or _DTYPE_KEY not in metadata:
        raise CodecError("numpy array payload lacks its single column or shape/dtype metadata")
    try:
        shape = json.loads(metadata[_SHAPE_KEY])
        dtype = np.dtype(metadata[_DTYPE_KEY].decode("ascii"))
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise CodecError(f"numpy array payload has unreadable shape/dtype metadata: {exc}") from exc
    if dtype.kind not in _NDARRAY_KINDS:
        raise CodecError(f"numpy array payload declares unsupported dtype {dtype}")
    if not isinstance(shape, list) or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise CodecError(f"numpy array payload declares invalid shape {shape!r}")
    size = 1
    for n in shape:
        size *= n
    column = batch.column(0)
    if size != len(column) or column.null_count:
        raise CodecError(
            f"numpy array payload has {len(column)} values ({column.null_count} null) "
            f"for shape {tuple(shape)}"
        )
    flat = column.to_numpy(zero_copy_only=False)
    # IPC buffers are read-only; receivers update arrays in place, so hand out a copy.
    return np.array(flat, dtype=dtype, copy=True).reshape(shape)
