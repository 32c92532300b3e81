"""Shamir secret sharing over the prime field GF(2^521 − 1), for the short seeds of masking.

Why not pycryptodome's ``Shamir``: it works in GF(2^128) with a pure-Python
multiplication (a loop over 128 bits per product), so one split into 17 shares
took ~1 ms and one recovery from 9 shares ~3 ms. Secure aggregation needs one
split per secret per client and one recovery per client per round: with 100
simulated clients that was 0.6 s of every masked round, more than the round's
training. In a prime field every product is one Python big-integer
multiplication and reduction, ~100× faster, and the scheme is the textbook one
(Shamir, "How to share a secret", CACM 1979).

The field: p = 2^521 − 1, a Mersenne prime, so any secret of up to 64 bytes is
one field element and is shared in one polynomial (no splitting into halves).
Coefficients are drawn uniformly from the field with ``secrets``, so any
``threshold − 1`` shares are independent of the secret. A share is the
evaluation at x = index (1..count) as 66 big-endian bytes, prefixed by the
secret's length so recovery returns exactly the bytes that were shared.
Shares are not authenticated here: the masking protocol seals each share for
its recipient (NaCl box) and binds it to (sender, recipient).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

PRIME = (1 << 521) - 1
ELEMENT_BYTES = 66
MAX_SECRET_BYTES = 64


def split_secret(secret: bytes, threshold: int, count: int) -> list[bytes]:
    """``count`` shares of ``secret``; any ``threshold`` of them recover it (share i has index i + 1)."""
    if not 1 <= len(secret) <= MAX_SECRET_BYTES:
        raise ValueError(f"a secret must have 1..{MAX_SECRET_BYTES} bytes, got {len(secret)}")
    if not 1 <= threshold <= count:
        raise ValueError(f"threshold {threshold} must lie in 1..{count} (the number of shares)")
    coefficients = [int.from_bytes(secret, "big"), *(secrets.randbelow(PRIME) for _ in range(threshold - 1))]
    shares = []
    for x in range(1, count + 1):
        y = 0
        for c in reversed(coefficients):  # Horner
            y = (y * x + c) % PRIME
        shares.append(bytes([len(secret)]) + y.to_bytes(ELEMENT_BYTES, "big"))
    return shares


def combine_secret(shares: Sequence[tuple[int, bytes]]) -> bytes:
    """The secret from (index, share) pairs: Lagrange interpolation at 0.

    Any ``threshold`` or more shares give the secret. Fewer, or a wrong share,
    give an unrelated field element, which almost surely does not fit the
    announced length and is refused with ``ValueError``.
    """
    if not shares:
        raise ValueError("no shares to combine")
    length = shares[0][1][0] if shares[0][1] else 0
    xs = [index for index, _ in shares]
    if len(set(xs)) != len(xs) or not all(0 < x < PRIME for x in xs):
        raise ValueError(f"share indices must be distinct and positive, got {xs}")
    ys = []
    for index, share in shares:
        if len(share) != 1 + ELEMENT_BYTES or share[0] != length:
            raise ValueError(f"share {index} is malformed or from a secret of another length")
        ys.append(int.from_bytes(share[1:], "big"))
    total = 0
    for i, (xi, yi) in enumerate(zip(xs, ys)):
        numerator, denominator = 1, 1
        for j, xj in enumerate(xs):
            if j != i:
                numerator = numerator * xj % PRIME
                denominator = denominator * (xj - xi) % PRIME
        total = (total + yi * numerator * pow(denominator, -1, PRIME)) % PRIME
    if not 1 <= length <= MAX_SECRET_BYTES or total >> (8 * length):
        raise ValueError("the shares do not combine to a secret of the announced length (wrong or too few shares)")
    return total.to_bytes(length, "big")
