"""Π_i c_i^{k_i} mod m with the bucket method (Pippenger), not one powmod per term.

X^T[[d]] needs, for each feature j, Π_i [[d_i]]^{x_ij} over a batch of rows. One
``powmod`` per (row, feature) costs ~|x| squarings plus |x|/5 multiplications.
The bucket method splits every exponent into c-bit digits; for each digit
position it multiplies each base into the bucket of its digit (one
multiplication per nonzero digit), then folds the buckets into Π_d B_d^d with
two running products (2·2^c multiplications), and joins positions with c
squarings each. Per term that is ⌈|x|/c⌉ multiplications plus the shared
overhead 2^(c+1)·⌈|x|/c⌉ / N, so for a few thousand rows and 24-bit features
about 3–4 modular multiplications per term instead of ~40.

Negative exponents: positive and negative parts are multiplied separately and
joined with one modular inverse per product, P · Q^{-1}. Never c^(n−|k|),
whose |n|-bit exponent would cost a full exponentiation per term. For int64
exponents (``signed_digit_product``) the split is per digit: each exponent is
recoded into signed digits in [−2^(c−1), 2^(c−1)], a positive digit goes to a
bucket of P and a negative one to a bucket of Q. A negative exponent then
costs what a positive one does, and the fold needs 2^c buckets per position
instead of the 2·2^c of separate unsigned passes over x⁺ and x⁻.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import gmpy2
import numpy as np
import numpy.typing as npt
from gmpy2 import mpz

from fedspark.crypto._parallel import process_map

MAX_BUCKET_WINDOW = 16

PROCESS_MIN_TERMS = 20_000
"""Below this many (row, column) terms one process does the work: handing a batch to worker
processes costs milliseconds (more on a loaded machine), ~20k terms cost 70–200 ms inline."""


def bucket_window(terms: int, exp_bits: int) -> int:
    """The digit width c that minimises the estimated multiplications for ``terms`` exponents."""
    best, best_cost = 1, math.inf
    for c in range(1, min(MAX_BUCKET_WINDOW, max(1, exp_bits)) + 1):
        positions = -(-exp_bits // c)
        cost = positions * (terms * (1 - 2.0**-c) + 2 * ((1 << c) - 1)) + (positions - 1) * c
        if cost < best_cost:
            best, best_cost = c, cost
    return best


def bucket_product(bases: Sequence[mpz], exponents: Sequence[int], modulus: mpz, window: int | None = None) -> mpz:
    """Π b_i^{e_i} mod ``modulus`` for non-negative exponents (bucket method)."""
    pairs = [(b, e) for b, e in zip(bases, exponents, strict=True) if e]
    if not pairs:
        return mpz(1)
    exp_bits = max(e for _, e in pairs).bit_length()
    c = window or bucket_window(len(pairs), exp_bits)
    mask = (1 << c) - 1
    m = modulus
    acc: mpz | None = None
    for position in range(-(-exp_bits // c) - 1, -1, -1):
        if acc is not None:
            acc = gmpy2.powmod(acc, 1 << c, m)
        shift = c * position
        buckets: list[mpz | None] = [None] * (mask + 1)
        for b, e in pairs:
            d = (e >> shift) & mask
            if d:
                held = buckets[d]
                buckets[d] = b if held is None else held * b % m
        folded = _fold_buckets(buckets, m)
        if folded is not None:
            acc = folded if acc is None else acc * folded % m
    return mpz(1) if acc is None else acc


def _fold_buckets(buckets: Sequence[mpz | None], m: mpz) -> mpz | None:
    """Π_d B_d^d with two running products: 2 multiplications per bucket, no powmod."""
    running: mpz | None = None
    total: mpz | None = None
    for d in range(len(buckets) - 1, 0, -1):
        b = buckets[d]
        if b is not None:
            running = b if running is None else running * b % m
        if running is not None:
            total = running if total is None else total * running % m
    return total


def signed_multi_exp(bases: Sequence[mpz], exponents: Sequence[int], modulus: mpz, window: int | None = None) -> mpz:
    """Π b_i^{k_i} mod ``modulus`` for signed k_i: positive and negative parts, one inverse."""
    pos_b, pos_e, neg_b, neg_e = [], [], [], []
    for b, k in zip(bases, exponents, strict=True):
        if k > 0:
            pos_b.append(b)
            pos_e.append(k)
        elif k < 0:
            neg_b.append(b)
            neg_e.append(-k)
    result = bucket_product(pos_b, pos_e, modulus, window)
    if neg_b:
        negative = bucket_product(neg_b, neg_e, modulus, window)
        result = result * gmpy2.invert(negative, modulus) % modulus
    return result


def signed_digit_window(terms: int, exp_bits: int) -> int:
    """The digit width c minimising the estimated multiplications of ``signed_digit_product``."""
    best, best_cost = 1, math.inf
    for c in range(1, min(MAX_BUCKET_WINDOW, max(1, exp_bits)) + 1):
        positions = -(-(exp_bits + 1) // c)
        cost = positions * (terms + 2 * (1 << c)) + 2 * (positions - 1) * c
        if cost < best_cost:
            best, best_cost = c, cost
    return best


def signed_digits(exponents: npt.NDArray[np.int64], c: int) -> list[list[int]]:
    """Signed base-2^c digits in [−2^(c−1), 2^(c−1)] of int64 exponents, least significant first.

    v = Σ_k d_k·2^(c·k): take d = v mod 2^c, move it to [−2^(c−1), 2^(c−1)] by
    subtracting 2^c when above half, then v ← (v − d) / 2^c (exact).
    """
    v = np.asarray(exponents, dtype=np.int64).copy()
    mask, half = (1 << c) - 1, 1 << (c - 1)
    digits: list[list[int]] = []
    for _ in range(64 // c + 2):  # |v| shrinks by 2^c per step: int64 needs at most 64/c + 1
        if not (v.size and v.any()):
            return digits
        d = v & mask
        # above half, or exactly half of a negative v (else v = -1 would never shrink for c = 1)
        d -= ((d > half) | ((d == half) & (v < 0))) * (1 << c)
        v = (v - d) >> c
        digits.append(d.tolist())
    raise ValueError(f"exponents do not fit {c}-bit signed digits of int64")


def signed_digit_product(
    bases: Sequence[mpz], exponents: npt.NDArray[np.int64], modulus: mpz, window: int | None = None
) -> mpz:
    """Π b_i^{k_i} mod ``modulus`` for int64 k_i of either sign: signed digits, one inverse.

    Requires |k_i| < 2^62 (so recoding cannot overflow int64).
    """
    xs = np.asarray(exponents, dtype=np.int64)
    if xs.size == 0 or not xs.any():
        return mpz(1)
    top = int(np.max(np.abs(xs)))
    if top >= 1 << 62:
        raise ValueError(f"exponents must lie below 2^62 in magnitude, got {top.bit_length()} bits")
    c = window or signed_digit_window(int(np.count_nonzero(xs)), top.bit_length())
    half = 1 << (c - 1)
    m = modulus
    pos: mpz | None = None
    neg: mpz | None = None
    for digits in reversed(signed_digits(xs, c)):
        if pos is not None:
            pos = gmpy2.powmod(pos, 1 << c, m)
        if neg is not None:
            neg = gmpy2.powmod(neg, 1 << c, m)
        up: list[mpz | None] = [None] * (half + 1)
        down: list[mpz | None] = [None] * (half + 1)
        for b, d in zip(bases, digits):
            if d > 0:
                held = up[d]
                up[d] = b if held is None else held * b % m
            elif d < 0:
                held = down[-d]
                down[-d] = b if held is None else held * b % m
        folded = _fold_buckets(up, m)
        if folded is not None:
            pos = folded if pos is None else pos * folded % m
        folded = _fold_buckets(down, m)
        if folded is not None:
            neg = folded if neg is None else neg * folded % m
    result = mpz(1) if pos is None else pos
    if neg is not None:
        result = result * gmpy2.invert(neg, m) % m
    return result


def multi_exp_columns(
    bases: Sequence[mpz],
    matrix: npt.NDArray[Any],
    modulus: mpz,
    *,
    window: int | None = None,
    workers: int = 1,
) -> list[mpz]:
    """One signed multi-exponentiation per column of an (n_rows, d) integer matrix.

    int64 columns (|x| < 2^62) take the signed-digit path; larger Python ints
    (an object array) take the generic one.
    """
    xs = np.asarray(matrix)
    if xs.ndim != 2 or xs.shape[0] != len(bases):
        raise ValueError(f"expected an ({len(bases)}, d) integer matrix, got shape {xs.shape}")
    python_ints = xs.dtype == object and all(isinstance(v, int) for v in xs.flat)
    if not (np.issubdtype(xs.dtype, np.integer) or python_ints):
        raise TypeError(f"the exponent matrix must hold integers (quantise features first), got {xs.dtype}")
    small = xs.size == 0 or max(abs(int(v)) for v in (xs.min(), xs.max())) < 1 << 62
    xs = xs.astype(np.int64) if small else xs.astype(object)
    if xs.size < PROCESS_MIN_TERMS:
        workers = 1
    blocks = [block for block in np.array_split(np.arange(xs.shape[1]), max(1, workers)) if block.size]
    tasks = [(list(map(int, bases)) if workers > 1 else bases, xs[:, block], int(modulus), window) for block in blocks]
    return [mpz(r) for part in process_map(_columns, tasks, workers) for r in part]


_ColumnsTask = tuple[Sequence[Any], npt.NDArray[Any], int, "int | None"]


def _columns(task: _ColumnsTask) -> list[int]:
    """The products of one block of columns (runs in a worker process when ``workers`` > 1)."""
    bases, xs, modulus, window = task
    bs = [mpz(b) for b in bases]
    m = mpz(modulus)
    if xs.dtype != object:
        return [int(signed_digit_product(bs, xs[:, j].astype(np.int64), m, window)) for j in range(xs.shape[1])]
    return [int(signed_multi_exp(bs, [int(v) for v in xs[:, j]], m, window)) for j in range(xs.shape[1])]


def naive_multi_exp(bases: Sequence[int], exponents: Sequence[int], modulus: int) -> int:
    """Π b^k one ``powmod`` at a time (Python's pow handles k < 0): the reference for tests."""
    acc = 1
    for b, k in zip(bases, exponents, strict=True):
        acc = acc * pow(int(b), int(k), modulus) % modulus
    return acc
