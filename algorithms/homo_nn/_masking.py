"""Primitives of pairwise-masked secure aggregation (Bonawitz et al., CCS'17), no protocol here.

- X25519 key agreement (PyNaCl) gives each pair of clients a shared secret; the
  pair's mask is a ChaCha20 keystream over it, added by one and subtracted by
  the other, so masks cancel in the sum and the arbiter sees only the sum.
- Each client also adds a self-mask from a fresh 16-byte seed ``b``; it guards
  the case where the arbiter wrongly treats a slow client as dropped.
- Seeds and the 32-byte masking key are Shamir-shared (pycryptodome, 16-byte
  secrets, the key as two halves) among the round's clients, so the survivors
  can remove a dropped client's pairwise masks — and the arbiter can never hold
  both ``b_u`` and ``s_u`` of the same client.
- Values are fixed-point integers mod 2^64 (numpy ``uint64`` wraps), so masked
  sums are exact; the only error is the rounding of each client's value.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fedspark.algorithms.homo_nn._errors import NetworkError

SEED_BYTES = 16
KEY_BYTES = 32


@dataclass(frozen=True)
class KeyPair:
    secret: bytes
    public: bytes

    @classmethod
    def generate(cls) -> KeyPair:
        from nacl.public import PrivateKey

        key = PrivateKey.generate()
        return cls(bytes(key), bytes(key.public_key))


def agree(secret: bytes, peer_public: bytes) -> bytes:
    """The X25519 shared secret, hashed into a 32-byte stream key (never used raw)."""
    from nacl.bindings import crypto_scalarmult

    return hashlib.blake2b(crypto_scalarmult(secret, peer_public), digest_size=KEY_BYTES, person=b"fedspark-mask").digest()


def new_seed() -> bytes:
    return secrets.token_bytes(SEED_BYTES)


def stream(key: bytes, size: int) -> np.ndarray:
    """``size`` pseudo-random uint64 words from a 16- or 32-byte key (ChaCha20 keystream)."""
    from Crypto.Cipher import ChaCha20

    if len(key) != KEY_BYTES:
        key = hashlib.blake2b(key, digest_size=KEY_BYTES, person=b"fedspark-self").digest()
    cipher = ChaCha20.new(key=key, nonce=bytes(8))
    return np.frombuffer(cipher.encrypt(bytes(8 * size)), dtype="<u8").astype(np.uint64)


def pair_sign(me: str, peer: str) -> int:
    """+1 for the lower id of a pair, -1 for the higher: the two masks cancel."""
    return 1 if me < peer else -1


def quantise(values: np.ndarray, frac_bits: int, n_clients: int) -> np.ndarray:
    """Round to fixed point and wrap into uint64; refuses values whose sum over
    ``n_clients`` could overflow the signed 64-bit range."""
    limit = float(2 ** (62 - frac_bits)) / max(n_clients, 1)
    peak = float(np.max(np.abs(values))) if values.size else 0.0
    if not np.isfinite(peak) or peak >= limit:
        raise NetworkError(
            f"an update value of magnitude {peak:.3g} does not fit {frac_bits} fractional bits for "
            f"{n_clients} clients (limit {limit:.3g}); lower secure.frac_bits"
        )
    return np.round(values * float(2**frac_bits)).astype(np.int64).view(np.uint64)


def dequantise(total: np.ndarray, frac_bits: int) -> np.ndarray:
    return total.view(np.int64).astype(np.float64) / float(2**frac_bits)


def mask_vector(
    q: np.ndarray, me: str, self_seed: bytes, secret: bytes, peers: dict[str, bytes]
) -> np.ndarray:
    """y = q + PRG(b) + Σ_v ±PRG(s_uv) mod 2^64 over the round's other clients ``peers``."""
    y: np.ndarray = q + stream(self_seed, q.size)
    for peer, public in peers.items():
        if peer == me:
            continue
        pad = stream(agree(secret, public), q.size)
        y = y + pad if pair_sign(me, peer) > 0 else y - pad
    return y


def split_secret(secret: bytes, threshold: int, count: int) -> list[bytes]:
    """``count`` Shamir shares (index i+1 -> element i) of a 16- or 32-byte secret; each share
    is the concatenation of the halves' 16-byte shares."""
    from Crypto.Protocol.SecretSharing import Shamir

    if len(secret) % SEED_BYTES:
        raise ValueError(f"secret of {len(secret)} bytes is not a multiple of {SEED_BYTES}")
    parts = [
        Shamir.split(threshold, count, secret[i : i + SEED_BYTES], ssss=False)
        for i in range(0, len(secret), SEED_BYTES)
    ]
    return [b"".join(part[j][1] for part in parts) for j in range(count)]


def combine_secret(shares: Sequence[tuple[int, bytes]]) -> bytes:
    """The secret from at least ``threshold`` (index, share) pairs of ``split_secret``."""
    from Crypto.Protocol.SecretSharing import Shamir

    width = len(shares[0][1])
    return b"".join(
        Shamir.combine([(index, share[i : i + SEED_BYTES]) for index, share in shares], ssss=False)
        for i in range(0, width, SEED_BYTES)
    )


def seal(secret: bytes, peer_public: bytes, message: bytes) -> bytes:
    """Authenticated encryption of a share for one peer (NaCl Box); the arbiter relays it unread."""
    from nacl.public import Box, PrivateKey, PublicKey

    return bytes(Box(PrivateKey(secret), PublicKey(peer_public)).encrypt(message))


def unseal(secret: bytes, peer_public: bytes, sealed: bytes) -> bytes:
    from nacl.public import Box, PrivateKey, PublicKey

    return bytes(Box(PrivateKey(secret), PublicKey(peer_public)).decrypt(sealed))
