"""Paillier operations as pure Arrow kernels for ``mapInArrow``.

Each kernel is ``Iterator[RecordBatch] -> Iterator[RecordBatch]`` with its
parameters (the modulus ``n``, precisions, column names) bound by
``functools.partial``: plain integers and strings, so Spark ships them to
executors without ever serialising a key object or an obfuscator pool (each
partition builds its own pool, so no obfuscator can be used twice). Ciphertexts
are ``fixed_size_binary(ciphertext_width)`` columns, big-endian; element-wise
kernels pass every column they do not consume through unchanged.

Aggregating kernels (``sum_batches``, ``xtd_batches``) emit one partial
product per partition, even for an empty partition (the identity 1, i.e. the
deterministic encryption of 0), and :func:`merge_partials` multiplies the
partials of all partitions on the driver.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import pyarrow as pa
from gmpy2 import mpz

from fedspark.arrow_bridge import (
    ColumnViewError,
    column_view,
    fixed_binary_to_ints,
    ints_to_fixed_binary,
)
from fedspark.crypto._errors import EncodingOverflow
from fedspark.crypto._fixed_point import FixedPoint
from fedspark.crypto._obfuscators import DEFAULT_EXPECTED_USES, Exponent, ObfuscatorPool
from fedspark.crypto._paillier import PublicKey

DEFAULT_X_FRAC_BITS = 16
DEFAULT_MAX_X_BITS = 24

Batches = Iterator[pa.RecordBatch]


def quantise_features(
    x: npt.ArrayLike, x_frac_bits: int = DEFAULT_X_FRAC_BITS, max_bits: int = DEFAULT_MAX_X_BITS, *, name: str = "x"
) -> npt.NDArray[np.int64]:
    """Features as signed integers round(x·2^f) with |q| < 2^max_bits: the short exponents of X^T[[d]].

    A value that needs more bits raises :class:`EncodingOverflow` naming it,
    the range ±2^(max_bits − f) and the precision f: a longer exponent would
    silently cost more multiplications per term.
    """
    arr = np.asarray(x, dtype=np.float64)
    limit = 2.0 ** (max_bits - x_frac_bits)
    finite = np.isfinite(arr)
    scaled = np.rint(np.where(finite, arr, 0.0) * 2.0**x_frac_bits)
    bad = ~finite | (np.abs(scaled) >= 2.0**max_bits)
    if bad.any():
        raise EncodingOverflow(float(arr[bad].flat[0]), limit, x_frac_bits, what=f"feature '{name}' value")
    return scaled.astype(np.int64)


def encrypt_batches(
    batches: Batches,
    *,
    n: int,
    frac_bits: int,
    value: str = "value",
    out: str = "enc",
    mode: Exponent | str = Exponent.SHORT,
    obfuscator: str | None = None,
    expected_rows: int = DEFAULT_EXPECTED_USES,
) -> Batches:
    """Encode the float64 column ``value`` at ``frac_bits`` and encrypt it into ``out``.

    Obfuscators come from a pool private to this partition, or from the binary
    column ``obfuscator`` (made by :func:`obfuscator_batches`), which is consumed.
    """
    public_key = PublicKey.from_n(n)
    codec = FixedPoint(n, frac_bits)
    pool: ObfuscatorPool | None = None
    width = public_key.ciphertext_width
    for batch in batches:
        values = column_view(batch, value) if batch.num_rows else np.zeros(0)
        plain = codec.encode(values)
        if obfuscator is not None:
            obfuscators = [mpz(o) for o in _ciphertexts(batch, obfuscator)]
        else:
            if pool is None:
                pool = ObfuscatorPool(n, mode, expected_uses=max(expected_rows, batch.num_rows))
            obfuscators = pool.take(len(plain))
        enc = [public_key.encrypt_with(m, o) for m, o in zip(plain, obfuscators)]
        yield _replace(batch, [value] + ([obfuscator] if obfuscator else []), out, ints_to_fixed_binary(enc, width))


def obfuscator_batches(
    batches: Batches,
    *,
    n: int,
    mode: Exponent | str = Exponent.SHORT,
    out: str = "obfuscator",
    expected_rows: int = DEFAULT_EXPECTED_USES,
) -> Batches:
    """One fresh obfuscator per input row, in the binary column ``out`` (other columns kept).

    Lets executors generate obfuscators ahead of need; each row's value must be
    consumed by exactly one encryption (``encrypt_batches(obfuscator=...)``).
    """
    pool: ObfuscatorPool | None = None
    width = PublicKey.from_n(n).ciphertext_width
    for batch in batches:
        if pool is None and batch.num_rows:
            pool = ObfuscatorPool(n, mode, expected_uses=max(expected_rows, batch.num_rows))
        fresh = pool.generate(batch.num_rows) if pool is not None else []
        yield _replace(batch, [], out, ints_to_fixed_binary(fresh, width))


def add_batches(batches: Batches, *, n: int, left: str = "a", right: str = "b", out: str = "sum") -> Batches:
    """[[a]] ⊕ [[b]] row by row."""
    ns = mpz(n) ** 2
    width = PublicKey.from_n(n).ciphertext_width
    for batch in batches:
        a, b = _ciphertexts(batch, left), _ciphertexts(batch, right)
        summed = [mpz(x) * y % ns for x, y in zip(a, b)]
        yield _replace(batch, [left, right], out, ints_to_fixed_binary(summed, width))


def add_plain_batches(
    batches: Batches, *, n: int, frac_bits: int, cipher: str = "enc", plain: str = "value", out: str = "enc"
) -> Batches:
    """[[a]] ⊕ v row by row, v a float64 column encoded at the job's ``frac_bits``."""
    public_key = PublicKey.from_n(n)
    codec = FixedPoint(n, frac_bits)
    for batch in batches:
        cs = _ciphertexts(batch, cipher)
        ms = codec.encode(column_view(batch, plain) if batch.num_rows else np.zeros(0))
        summed = [public_key.add_plain(c, m) for c, m in zip(cs, ms)]
        yield _replace(batch, [cipher, plain], out, ints_to_fixed_binary(summed, public_key.ciphertext_width))


def mul_scalar_batches(
    batches: Batches, *, n: int, scalar: float, scalar_frac_bits: int, cipher: str = "enc", out: str = "enc"
) -> Batches:
    """[[a]] ⊗ k for one float scalar quantised at ``scalar_frac_bits``.

    The result carries frac_bits + scalar_frac_bits fractional bits; decode with both.
    """
    public_key = PublicKey.from_n(n)
    k = FixedPoint(n, scalar_frac_bits).quantise([scalar])[0]
    for batch in batches:
        cs = _ciphertexts(batch, cipher)
        scaled = [public_key.mul_plain(c, k) for c in cs]
        yield _replace(batch, [cipher], out, ints_to_fixed_binary(scaled, public_key.ciphertext_width))


def sum_batches(batches: Batches, *, n: int, cipher: str = "enc", out: str = "partial") -> Batches:
    """This partition's ⊕ of the column ``cipher``: one row, merged with :func:`merge_partials`."""
    public_key = PublicKey.from_n(n)
    acc = 1
    for batch in batches:
        if batch.num_rows:
            acc = public_key.add(acc, public_key.sum(_ciphertexts(batch, cipher)))
    yield pa.RecordBatch.from_arrays([ints_to_fixed_binary([acc], public_key.ciphertext_width)], names=[out])


def xtd_batches(
    batches: Batches,
    *,
    n: int,
    features: Sequence[str],
    cipher: str = "enc",
    x_frac_bits: int = DEFAULT_X_FRAC_BITS,
    max_bits: int = DEFAULT_MAX_X_BITS,
    out: str = "partial",
) -> Batches:
    """This partition's X^T[[d]]: rows (feature, Π_i [[d_i]]^{x_ij}) for every feature j.

    Float feature columns are quantised at ``x_frac_bits`` (|q| < 2^max_bits);
    integer columns are taken as already quantised and only range-checked.
    Each batch is one bucket multi-exponentiation per feature (``dot_many``);
    batches and partitions are joined by multiplying partial products.
    """
    public_key = PublicKey.from_n(n)
    partial = [1] * len(features)
    for batch in batches:
        if batch.num_rows == 0:
            continue
        xq = np.column_stack([_quantised_column(batch, name, x_frac_bits, max_bits) for name in features])
        enc = _ciphertexts(batch, cipher)
        for j, c in enumerate(public_key.dot_many(enc, xq)):
            partial[j] = public_key.add(partial[j], c)
    yield pa.RecordBatch.from_arrays(
        [pa.array(range(len(features)), pa.int32()), ints_to_fixed_binary(partial, public_key.ciphertext_width)],
        names=["feature", out],
    )


def merge_partials(
    table: pa.Table | pa.RecordBatch, *, n: int, key: str | None = "feature", value: str = "partial", size: int | None = None
) -> list[int]:
    """Multiply the per-partition partials of an aggregating kernel, per ``key`` (0..size−1).

    With ``key=None`` all rows are multiplied into one ciphertext (``sum_batches``).
    """
    public_key = PublicKey.from_n(n)
    partials = _ciphertexts(table, value)
    if key is None:
        return [public_key.sum(partials)]
    keys = [int(j) for j in table.column(key).to_pylist() if j is not None]
    merged = [1] * (size if size is not None else (max(keys) + 1 if keys else 0))
    for j, c in zip(keys, partials):
        merged[j] = public_key.add(merged[j], c)
    return merged


def _quantised_column(batch: pa.RecordBatch, name: str, x_frac_bits: int, max_bits: int) -> npt.NDArray[np.int64]:
    """One feature column as short signed exponents (floats quantised, integers checked)."""
    column = batch.column(name)
    if pa.types.is_integer(column.type):
        if column.null_count:
            raise ColumnViewError(name, f"it has {column.null_count} null value(s); fill or reject them first")
        q = column.to_numpy(zero_copy_only=False).astype(np.int64)
        bad = np.abs(q) >= 2**max_bits
        if bad.any():
            value = float(q[bad][0]) / 2.0**x_frac_bits
            raise EncodingOverflow(value, 2.0 ** (max_bits - x_frac_bits), x_frac_bits, what=f"feature '{name}' value")
        return q
    return quantise_features(column_view(batch, name), x_frac_bits, max_bits, name=name)


def _ciphertexts(data: pa.RecordBatch | pa.Table, name: str) -> list[int]:
    """A ciphertext column as integers (fixed-width, or ``binary`` as Spark returns it)."""
    return fixed_binary_to_ints(cast("pa.FixedSizeBinaryArray", data.column(name)))


def _replace(batch: pa.RecordBatch, consumed: Sequence[str], name: str, column: pa.Array[Any]) -> pa.RecordBatch:
    """The batch without its ``consumed`` columns, plus ``column`` as ``name``."""
    keep = [i for i, field in enumerate(batch.schema) if field.name not in consumed and field.name != name]
    arrays = [batch.column(i) for i in keep] + [column]
    names = [batch.schema.field(i).name for i in keep] + [name]
    return pa.RecordBatch.from_arrays(arrays, names=names)
