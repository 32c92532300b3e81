"""Paillier batch math (ints and numpy, no Arrow) against plain math: decrypt and compare."""

from __future__ import annotations

import numpy as np
import pytest

from fedspark.crypto import EncodingOverflow, FixedPoint, encrypt_values, merge_partials, quantise_features, xtd

FRAC = 24


@pytest.mark.parametrize(
    ("x", "frac_bits", "expected"),
    [
        ([0.0, 1.0, -1.0], 16, [0, 65536, -65536]),
        ([0.5, -0.25, 1.5e-5], 16, [32768, -16384, 1]),
        ([[1.0, -2.0], [0.0, 3.0]], 4, [[16, -32], [0, 48]]),
        ([], 16, []),
    ],
)
def test_quantise_rounds_to_signed_integers(x, frac_bits, expected):
    q = quantise_features(x, frac_bits)
    assert q.dtype == np.int64
    np.testing.assert_array_equal(q, np.array(expected, dtype=np.int64).reshape(np.shape(x)))


def test_feature_range_errors_name_feature_range_and_precision():
    with pytest.raises(EncodingOverflow, match=r"feature 'big' value 300\.0 .*±256 .*16 fractional bits"):
        quantise_features([1.0, 300.0], 16, 24, name="big")
    with pytest.raises(EncodingOverflow, match="not a number"):
        quantise_features([np.nan], 16)
    with pytest.raises(EncodingOverflow, match="above the maximum"):
        quantise_features([np.inf], 16, 63)
    with pytest.raises(EncodingOverflow, match="below the minimum"):
        quantise_features([-(2.0**48)], 16, 63)  # would not fit an int64 exponent
    assert quantise_features([1e6], 16, 63)[0] == 1_000_000 * 2**16  # wide enough when asked


def test_encrypt_values_decrypts_to_the_encoding(keys512):
    public, private = keys512
    codec = FixedPoint(public.n, FRAC)
    values = np.array([0.5, -1.25, 0.0, 0.5])
    enc = encrypt_values(public, codec, values)
    np.testing.assert_array_equal(codec.decode(private.decrypt_many(enc)), values)
    assert len(set(enc)) == 4  # equal values, unlinkable ciphertexts
    assert encrypt_values(public, codec, np.zeros(0)) == []


def test_xtd_matches_plain_gradient_and_merges_across_partitions(keys512):
    public, private = keys512
    rng = np.random.default_rng(11)
    x = rng.uniform(-4, 4, size=(40, 3))
    x[7, :] = 0.0  # a zero row
    x[:, 1] = -np.abs(x[:, 1])  # an all-negative feature
    d = rng.uniform(-1, 1, size=40)
    codec = FixedPoint(public.n, FRAC)
    xq = quantise_features(x, 16)
    enc = public.encrypt_many(codec.encode(d))

    whole = xtd(public, xq, enc)
    got = codec.decode(private.decrypt_many(whole), frac_bits=FRAC + 16)
    np.testing.assert_allclose(got, (xq / 2**16).T @ (np.rint(d * 2**FRAC) / 2**FRAC), rtol=0, atol=1e-9)

    parts = [xtd(public, xq[:15], enc[:15]), xtd(public, xq[15:], enc[15:], workers=2)]
    keys = [j for part in parts for j in range(len(part))]
    assert merge_partials(public, keys, [c for part in parts for c in part], 3) == whole  # the same integers
    assert xtd(public, xq[:0], []) == [1, 1, 1]


def test_merge_partials_gives_missing_keys_the_identity(keys512):
    public, private = keys512
    a, b = public.encrypt_many([2, 5])
    merged = merge_partials(public, [2, 2], [a, b], 4)
    assert merged[:2] == [1, 1] and merged[3] == 1
    assert private.decrypt(merged[2]) == 7
    assert merge_partials(public, [], [], 0) == []
