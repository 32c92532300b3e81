"""The bucket multi-exponentiation equals the naive product, for every sign and window."""

from __future__ import annotations

import random

import numpy as np
import pytest
from gmpy2 import mpz

from fedspark.crypto import FixedPoint
from fedspark.crypto._multiexp import (
    bucket_product,
    bucket_window,
    naive_multi_exp,
    signed_digit_product,
    signed_digits,
    signed_multi_exp,
)

MODULUS = mpz((1 << 521) - 1)  # any odd modulus will do for the algebra


def _bases(count: int, seed: int) -> list[mpz]:
    rng = random.Random(seed)
    return [mpz(rng.randrange(2, int(MODULUS))) for _ in range(count)]


@pytest.mark.parametrize("window", [None, 1, 2, 5, 8, 12])
@pytest.mark.parametrize("bits", [1, 7, 24, 40])
def test_bucket_product_equals_naive(window, bits):
    rng = random.Random(bits * 100 + (window or 0))
    bases = _bases(60, bits)
    exps = [rng.randrange(0, 1 << bits) for _ in bases]
    exps[3] = 0  # a zero term contributes nothing
    assert bucket_product(bases, exps, MODULUS, window) == naive_multi_exp(bases, exps, int(MODULUS))


def test_signed_terms_and_edge_cases():
    bases = _bases(30, 1)
    rng = random.Random(2)
    exps = [rng.randrange(-(1 << 23), 1 << 23) for _ in bases]
    assert signed_multi_exp(bases, exps, MODULUS) == naive_multi_exp(bases, exps, int(MODULUS))
    negative_only = [-abs(e) for e in exps]
    assert signed_multi_exp(bases, negative_only, MODULUS) == naive_multi_exp(bases, negative_only, int(MODULUS))
    assert signed_multi_exp(bases, [0] * 30, MODULUS) == 1
    assert signed_multi_exp([], [], MODULUS) == 1
    huge = [rng.randrange(-(1 << 300), 1 << 300) for _ in bases]  # beyond int64: still exact
    assert signed_multi_exp(bases, huge, MODULUS) == naive_multi_exp(bases, huge, int(MODULUS))


@pytest.mark.parametrize("window", [None, 1, 3, 8, 13])
@pytest.mark.parametrize("bits", [1, 5, 23, 40, 61])
def test_signed_digit_product_equals_naive(window, bits):
    rng = random.Random(bits * 31 + (window or 0))
    bases = _bases(50, bits)
    xs = np.array([rng.randrange(-(1 << bits) + 1, 1 << bits) for _ in bases], dtype=np.int64)
    xs[:5] = 0
    assert signed_digit_product(bases, xs, MODULUS, window) == naive_multi_exp(bases, xs.tolist(), int(MODULUS))


@pytest.mark.parametrize("c", [1, 2, 7, 8, 16])
def test_signed_digits_recompose(c):
    rng = random.Random(c)
    values = [rng.randrange(-(1 << 40), 1 << 40) for _ in range(40)]
    values += [-1, 1, -(1 << (c - 1)), 1 << (c - 1), -(1 << 62) + 1, (1 << 62) - 1]
    digits = signed_digits(np.array(values, dtype=np.int64), c)
    assert [sum(d[i] << (c * k) for k, d in enumerate(digits)) for i in range(len(values))] == values
    assert all(-(1 << (c - 1)) <= x <= 1 << (c - 1) for d in digits for x in d)
    assert signed_digits(np.zeros(3, dtype=np.int64), c) == []


def test_signed_digit_product_refuses_int64_extremes():
    with pytest.raises(ValueError, match="2\\^62"):
        signed_digit_product(_bases(1, 0), np.array([1 << 62], dtype=np.int64), MODULUS)


def test_window_choice_tracks_batch_size():
    assert bucket_window(10, 24) < bucket_window(4096, 24) < bucket_window(10**6, 24)


def test_dot_many_equals_naive_product_of_ciphertexts(keys512):
    public, private = keys512
    rng = np.random.default_rng(3)
    cs = public.encrypt_many(range(25))
    xq = rng.integers(-(1 << 23), 1 << 23, size=(25, 4))
    xq[:, 2] = 0  # an all-zero feature
    xq[5, :] = 0  # a zero row
    xq[:, 3] = -np.abs(xq[:, 3])  # an all-negative feature
    results = public.dot_many(cs, xq)
    for j in range(4):
        assert results[j] == naive_multi_exp(cs, xq[:, j].tolist(), public.nsquare)
    assert public.dot_many(cs, xq, workers=2) == results
    codec = FixedPoint(public.n, frac_bits=0)
    plain = codec.decode(private.decrypt_many(results))
    np.testing.assert_array_equal(plain, np.arange(25) @ xq)
    assert public.dot(cs, xq[:, 0].tolist()) == results[0]
    big = np.array([[1 << 70], [-(1 << 65)]], dtype=object)  # beyond int64: the generic path
    assert public.dot_many(cs[:2], big) == [naive_multi_exp(cs[:2], [1 << 70, -(1 << 65)], public.nsquare)]


def test_dot_many_shapes(keys512):
    public, _ = keys512
    cs = public.encrypt_many([1, 2])
    assert public.dot_many(cs, np.zeros((2, 0), dtype=np.int64)) == []
    assert public.dot_many([], np.zeros((0, 3), dtype=np.int64)) == [1, 1, 1]
    with pytest.raises(ValueError, match="matrix"):
        public.dot_many(cs, np.zeros((3, 1), dtype=np.int64))
    with pytest.raises(TypeError, match="quantise"):
        public.dot_many(cs, np.zeros((2, 1)))
    with pytest.raises(ValueError):
        public.dot(cs, [1])


def test_worker_processes_compute_the_same_columns(keys512, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from fedspark.crypto import _multiexp

    public, _ = keys512
    monkeypatch.setattr(_multiexp, "PROCESS_MIN_TERMS", 0)  # a small batch through the worker pool
    cs = public.encrypt_many(range(30))
    xq = np.random.default_rng(5).integers(-(1 << 23), 1 << 23, size=(30, 5))
    expected = [naive_multi_exp(cs, xq[:, j].tolist(), public.nsquare) for j in range(5)]
    assert public.dot_many(cs, xq, workers=2) == expected
    from fedspark.crypto import _parallel

    assert 2 in _parallel._pools  # the pool ran it (a broken pool would have been dropped)
    big = np.array([[1 << 70, 3], [-(1 << 65), -2]], dtype=object)  # the generic path in workers too
    assert public.dot_many(cs[:2], big, workers=2) == [
        naive_multi_exp(cs[:2], [1 << 70, -(1 << 65)], public.nsquare), naive_multi_exp(cs[:2], [3, -2], public.nsquare)
    ]
