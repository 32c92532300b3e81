"""hetero_lr's Spark kernels on hand-built batches: the integers of the driver path, Arrow in and out."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from fedspark.algorithms.hetero_lr._kernels import encrypt_batches, gradient_batches, linear_predictor
from fedspark.arrow_bridge import ColumnViewError, fixed_binary_to_ints, ints_to_fixed_binary
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
    """Tasks holding a batch's rows in any order and split find their ciphertexts by rank; merged, the
    partials are the driver path's X^T[[e]] integers."""
    public, private = keys
    rng = np.random.default_rng(11)
    ranks = np.sort(rng.choice(1000, size=40, replace=False))
    x = rng.uniform(-4, 4, size=(40, 2))
    x[7, :] = 0.0
    d = rng.uniform(-1, 1, size=40)
    enc_column = _enc_column(public, d)
    shuffled = rng.permutation(40)
    table = pa.table({"_rank": ranks[shuffled], "a": x[shuffled, 0], "b": x[shuffled, 1]})
    batches = table.to_batches(max_chunksize=15)
    partitions = [batches[:2], batches[2:] + [batches[0].slice(0, 0)], []]  # the last task has no row
    kernel = {"n": public.n, "rank": "_rank", "names": ["a", "b"], "x_frac_bits": 16, "ranks": ranks,
              "enc": enc_column}
    partials = [next(gradient_batches(iter(p), **kernel)) for p in partitions]  # type: ignore[arg-type]
    assert [p.num_rows for p in partials] == [2, 2, 2]
    assert fixed_binary_to_ints(partials[2].column("partial")) == [1, 1]  # the identity

    out = pa.Table.from_batches(partials)
    merged = merge_partials(public, out.column("feature").to_pylist(), fixed_binary_to_ints(out.column("partial")), 2)
    xq = quantise_features(x, 16)
    assert merged == xtd(public, xq, fixed_binary_to_ints(enc_column))  # what DriverCompute sends
    got = FixedPoint(public.n, FRAC).decode(private.decrypt_many(merged), frac_bits=FRAC + 16)
    np.testing.assert_allclose(got, (xq / 2**16).T @ (np.rint(d * 2**FRAC) / 2**FRAC), rtol=0, atol=1e-9)


def test_gradient_kernel_refuses_a_row_outside_the_batch(keys: tuple[PublicKey, PrivateKey]) -> None:
    public, _ = keys
    enc = _enc_column(public, np.array([0.5, -0.5]))
    batch = pa.record_batch({"_rank": pa.array([3, 9], pa.int64()), "a": pa.array([1.0, 2.0])})
    with pytest.raises(ValueError, match="rank is not in the batch"):
        list(gradient_batches(iter([batch]), n=public.n, rank="_rank", names=["a"], x_frac_bits=16,
                              ranks=np.array([3, 4]), enc=enc))
