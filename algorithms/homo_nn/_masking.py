"""Primitives of pairwise-masked secure aggregation (Bonawitz et al., CCS'17), no protocol here.

- X25519 key agreement (PyNaCl) gives each pair of clients a shared secret; the
  pair's mask is a ChaCha20 keystream over it, added by one and subtracted by
  the other, so masks cancel in the sum and the arbiter sees only the sum.
- Each client also adds a self-mask from a fresh 16-byte seed ``b``; it guards
  the case where the arbiter wrongly treats a slow client as dropped.
- Seeds and the 32-byte masking key are Shamir-shared (``fedspark.crypto``,
  over GF(2^521 − 1); see there why not pycryptodome's) among the round's clients, so the survivors
  can remove a dropped client's pairwise masks — and the arbiter can never hold
  both ``b_u`` and ``s_u`` of the same client.
- Values are fixed-point integers mod 2^64 (numpy ``uint64`` wraps), so masked
  sums are exact; the only error is the rounding of each client's value.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from dataclasses import dataclass
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


@dataclass(frozen=True)
class KeyPair:
    secret: bytes
    public: bytes

    @classmethod
    def generate(cls) -> KeyPair:
        public, secret = _nacl().crypto_box_keypair()
        return cls(bytes(secret), bytes(public))


def agree(secret: bytes, peer_public: bytes) -> bytes:
    """The X25519 shared secret, hashed into a 32-byte stream key (never used raw)."""
    shared = _nacl().crypto_scalarmult(secret, peer_public)
    return hashlib.blake2b(shared, digest_size=KEY_BYTES, person=b"fedspark-mask").digest()


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


def mask_pads(me: str, self_seed: bytes, secret: bytes, peers: dict[str, bytes], size: int) -> np.ndarray:
    """PRG(b) + Σ_v ±PRG(s_uv) mod 2^64: everything ``mask_vector`` adds, computed before the update exists
    (while the local training runs)."""
    return mask_vector(np.zeros(size, dtype=np.uint64), me, self_seed, secret, peers)


def box_key(secret: bytes, peer_public: bytes) -> bytes:
    """The NaCl box key of a pair (X25519 + HSalsa20), computed once per peer and used both
    to seal shares for it and to open its shares: one scalar multiplication, not one per message."""
    return bytes(_nacl().crypto_box_beforenm(peer_public, secret))


def seal(key: bytes, message: bytes) -> bytes:
    """Authenticated encryption of a share for one peer (NaCl box: nonce ‖ ciphertext);
    the arbiter relays it unread."""
    nacl = _nacl()
    nonce = secrets.token_bytes(nacl.crypto_box_NONCEBYTES)
    return nonce + bytes(nacl.crypto_box_easy_afternm(message, nonce, key))


def unseal(key: bytes, sealed: bytes) -> bytes:
    """Open a share sealed by ``seal`` with the same pair's key; raises on any tampering."""
    nacl = _nacl()
    size = nacl.crypto_box_NONCEBYTES
    return bytes(nacl.crypto_box_open_easy_afternm(sealed[size:], sealed[:size], key))
