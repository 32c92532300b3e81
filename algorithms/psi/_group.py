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
"""The per-job salt is one SHA-512 output (see ``_salt.derive_salt``)."""


def random_scalar() -> bytes:
    """A fresh secret scalar, uniform in [1, L) (libsodium's CSPRNG)."""
    while True:
        scalar: bytes = pysodium.crypto_core_ristretto255_scalar_random()
        if any(scalar):
            return scalar


def check_scalar(scalar: bytes) -> bytes:
    """Refuse a scalar of the wrong size or zero (zero would blind every id to the identity)."""
    if not isinstance(scalar, bytes) or len(scalar) != SCALAR_BYTES or not any(scalar):
        raise ValueError(f"a PSI secret must be a non-zero {SCALAR_BYTES}-byte ristretto255 scalar")
    return scalar


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
