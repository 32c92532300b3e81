"""Big unsigned integers as fixed-width big-endian binary columns.

Paillier ciphertexts are integers below n^2 (4096 bits for a 2048-bit key).
fedspark stores them as Arrow ``fixed_size_binary(width)`` values, width =
bytes of n^2: one contiguous buffer of ``len * width`` bytes, no per-value
offsets, so a batch of ciphertexts goes on the wire (Arrow IPC) or into Spark
without per-value framing, and it never goes through pickle (unpickling bytes
from another organisation would run their code). Big-endian matches
``int.to_bytes(width, "big")`` and phe's own serialisation of integers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, SupportsInt, TypeAlias, cast

import numpy as np
import pyarrow as pa

from fedspark.arrow_bridge._errors import BinaryWidthError

BinaryLike: TypeAlias = "pa.FixedSizeBinaryArray | pa.BinaryArray | pa.LargeBinaryArray | pa.ChunkedArray[Any]"
"""What the readers accept: Spark hands fixed-width values back as ``binary``."""


def ints_to_fixed_binary(values: Sequence[SupportsInt], width: int) -> pa.FixedSizeBinaryArray:
    """Pack non-negative integers into one ``fixed_size_binary(width)`` array.

    Encodes every value with ``int.to_bytes`` and joins them once into the
    array's single data buffer (``from_buffers``; no per-value Arrow objects).
    A value that needs more than ``width`` bytes, or is negative, raises
    :class:`BinaryWidthError` naming its position: silently truncating a
    ciphertext would decrypt to garbage on the other side.
    """
    if width <= 0:
        raise BinaryWidthError(None, width, "width must be a positive number of bytes")
    try:
        data = b"".join([int(value).to_bytes(width, "big") for value in values])
    except OverflowError:
        raise _first_misfit(values, width) from None
    array = pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), len(values), [None, pa.py_buffer(data)])
    return cast(pa.FixedSizeBinaryArray, array)


def fixed_binary_to_ints(array: BinaryLike) -> list[int]:
    """Decode fixed-width big-endian values back to Python integers.

    Accepts ``fixed_size_binary`` arrays and also ``binary`` arrays whose
    values all have one length, because that is how Spark returns such a
    column. Reads slices of the data buffer through a ``memoryview`` (no copy
    of the buffer). Null values raise :class:`BinaryWidthError`: a missing
    ciphertext is a protocol failure, not zero.
    """
    if isinstance(array, pa.ChunkedArray):
        out: list[int] = []
        for chunk in array.chunks:
            out.extend(fixed_binary_to_ints(cast(BinaryLike, chunk)))
        return out
    fixed = as_fixed_binary(array)
    width = fixed.type.byte_width
    count = len(fixed)
    data = fixed.buffers()[1]
    if data is None or count == 0:
        return []
    start = fixed.offset * width
    view = memoryview(data)[start : start + count * width]
    from_bytes = int.from_bytes
    return [from_bytes(view[i : i + width], "big") for i in range(0, count * width, width)]


def as_fixed_binary(
    array: pa.FixedSizeBinaryArray | pa.BinaryArray | pa.LargeBinaryArray, width: int | None = None
) -> pa.FixedSizeBinaryArray:
    """View a binary column whose values all have one length as ``fixed_size_binary``.

    Zero-copy: a variable-width array with equal lengths already stores its
    values back to back, so only the type changes. ``width`` (optional) is
    checked against the actual length. Raises :class:`BinaryWidthError` on
    nulls or on values of different lengths, naming the first one.
    """
    if array.null_count:
        first_null = int(np.flatnonzero(array.is_null().to_numpy(zero_copy_only=False))[0])
        raise BinaryWidthError(first_null, width or 0, "is null; fixed-width values cannot be missing")
    if pa.types.is_fixed_size_binary(array.type):
        actual = array.type.byte_width
        if width is not None and actual != width:
            raise BinaryWidthError(None, width, f"the column holds {actual}-byte values")
        return array
    if not (pa.types.is_binary(array.type) or pa.types.is_large_binary(array.type)):
        raise BinaryWidthError(None, width or 0, f"expected a binary column, got {array.type}")
    count = len(array)
    offset_type = np.int64 if pa.types.is_large_binary(array.type) else np.int32
    offsets_buffer = array.buffers()[1]
    if count == 0 or offsets_buffer is None:
        return pa.array([], type=pa.binary(width or 1))  # type: ignore[return-value]
    offsets = np.frombuffer(cast(Any, offsets_buffer), dtype=offset_type)[array.offset : array.offset + count + 1]
    lengths = np.diff(offsets)
    expected = int(lengths[0]) if width is None else width
    wrong = np.flatnonzero(lengths != expected)
    if wrong.size or expected <= 0:
        index = int(wrong[0]) if wrong.size else 0
        raise BinaryWidthError(index, expected, f"has {int(lengths[index])} bytes")
    data = array.buffers()[2]
    if data is None:
        raise BinaryWidthError(0, expected, "the column has no data buffer")
    values = data.slice(int(offsets[0]), count * expected)
    fixed = pa.FixedSizeBinaryArray.from_buffers(pa.binary(expected), count, [None, values])
    return cast(pa.FixedSizeBinaryArray, fixed)


def fixed_to_variable_binary(array: pa.FixedSizeBinaryArray) -> pa.Array[Any]:
    """Retype fixed-width values as ``binary`` for Spark, sharing the value bytes.

    Only an offsets buffer (4 bytes per value) is built. Arrays with nulls or
    more than 2 GiB of values take Arrow's copying cast instead.
    """
    width = array.type.byte_width
    count = len(array)
    data = array.buffers()[1]
    if array.null_count or data is None or (count + 1) * width >= 2**31:
        return array.cast(pa.binary() if (count + 1) * width < 2**31 else pa.large_binary())
    offsets = np.arange(0, (count + 1) * width, width, dtype=np.int32)
    values = data.slice(array.offset * width, count * width)
    return pa.Array.from_buffers(pa.binary(), count, [None, pa.py_buffer(cast(Any, offsets)), values])


def _first_misfit(values: Sequence[SupportsInt], width: int) -> BinaryWidthError:
    """Find and describe the first value that ``int.to_bytes`` refused."""
    limit = 1 << (8 * width)
    for index, value in enumerate(values):
        number = int(value)
        if number < 0:
            return BinaryWidthError(index, width, "is negative; only unsigned integers are stored")
        if number >= limit:
            needed = (number.bit_length() + 7) // 8
            return BinaryWidthError(index, width, f"needs {needed} bytes (does the key size match the width?)")
    return BinaryWidthError(None, width, "a value could not be encoded")
