"""Arrow kernels against plain math: decrypt the outputs and compare."""

from __future__ import annotations

import functools

import numpy as np
import pyarrow as pa
import pytest

from fedspark.arrow_bridge import (
    BinaryWidthError,
    ColumnViewError,
    fixed_binary_to_ints,
    ints_to_fixed_binary,
)
from fedspark.crypto import (
    EncodingOverflow,
    FixedPoint,
    add_batches,
    add_plain_batches,
    encrypt_batches,
    merge_partials,
    mul_scalar_batches,
    obfuscator_batches,
    quantise_features,
    sum_batches,
    xtd_batches,
)

FRAC = 24


def _decode(private, column, frac_bits=FRAC):
    codec = FixedPoint(private.public_key.n, frac_bits)
    return codec.decode(private.decrypt_many(fixed_binary_to_ints(column)))


def _enc_column(public, values):
    codec = FixedPoint(public.n, FRAC)
    return ints_to_fixed_binary(public.encrypt_many(codec.encode(values)), public.ciphertext_width)


def test_encrypt_kernel_keeps_other_columns(keys512):
    public, private = keys512
    batch = pa.record_batch({"row": pa.array([3, 1, 2], pa.int64()), "value": [0.5, -1.25, 0.0]})
    empty = batch.slice(0, 0)
    kernel = functools.partial(encrypt_batches, n=public.n, frac_bits=FRAC)
    out = list(kernel(iter([batch, empty])))
    assert [b.num_rows for b in out] == [3, 0]
    assert out[0].schema.names == ["row", "enc"] == out[1].schema.names
    assert out[0].schema.field("enc").type == pa.binary(public.ciphertext_width)
    assert out[0].column("row").to_pylist() == [3, 1, 2]
    np.testing.assert_array_equal(_decode(private, out[0].column("enc")), [0.5, -1.25, 0.0])
    assert list(kernel(iter([]))) == []


def test_encrypt_kernel_refuses_nulls_by_column_name(keys512):
    public, _ = keys512
    batch = pa.record_batch({"value": pa.array([1.0, None], pa.float64())})
    with pytest.raises(ColumnViewError, match="'value'.*null"):
        list(encrypt_batches(iter([batch]), n=public.n, frac_bits=FRAC))


def test_obfuscators_made_by_one_kernel_feed_the_encryption(keys512):
    public, private = keys512
    batch = pa.record_batch({"row": [0, 1, 2, 3], "value": [1.0, 2.0, 3.0, 4.0]})
    with_obf = next(obfuscator_batches(iter([batch]), n=public.n))
    assert with_obf.schema.names == ["row", "value", "obfuscator"]
    assert len(set(fixed_binary_to_ints(with_obf.column("obfuscator")))) == 4
    out = next(encrypt_batches(iter([with_obf]), n=public.n, frac_bits=FRAC, obfuscator="obfuscator"))
    assert out.schema.names == ["row", "enc"]
    np.testing.assert_array_equal(_decode(private, out.column("enc")), [1.0, 2.0, 3.0, 4.0])
    assert [b.num_rows for b in obfuscator_batches(iter([batch.slice(0, 0)]), n=public.n)] == [0]


def test_elementwise_kernels_match_plain_math(keys512):
    public, private = keys512
    a, b = np.array([1.5, -2.0, 0.25]), np.array([-0.5, 4.0, 0.0])
    batch = pa.record_batch({"id": ["x", "y", "z"], "a": _enc_column(public, a), "b": _enc_column(public, b)})
    summed = next(add_batches(iter([batch]), n=public.n))
    assert summed.schema.names == ["id", "sum"]
    np.testing.assert_array_equal(_decode(private, summed.column("sum")), a + b)

    plain = pa.record_batch({"enc": _enc_column(public, a), "value": b})
    shifted = next(add_plain_batches(iter([plain]), n=public.n, frac_bits=FRAC))
    np.testing.assert_array_equal(_decode(private, shifted.column("enc")), a + b)

    scaled = next(mul_scalar_batches(iter([plain]), n=public.n, scalar=-3.5, scalar_frac_bits=8))
    assert scaled.schema.names == ["value", "enc"]
    np.testing.assert_array_equal(_decode(private, scaled.column("enc"), FRAC + 8), a * -3.5)


def test_elementwise_kernels_pass_empty_batches_and_refuse_null_ciphertexts(keys512):
    public, _ = keys512
    empty = pa.record_batch({"a": _enc_column(public, []), "b": _enc_column(public, [])})
    assert next(add_batches(iter([empty]), n=public.n)).num_rows == 0
    null = pa.record_batch({"a": pa.array([None], pa.binary(public.ciphertext_width)), "b": _enc_column(public, [1.0])})
    with pytest.raises(BinaryWidthError, match="null"):
        list(add_batches(iter([null]), n=public.n))


def test_sum_kernel_merges_across_partitions(keys512):
    public, private = keys512
    parts = [[1.0, 2.0], [], [-0.5]]
    partials = [
        next(sum_batches(iter([pa.record_batch({"enc": _enc_column(public, v)})]), n=public.n)) for v in parts
    ]
    partials.append(next(sum_batches(iter([]), n=public.n)))  # an empty partition emits the identity
    table = pa.Table.from_batches(partials)
    (total,) = merge_partials(table, n=public.n, key=None)
    assert FixedPoint(public.n, FRAC).decode([private.decrypt(total)])[0] == 2.5


def test_xtd_kernel_matches_plain_gradient(keys512):
    public, private = keys512
    rng = np.random.default_rng(11)
    x = rng.uniform(-4, 4, size=(40, 3))
    x[7, :] = 0.0  # a zero row
    x[:, 1] = -np.abs(x[:, 1])  # an all-negative feature
    d = rng.uniform(-1, 1, size=40)
    xq_int = quantise_features(x[:, 2], 16)  # an already quantised integer column
    columns = {"f0": x[:, 0], "f1": x[:, 1], "f2": pa.array(xq_int, pa.int64()), "enc": _enc_column(public, d)}
    table = pa.table(columns)
    batches = table.to_batches(max_chunksize=15)
    kernel = functools.partial(xtd_batches, n=public.n, features=["f0", "f1", "f2"], x_frac_bits=16)
    partials = [next(kernel(iter(batches[:2]))), next(kernel(iter(batches[2:] + [batches[0].slice(0, 0)])))]
    merged = merge_partials(pa.Table.from_batches(partials), n=public.n)
    got = FixedPoint(public.n, FRAC).decode(private.decrypt_many(merged), frac_bits=FRAC + 16)
    dq = np.rint(d * 2**FRAC) / 2**FRAC
    xq = quantise_features(x, 16) / 2**16
    np.testing.assert_allclose(got, xq.T @ dq, rtol=0, atol=1e-9)
    (empty,) = kernel(iter([]))
    assert merge_partials(empty, n=public.n) == [1, 1, 1]


def test_feature_range_errors_name_feature_range_and_precision(keys512):
    public, _ = keys512
    batch = pa.record_batch({"big": [1.0, 300.0], "enc": _enc_column(public, [0.0, 0.0])})
    with pytest.raises(EncodingOverflow, match=r"feature 'big' value 300\.0 .*±256 .*16 fractional bits"):
        list(xtd_batches(iter([batch]), n=public.n, features=["big"], x_frac_bits=16, max_bits=24))
    ints = pa.record_batch({"q": pa.array([1 << 24], pa.int64()), "enc": _enc_column(public, [0.0])})
    with pytest.raises(EncodingOverflow, match="feature 'q'"):
        list(xtd_batches(iter([ints]), n=public.n, features=["q"]))
    with pytest.raises(EncodingOverflow, match="not a number"):
        quantise_features([np.nan], 16)


def test_kernels_run_on_spark(spark, keys512):
    from fedspark.arrow_bridge import collect_arrow, map_in_arrow

    public, private = keys512
    rng = np.random.default_rng(5)
    x = rng.normal(size=(64, 2))
    d = rng.uniform(-1, 1, size=64)
    table = pa.table({"row": np.arange(64), "value": d, "f0": x[:, 0], "f1": x[:, 1]})
    df = spark.createDataFrame(table.to_pandas()).repartition(2)
    encrypt = functools.partial(encrypt_batches, n=public.n, frac_bits=FRAC)
    encrypted = map_in_arrow(df, encrypt, "row long, f0 double, f1 double, enc binary")
    gradient = functools.partial(xtd_batches, n=public.n, features=["f0", "f1"], x_frac_bits=16)
    partials = collect_arrow(map_in_arrow(encrypted, gradient, "feature int, partial binary"))
    assert partials.num_rows == 4  # one row per feature per partition
    merged = merge_partials(partials, n=public.n)
    got = FixedPoint(public.n, FRAC).decode(private.decrypt_many(merged), frac_bits=FRAC + 16)
    expected = (quantise_features(x, 16) / 2**16).T @ (np.rint(d * 2**FRAC) / 2**FRAC)
    np.testing.assert_allclose(got, expected, atol=1e-9)
