"""Paillier key pairs on top of ``phe``, with homomorphic operations on raw integers.

Why raw integers: fedspark encodes every value of a job with one fixed-point
precision (see ``_fixed_point``), so ciphertexts add without phe's per-value
exponent alignment, and they travel as fixed-width big-endian bytes. The keys
are phe's own objects (``n``, ``g = n + 1``, ``p``, ``q``), so ciphertexts
interoperate with phe in both directions.

Security defaults: 2048-bit keys; anything smaller is refused unless the caller
passes ``allow_insecure_key_size=True``, which the job records in its outputs.
Encryption always uses fresh randomness (phe draws r from ``random.SystemRandom``).
Homomorphic products use gmpy2, which phe also uses when it is installed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import gmpy2
from phe import paillier

from fedspark.crypto._errors import InsecureKeySize, KeyMismatch

SECURE_MIN_KEY_SIZE = 2048
DEFAULT_KEY_SIZE = 2048


@dataclass(frozen=True)
class PublicKey:
    """The encrypting half; safe to send to every party."""

    n: int
    _phe: paillier.PaillierPublicKey = field(repr=False, compare=False)

    @classmethod
    def from_n(cls, n: int) -> PublicKey:
        return cls(n, paillier.PaillierPublicKey(n))

    @classmethod
    def from_phe(cls, key: paillier.PaillierPublicKey) -> PublicKey:
        return cls(key.n, key)

    def to_phe(self) -> paillier.PaillierPublicKey:
        return self._phe

    @property
    def nsquare(self) -> int:
        return self._phe.nsquare

    @property
    def key_size(self) -> int:
        return self.n.bit_length()

    @property
    def ciphertext_width(self) -> int:
        """Bytes of one ciphertext (an integer below n²) as fixed-width big-endian."""
        return (self.nsquare.bit_length() + 7) // 8

    @property
    def fingerprint(self) -> str:
        """Short digest of n, used in logs and to detect key mix-ups."""
        return hashlib.sha256(self.n.to_bytes((self.n.bit_length() + 7) // 8, "big")).hexdigest()[:16]

    def to_dict(self) -> dict[str, int]:
        return {"n": self.n}

    @classmethod
    def from_dict(cls, data: dict[str, int]) -> PublicKey:
        return cls.from_n(int(data["n"]))

    def check_same(self, other: PublicKey) -> None:
        if other.n != self.n:
            raise KeyMismatch(self.fingerprint, other.fingerprint)

    # --- encryption -------------------------------------------------------
    def encrypt(self, plaintext: int) -> int:
        """Encrypt an integer in [0, n) with fresh randomness (phe's raw encryption)."""
        return int(self._phe.raw_encrypt(plaintext % self.n))

    def encrypt_many(self, plaintexts: Iterable[int]) -> list[int]:
        return [self.encrypt(m) for m in plaintexts]

    # --- homomorphic operations on ciphertext integers ---------------------
    def add(self, c1: int, c2: int) -> int:
        """[[a]] ⊕ [[b]] = [[a + b]]."""
        return int(gmpy2.mul(c1, c2) % self.nsquare)

    def add_plain(self, c: int, m: int) -> int:
        """[[a]] ⊕ m = [[a + m]] without re-randomising: (1 + m·n) is g^m."""
        return int(gmpy2.mul(c, (1 + (m % self.n) * self.n) % self.nsquare) % self.nsquare)

    def mul_plain(self, c: int, k: int) -> int:
        """[[a]] ⊗ k = [[a · k]]; a negative k uses one modular inverse, not n − |k|."""
        if k < 0:
            return int(gmpy2.powmod(gmpy2.invert(c, self.nsquare), -k, self.nsquare))
        return int(gmpy2.powmod(c, k, self.nsquare))

    def sum(self, ciphertexts: Iterable[int]) -> int:
        """⊕ of many ciphertexts; the empty sum is the (deterministic) encryption of 0."""
        ns = self.nsquare
        acc = gmpy2.mpz(1)
        for c in ciphertexts:
            acc = gmpy2.mul(acc, c) % ns
        return int(acc)

    def dot(self, ciphertexts: Sequence[int], scalars: Sequence[int]) -> int:
        """Σ k_i·[[a_i]] = Π c_i^{k_i}: positive and negative scalars are multiplied
        separately and joined with one modular inverse, so exponents stay short."""
        ns = self.nsquare
        pos = gmpy2.mpz(1)
        neg = gmpy2.mpz(1)
        for c, k in zip(ciphertexts, scalars, strict=True):
            if k > 0:
                pos = gmpy2.mul(pos, gmpy2.powmod(c, k, ns)) % ns
            elif k < 0:
                neg = gmpy2.mul(neg, gmpy2.powmod(c, -k, ns)) % ns
        if neg != 1:
            pos = gmpy2.mul(pos, gmpy2.invert(neg, ns)) % ns
        return int(pos)


@dataclass(frozen=True)
class PrivateKey:
    """The decrypting half; never leaves the party that generated it (the arbiter)."""

    public_key: PublicKey
    _phe: paillier.PaillierPrivateKey = field(repr=False, compare=False)

    @classmethod
    def from_phe(cls, key: paillier.PaillierPrivateKey) -> PrivateKey:
        return cls(PublicKey.from_phe(key.public_key), key)

    def to_phe(self) -> paillier.PaillierPrivateKey:
        return self._phe

    def decrypt(self, ciphertext: int) -> int:
        """Decrypt to an integer in [0, n) (CRT decryption, as phe does)."""
        return int(self._phe.raw_decrypt(ciphertext))

    def decrypt_many(self, ciphertexts: Iterable[int]) -> list[int]:
        return [self.decrypt(c) for c in ciphertexts]


def generate_keypair(
    key_size: int = DEFAULT_KEY_SIZE, *, allow_insecure_key_size: bool = False
) -> tuple[PublicKey, PrivateKey]:
    """Generate a Paillier key pair with phe; sizes under 2048 bits need the opt-in."""
    if key_size < SECURE_MIN_KEY_SIZE and not allow_insecure_key_size:
        raise InsecureKeySize(key_size, SECURE_MIN_KEY_SIZE)
    public, private = paillier.generate_paillier_keypair(n_length=key_size)
    return PublicKey.from_phe(public), PrivateKey.from_phe(private)
