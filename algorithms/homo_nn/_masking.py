"""Primitives of pairwise-masked secure aggregation (Bonawitz et al., CCS'17), no protocol here.

- Each pair of clients derives a pairwise seed per round from its pair key
  (``federation.PairKeys``); the pair's mask is a ChaCha20 keystream over it,
  added by one and subtracted by the other, so masks cancel in the sum and the
  arbiter sees only the sum.
- Each client also adds a self-mask from a fresh 16-byte seed ``b``; it guards
  the case where the arbiter wrongly treats a slow client as dropped.
- Seeds are Shamir-shared (``fedspark.crypto``, over GF(2^521 − 1); see there
  why not pycryptodome's) among the client's group and sealed for each holder
  (NaCl secretbox under a key from the pair key), so the survivors can recover
  a survivor's self-mask; a dropped client's pairwise masks are removed from the
  seeds the survivors reveal.
- Values are fixed-point integers mod 2^64 (numpy ``uint64`` wraps), so masked
  sums are exact; the only error is the rounding of each client's value.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from types import ModuleType
from typing import Any

import numpy as np

from fedspark.algorithms.homo_nn._errors import NetworkError
from fedspark.crypto import combine_secret as combine_secret  # Shamir sharing, for the protocol
from fedspark.crypto import split_secret as split_secret

SEED_BYTES = 16
KEY_BYTES = 32


@functools.cache
def _nacl() -> ModuleType:
    """PyNaCl's libsodium bindings, imported once: an import statement inside a function
    that a hundred simulated clients call at once serialises them on the import lock."""
    from nacl import bindings

    return bindings


@functools.cache
def _chacha20() -> Any:
    """pycryptodome's ChaCha20, imported once (see ``_nacl``)."""
    from Crypto.Cipher import ChaCha20

    return ChaCha20


def new_seed() -> bytes:
    return secrets.token_bytes(SEED_BYTES)


def keystream(key: bytes, size: int) -> bytes:
    """``size`` pseudo-random bytes from a 32-byte key (ChaCha20 keystream; each key is used for one stream)."""
    data: bytes = _chacha20().new(key=key, nonce=bytes(8)).encrypt(bytes(size))
    return data


def stream(key: bytes, size: int) -> np.ndarray:
    """``size`` pseudo-random uint64 words from a 16- or 32-byte key (ChaCha20 keystream)."""
    if len(key) != KEY_BYTES:
        key = hashlib.blake2b(key, digest_size=KEY_BYTES, person=b"fedspark-self").digest()
    return np.frombuffer(keystream(key, 8 * size), dtype="<u8").astype(np.uint64)


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


def mask_pads(me: str, self_seed: bytes, pair_seeds: dict[str, bytes], size: int) -> np.ndarray:
    """PRG(b) + Σ_v ±PRG(s_uv) mod 2^64 from the self-mask seed and each peer's pairwise seed: everything a
    masked update adds, computed before the update exists."""
    y: np.ndarray = stream(self_seed, size)
    for peer, seed in pair_seeds.items():
        pad = stream(seed, size)
        y = y + pad if pair_sign(me, peer) > 0 else y - pad
    return y


def seal(key: bytes, message: bytes) -> bytes:
    """Authenticated encryption under a 32-byte key only the two peers hold (NaCl secretbox:
    nonce ‖ ciphertext); the arbiter relays it unread and cannot forge it."""
    nacl = _nacl()
    nonce = secrets.token_bytes(nacl.crypto_secretbox_NONCEBYTES)
    return nonce + bytes(nacl.crypto_secretbox(message, nonce, key))


def unseal(key: bytes, sealed: bytes) -> bytes:
    """Open what ``seal`` sealed under the same key; raises on any tampering."""
    nacl = _nacl()
    size = nacl.crypto_secretbox_NONCEBYTES
    return bytes(nacl.crypto_secretbox_open(sealed[size:], sealed[:size], key))
