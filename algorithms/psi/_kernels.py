"""The per-id work of PSI as pure Arrow kernels (run by ``mapInArrow``).

Each kernel maps record batches to record batches and touches no session,
network or global state: the salt and scalar arrive bound with
``functools.partial``. Blinded values are ``fixed_size_binary(32)`` columns
(one contiguous buffer, no per-value framing), which the Arrow bridge hands to
Spark as ``binary``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import pyarrow as pa

from fedspark.algorithms.psi._errors import PsiProtocolError
from fedspark.algorithms.psi._group import ELEMENT_BYTES, blind, hash_to_group
from fedspark.arrow_bridge import BinaryWidthError, as_fixed_binary

ELEMENT_TYPE = pa.binary(ELEMENT_BYTES)


def hash_and_blind(
    batches: Iterator[pa.RecordBatch], *, salt: bytes, scalar: bytes, source: str, target: str
) -> Iterator[pa.RecordBatch]:
    """Replace the canonical id column ``source`` (strings) by ``target`` = H(salt || id)^scalar.

    Other columns pass through untouched, so the party keeps its own id next
    to the blinded value (and only the blinded column is ever sent). A null id
    is refused: it would hash like an empty string and match another party's.
    """
    for batch in batches:
        column = batch.column(source)
        if column.null_count:
            raise ValueError(f"PSI: column {source!r} holds a null id; ids are checked for nulls before blinding")
        ids = cast(list[str], column.to_pylist())
        data = b"".join([blind(scalar, hash_to_group(salt, value.encode("utf-8"))) for value in ids])
        yield _replace(batch, source, target, _elements(data, len(ids)))


def reblind(
    batches: Iterator[pa.RecordBatch], *, scalar: bytes, source: str, target: str, origin: str
) -> Iterator[pa.RecordBatch]:
    """Append ``target`` = ``source``^scalar to the batch (``source``: a peer's blinded values).

    Keeps ``source`` so the reply pairs each received value with its
    re-blinded form: the peer matches replies by the value it sent, never by a
    row position that could reveal its table's order. A value that is not a
    32-byte ristretto255 element raises :class:`PsiProtocolError` naming ``origin``.
    """
    for batch in batches:
        try:
            received = as_fixed_binary(batch.column(source), ELEMENT_BYTES)
        except BinaryWidthError as exc:
            raise PsiProtocolError(origin, f"sent a value that is not a {ELEMENT_BYTES}-byte group element: {exc}") from None
        count = len(received)
        buffer = received.buffers()[1]
        view = memoryview(cast(Any, buffer))[received.offset * ELEMENT_BYTES :] if count else memoryview(b"")
        try:
            data = b"".join(
                [blind(scalar, bytes(view[i : i + ELEMENT_BYTES])) for i in range(0, count * ELEMENT_BYTES, ELEMENT_BYTES)]
            )
        except ValueError:
            raise PsiProtocolError(origin, "sent bytes that are not a valid ristretto255 element") from None
        columns = [*batch.columns, _elements(data, count)]
        yield pa.RecordBatch.from_arrays(columns, names=[*batch.schema.names, target])


def _elements(data: bytes, count: int) -> pa.FixedSizeBinaryArray:
    array = pa.FixedSizeBinaryArray.from_buffers(ELEMENT_TYPE, count, [None, pa.py_buffer(data)])
    return cast(pa.FixedSizeBinaryArray, array)


def _replace(batch: pa.RecordBatch, source: str, target: str, values: pa.Array[Any]) -> pa.RecordBatch:
    names = batch.schema.names
    index = names.index(source)
    columns = list(batch.columns)
    columns[index] = values
    return pa.RecordBatch.from_arrays(columns, names=[*names[:index], target, *names[index + 1 :]])
