"""Shamir sharing over GF(2^521 − 1): any threshold of shares recovers the secret, fewer do not."""

import itertools
import secrets

import pytest

from fedspark.crypto import combine_secret, split_secret
from fedspark.crypto._shamir import ELEMENT_BYTES, PRIME


@pytest.mark.parametrize("size", [1, 16, 32, 64])
def test_every_threshold_subset_recovers_the_secret(size: int) -> None:
    secret = secrets.token_bytes(size)
    shares = split_secret(secret, 3, 5)
    assert len(shares) == 5 and all(len(s) == 1 + ELEMENT_BYTES for s in shares)
    for subset in itertools.combinations(range(5), 3):
        assert combine_secret([(i + 1, shares[i]) for i in subset]) == secret
    assert combine_secret([(i + 1, s) for i, s in enumerate(shares)]) == secret  # more than enough


def test_leading_zero_bytes_survive() -> None:
    secret = bytes(15) + b"\x01"
    assert combine_secret([(1, s) for s in split_secret(secret, 1, 1)]) == secret


def test_too_few_or_tampered_shares_do_not_give_the_secret() -> None:
    secret = secrets.token_bytes(16)
    shares = split_secret(secret, 9, 17)
    with pytest.raises(ValueError, match="do not combine"):
        combine_secret([(i + 1, shares[i]) for i in range(8)])
    # A share replaced by another field element: unauthenticated (the protocol seals shares),
    # so detection is only probabilistic, but the secret never comes out.
    forged = shares[0][:1] + secrets.randbelow(PRIME).to_bytes(ELEMENT_BYTES, "big")
    with pytest.raises(ValueError, match="do not combine"):
        combine_secret([(1, forged), *((i + 1, shares[i]) for i in range(1, 9))])


def test_shares_of_one_secret_differ_each_time_and_look_uniform() -> None:
    secret = b"\x00" * 16
    first, second = split_secret(secret, 2, 3), split_secret(secret, 2, 3)
    assert first != second  # fresh random coefficients
    assert all(int.from_bytes(s[1:], "big") < PRIME for s in first)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="1..64 bytes"):
        split_secret(b"", 1, 1)
    with pytest.raises(ValueError, match="1..64 bytes"):
        split_secret(bytes(65), 1, 1)
    with pytest.raises(ValueError, match="threshold 4 must lie in 1..3"):
        split_secret(b"x", 4, 3)
    shares = split_secret(b"xy", 2, 2)
    with pytest.raises(ValueError, match="distinct"):
        combine_secret([(1, shares[0]), (1, shares[1])])
    with pytest.raises(ValueError, match="malformed"):
        combine_secret([(1, shares[0]), (2, shares[1][:-1])])
