"""hetero_lr's Spark kernels on hand-built batches: the integers of the driver path, Arrow in and out."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from fedspark.algorithms.hetero_lr._kernels import encrypt_batches, gradient_batches, linear_predictor
from fedspark.arrow_bridge import BinaryWidthError, ColumnViewError, fixed_binary_to_ints, ints_to_fixed_binary
from fedspark.crypto import FixedPoint, PrivateKey, PublicKey, generate_keypair, merge_partials, quantise_features, xtd

FRAC = 24


@pytest.fixture(scope="module")
def keys() -> tuple[PublicKey, PrivateKey]:
    return generate_keypair(512, allow_insecure_key_size=True)


def _enc_column(public: PublicKey, values: np.ndarray) -> pa.FixedSizeBinaryArray:
    enc = public.encrypt_many(FixedPoint(public.n, FRAC).encode(values))
    return ints_to_fixed_binary(enc, public.ciphertext_width)


def test_linear_predictor_is_x_dot_w() -> None:
    x = np.array([[1.0, 2.0], [-1.0, 0.5]])
    np.testing.assert_array_equal(linear_predictor(x, np.array([0.5, -1.0])), [-1.5, -1.0])


def test_encrypt_kernel_keeps_rows_and_handles_empty_input(keys: tuple[PublicKey, PrivateKey]) -> None:
    public, private = keys
    batch = pa.record_batch({"row": pa.array([3, 1, 2], pa.int64()), "value": [0.5, -1.25, 0.0]})
    out = list(encrypt_batches(iter([batch, batch.slice(0, 0)]), n=public.n, frac_bits=FRAC))
    assert [b.num_rows for b in out] == [3, 0]
    assert out[0].schema.names == ["row", "enc"] == out[1].schema.names
    assert out[0].schema.field("enc").type == pa.binary(public.ciphertext_width)
    assert out[0].column("row").to_pylist() == [3, 1, 2]
    decoded = FixedPoint(public.n, FRAC).decode(private.decrypt_many(fixed_binary_to_ints(out[0].column("enc"))))
    np.testing.assert_array_equal(decoded, [0.5, -1.25, 0.0])
    assert list(encrypt_batches(iter([]), n=public.n, frac_bits=FRAC)) == []


def test_encrypt_kernel_refuses_null_values_by_column_name(keys: tuple[PublicKey, PrivateKey]) -> None:
    public, _ = keys
    batch = pa.record_batch({"row": [0, 1], "value": pa.array([1.0, None], pa.float64())})
    with pytest.raises(ColumnViewError, match="'value'.*null"):
        list(encrypt_batches(iter([batch]), n=public.n, frac_bits=FRAC))


def test_gradient_kernel_partials_merge_to_the_driver_integers(keys: tuple[PublicKey, PrivateKey]) -> None:
    public, private = keys
    rng = np.random.default_rng(11)
    x = rng.uniform(-4, 4, size=(40, 2))
    x[7, :] = 0.0
    xq = quantise_features(x, 16)
    d = rng.uniform(-1, 1, size=40)
    enc_column = _enc_column(public, d)
    table = pa.table({"x0": xq[:, 0], "x1": xq[:, 1], "enc": enc_column})
    batches = table.to_batches(max_chunksize=15)
    names = ["x0", "x1"]
    partitions = [batches[:2], batches[2:] + [batches[0].slice(0, 0)], []]  # the last partition is empty
    partials = [next(gradient_batches(iter(p), n=public.n, feature_names=names)) for p in partitions]
    assert [p.num_rows for p in partials] == [2, 2, 2]
    assert fixed_binary_to_ints(partials[2].column("partial")) == [1, 1]  # the identity

    out = pa.Table.from_batches(partials)
    merged = merge_partials(public, out.column("feature").to_pylist(), fixed_binary_to_ints(out.column("partial")), 2)
    assert merged == xtd(public, xq, fixed_binary_to_ints(enc_column))  # what DriverCompute sends
    got = FixedPoint(public.n, FRAC).decode(private.decrypt_many(merged), frac_bits=FRAC + 16)
    np.testing.assert_allclose(got, (xq / 2**16).T @ (np.rint(d * 2**FRAC) / 2**FRAC), rtol=0, atol=1e-9)


def test_gradient_kernel_takes_spark_binary_and_refuses_null_ciphertexts(keys: tuple[PublicKey, PrivateKey]) -> None:
    public, _ = keys
    enc = _enc_column(public, np.array([0.5, -0.5]))
    variable = pa.array(enc.to_pylist(), pa.binary())  # what Spark hands back for a `binary` column
    batch = pa.record_batch({"x0": pa.array([3, -2], pa.int64()), "enc": variable})
    (out,) = gradient_batches(iter([batch]), n=public.n, feature_names=["x0"])
    assert fixed_binary_to_ints(out.column("partial")) == xtd(public, np.array([[3], [-2]]), fixed_binary_to_ints(enc))
    null = pa.record_batch({"x0": pa.array([1], pa.int64()), "enc": pa.array([None], pa.binary())})
    with pytest.raises(BinaryWidthError, match="null"):
        list(gradient_batches(iter([null]), n=public.n, feature_names=["x0"]))
