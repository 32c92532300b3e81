"""ristretto255 through libsodium (pysodium): hash to the group, blind, draw a secret.

ristretto255 is a prime-order group: every encoded element is valid and has no
small-order component, so H(x)^a^b = H(x)^b^a holds exactly and a peer cannot
send a point that leaks bits of our scalar (the cofactor attacks that plain
curve25519 needs clamping against). Elements are 32 bytes, scalars 32 bytes.
"""

from __future__ import annotations

import hashlib

import pysodium

ELEMENT_BYTES = 32
"""Bytes of one encoded group element (``crypto_core_ristretto255_BYTES``)."""

SCALAR_BYTES = 32
SALT_BYTES = 64
"""The per-job salt is one SHA-512 output (see ``commit_reveal.derive_salt``)."""


ORDER = 2**252 + 27742317777372353535851937790883648493
"""L, the order of ristretto255 (scalars are integers mod L, 32 bytes little-endian)."""

_GUESSABLE = 2**128
"""Scalars within this distance of 0 or of L are refused (a uniform scalar lands there with probability 2^-123)."""


def random_scalar() -> bytes:
    """A fresh secret scalar, uniform in [0, L) (libsodium's CSPRNG), redrawn in the negligible guessable range."""
    while True:
        scalar: bytes = pysodium.crypto_core_ristretto255_scalar_random()
        if _strong(scalar):
            return scalar


def check_scalar(scalar: bytes) -> bytes:
    """Refuse a scalar of the wrong size, zero, or one a peer could guess.

    Zero blinds every id to the identity; 1 sends H(id), which anyone can
    compute from a candidate id; so do 2, L - 1 and every other small multiple
    or its negative. A value of L or more is not canonical (libsodium reduces
    it, or clears its top bit, so L itself acts as zero). A scalar is refused
    unless it is canonical and at least 2^128 away from 0 and from L.
    """
    if not isinstance(scalar, bytes) or len(scalar) != SCALAR_BYTES or not _strong(scalar):
        raise ValueError(
            f"a PSI secret must be a non-zero {SCALAR_BYTES}-byte ristretto255 scalar, below the group order "
            "and not guessable (at least 2^128 away from 0 and from the order); leave it unset for a fresh random one"
        )
    return scalar


def _strong(scalar: bytes) -> bool:
    value = int.from_bytes(scalar, "little")
    return _GUESSABLE <= value <= ORDER - _GUESSABLE


def hash_to_group(salt: bytes, id_bytes: bytes) -> bytes:
    """H(id) = from_hash(SHA-512(salt || id)): a group element nobody knows the discrete log of.

    The salt has a fixed length, so ``salt || id`` is unambiguous.
    """
    point: bytes = pysodium.crypto_core_ristretto255_from_hash(hashlib.sha512(salt + id_bytes).digest())
    return point


def blind(scalar: bytes, element: bytes) -> bytes:
    """element^scalar. Raises ``ValueError`` if ``element`` is not a valid encoding (or the result is the identity)."""
    out: bytes = pysodium.crypto_scalarmult_ristretto255(scalar, element)
    return out
