"""Paillier key pairs with gmpy2 arithmetic, interoperable with ``phe``.

Why raw integers: fedspark encodes every value of a job with one fixed-point
precision (see ``_fixed_point``), so ciphertexts add without phe's per-value
exponent alignment, and they travel as fixed-width big-endian bytes. The keys
have phe's shape (``n``, ``g = n + 1``, ``p``, ``q``) and wrap phe's own key
objects, so ciphertexts interoperate with phe in both directions.

Speed: encryption takes its r^n from an :class:`ObfuscatorPool` (short DJN
exponents over a fixed-base table, see ``_obfuscators``) and computes
(1 + m·n)·r^n as r^n + n·(m·r^n mod n): one |n|-bit multiplication instead of
an exponentiation. Σ x_i·[[d_i]] is a bucket multi-exponentiation
(``_multiexp``). Decryption is CRT with per-key constants; a batch is two
``powmod_base_list`` calls, which release the GIL, so ``workers=2`` uses two cores.

Security defaults: 2048-bit keys; anything smaller is refused unless the caller
passes ``allow_insecure_key_size=True``, which the job records in its outputs.
Every random value comes from ``secrets``.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import gmpy2
import numpy as np
import numpy.typing as npt
from gmpy2 import mpz
from phe import paillier

from fedspark.crypto._errors import KeyMismatch, PeerKeyTooSmall
from fedspark.crypto._keygen import (
    DEFAULT_KEY_SIZE,
    SECURE_MIN_KEY_SIZE,
    generate_primes,
)
from fedspark.crypto._multiexp import (
    multi_exp_columns,
    signed_digit_product,
    signed_multi_exp,
)
from fedspark.crypto._obfuscators import Exponent, ObfuscatorPool

__all__ = [
    "DEFAULT_KEY_SIZE", "SECURE_MIN_KEY_SIZE", "Obfuscation", "PrivateKey", "PublicKey", "check_peer_key",
    "generate_keypair",
]


class Obfuscation(str, Enum):
    """Where an encryption's r^n comes from."""

    POOL = "pool"
    """From the key's :class:`ObfuscatorPool` (default: DJN short exponents, precomputed)."""
    FRESH_RN = "fresh_rn"
    """phe's way: r uniform in Z_n^*, r^n by a full exponentiation (~100× slower; for comparison)."""


@dataclass
class _PublicState:
    """Per-instance caches: n and n² as mpz, and the lazily created default pool."""

    n: mpz
    nsquare: mpz
    pool: ObfuscatorPool | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(frozen=True)
class PublicKey:
    """The encrypting half; safe to send to every party."""

    n: int
    _phe: paillier.PaillierPublicKey = field(repr=False, compare=False)
    _state: _PublicState = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = mpz(self.n)
        object.__setattr__(self, "_state", _PublicState(n, n * n))

    def __reduce__(self) -> tuple[Any, tuple[int]]:
        """Serialise n only: a copied obfuscator pool would reuse obfuscators."""
        return (PublicKey.from_n, (self.n,))

    @classmethod
    def from_n(cls, n: int) -> PublicKey:
        return cls(int(n), paillier.PaillierPublicKey(int(n)))

    @classmethod
    def from_phe(cls, key: paillier.PaillierPublicKey) -> PublicKey:
        return cls(key.n, key)

    def to_phe(self) -> paillier.PaillierPublicKey:
        return self._phe

    @property
    def nsquare(self) -> int:
        return int(self._state.nsquare)

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

    # --- obfuscators ------------------------------------------------------
    @property
    def obfuscator_pool(self) -> ObfuscatorPool:
        """This key's default pool (short exponents), created on first use."""
        state = self._state
        with state.lock:
            if state.pool is None:
                state.pool = ObfuscatorPool(self.n, Exponent.SHORT)
            return state.pool

    def use_obfuscator_pool(self, pool: ObfuscatorPool) -> None:
        """Make ``pool`` (e.g. ``Exponent.FULL``, or pre-filled) the default of this key object."""
        if pool.n != self.n:
            raise KeyMismatch(self.fingerprint, PublicKey.from_n(pool.n).fingerprint)
        with self._state.lock:
            self._state.pool = pool

    def _pool(self, pool: ObfuscatorPool | None) -> ObfuscatorPool:
        """``pool``, or this key's default pool; a pool of another key is refused."""
        source = pool if pool is not None else self.obfuscator_pool
        if source.n != self.n:
            raise KeyMismatch(self.fingerprint, PublicKey.from_n(source.n).fingerprint)
        return source

    # --- encryption -------------------------------------------------------
    def encrypt(
        self, plaintext: int, *, obfuscation: Obfuscation = Obfuscation.POOL, pool: ObfuscatorPool | None = None
    ) -> int:
        """Encrypt an integer (taken mod n) with an obfuscator used for this value only."""
        return self.encrypt_many([plaintext], obfuscation=obfuscation, pool=pool)[0]

    def encrypt_many(
        self,
        plaintexts: Iterable[int],
        *,
        obfuscation: Obfuscation = Obfuscation.POOL,
        pool: ObfuscatorPool | None = None,
    ) -> list[int]:
        """Encrypt each integer; obfuscators come from ``pool`` (default: the key's pool)."""
        ms = [int(m) for m in plaintexts]
        if Obfuscation(obfuscation) is Obfuscation.FRESH_RN:
            obfuscators = [self.fresh_rn() for _ in ms]
        else:
            obfuscators = self._pool(pool).take(len(ms))
        return [self.encrypt_with(m, o) for m, o in zip(ms, obfuscators)]

    def encrypt_with(self, plaintext: int, obfuscator: int) -> int:
        """(1 + m·n)·o mod n² computed as o + n·(m·o mod n): one |n|-bit product.

        The caller guarantees ``obfuscator`` is a fresh n-th residue never used before.
        """
        n, ns = self._state.n, self._state.nsquare
        c = obfuscator + n * (plaintext * (obfuscator % n) % n)
        return int(c - ns if c >= ns else c)

    def fresh_rn(self) -> mpz:
        """phe-style obfuscator r^n mod n² for a uniform unit r: the slow reference path."""
        n = self._state.n
        while True:
            r = mpz(secrets.randbelow(self.n - 1) + 1)
            if gmpy2.gcd(r, n) == 1:
                return gmpy2.powmod(r, n, self._state.nsquare)

    # --- homomorphic operations on ciphertext integers ---------------------
    def add(self, c1: int, c2: int) -> int:
        """[[a]] ⊕ [[b]] = [[a + b]]."""
        return int(mpz(c1) * c2 % self._state.nsquare)

    def add_plain(self, c: int, m: int) -> int:
        """[[a]] ⊕ m = [[a + m]] without re-randomising: c·(1 + m·n) = c + n·(m·c mod n)."""
        return self.encrypt_with(int(m) % self.n, mpz(c))

    def mul_plain(self, c: int, k: int) -> int:
        """[[a]] ⊗ k = [[a · k]]; a negative k uses one modular inverse, not n − |k|."""
        ns = self._state.nsquare
        if k < 0:
            return int(gmpy2.powmod(gmpy2.invert(mpz(c), ns), -k, ns))
        return int(gmpy2.powmod(mpz(c), k, ns))

    def rerandomise(self, ciphertexts: Sequence[int], *, pool: ObfuscatorPool | None = None) -> list[int]:
        """Each ciphertext times a fresh obfuscator r^n: the same plaintexts, unlinkable randomness.

        Why: ``add_plain``, ``mul_plain``, ``sum`` and ``dot`` keep the randomness
        of their inputs. A ciphertext built from a peer's [[a]] and sent back to
        it lets the peer divide [[a]] out and read the rest in plaintext (a
        quotient of the form 1 + m·n). One pooled multiplication per value.
        """
        ns = self._state.nsquare
        return [int(mpz(c) * o % ns) for c, o in zip(ciphertexts, self._pool(pool).take(len(ciphertexts)))]

    def sum(self, ciphertexts: Iterable[int]) -> int:
        """⊕ of many ciphertexts; the empty sum is the (deterministic) encryption of 0."""
        ns = self._state.nsquare
        acc = mpz(1)
        for c in ciphertexts:
            acc = acc * c % ns
        return int(acc)

    def dot(self, ciphertexts: Sequence[int], scalars: Sequence[int]) -> int:
        """Σ k_i·[[a_i]] = Π c_i^{k_i} by the bucket method; negative k_i via one inverse.

        Scalars below 2^62 in magnitude take the signed-digit path of ``dot_many``;
        larger ones (any Python int) the generic bucket path.
        """
        if len(ciphertexts) != len(scalars):
            raise ValueError(f"{len(ciphertexts)} ciphertexts but {len(scalars)} scalars")
        ks = [int(k) for k in scalars]
        bases = [mpz(c) for c in ciphertexts]
        if not ks or max(abs(min(ks)), abs(max(ks))) < 1 << 62:
            return int(signed_digit_product(bases, np.array(ks, dtype=np.int64), self._state.nsquare))
        return int(signed_multi_exp(bases, ks, self._state.nsquare))

    def dot_many(
        self, ciphertexts: Sequence[int], matrix: npt.ArrayLike, *, workers: int = 1, window: int | None = None
    ) -> list[int]:
        """X^T[[d]]: for each column j of an (n_rows, d) integer matrix, Σ_i x_ij·[[d_i]].

        One bucket multi-exponentiation per column over shared bases; ``workers``
        threads split the columns (gmpy2 releases the GIL).
        """
        bases = [mpz(c) for c in ciphertexts]
        xs = np.asarray(matrix)
        if xs.ndim == 1:
            xs = xs.reshape(-1, 1)
        if xs.size == 0:
            return [1] * (xs.shape[1] if xs.ndim == 2 else 0)
        return [int(r) for r in multi_exp_columns(bases, xs, self._state.nsquare, window=window, workers=workers)]


@dataclass(frozen=True)
class _CRT:
    """Per-key decryption constants (computed once, as phe does per key)."""

    p: mpz
    q: mpz
    p_minus_1: mpz
    q_minus_1: mpz
    psquare: mpz
    qsquare: mpz
    hp: mpz
    hq: mpz
    q_inv_p: mpz

    @classmethod
    def from_pq(cls, p: int, q: int) -> _CRT:
        p_, q_ = mpz(p), mpz(q)
        n = p_ * q_
        psquare, qsquare = p_ * p_, q_ * q_
        # h_p = L_p(g^(p-1) mod p²)^(-1) mod p with g = n + 1
        hp = gmpy2.invert((gmpy2.powmod(n + 1, p_ - 1, psquare) - 1) // p_, p_)
        hq = gmpy2.invert((gmpy2.powmod(n + 1, q_ - 1, qsquare) - 1) // q_, q_)
        return cls(p_, q_, p_ - 1, q_ - 1, psquare, qsquare, hp, hq, gmpy2.invert(q_, p_))

    def combine(self, up: mpz, uq: mpz) -> int:
        """m from c^(p-1) mod p² and c^(q-1) mod q²: two L functions and Garner's CRT."""
        p, q = self.p, self.q
        mp = (up - 1) // p * self.hp % p
        mq = (uq - 1) // q * self.hq % q
        return int(mq + q * ((mp - mq) * self.q_inv_p % p))


@dataclass(frozen=True)
class PrivateKey:
    """The decrypting half; never leaves the party that generated it (the arbiter)."""

    public_key: PublicKey
    _phe: paillier.PaillierPrivateKey = field(repr=False, compare=False)
    _crt: _CRT = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_crt", _CRT.from_pq(self._phe.p, self._phe.q))

    @classmethod
    def from_phe(cls, key: paillier.PaillierPrivateKey) -> PrivateKey:
        return cls(PublicKey.from_phe(key.public_key), key)

    @classmethod
    def from_pq(cls, p: int, q: int) -> PrivateKey:
        """The key pair of primes p, q (phe's own constructor checks p·q = n)."""
        public = PublicKey.from_n(int(p) * int(q))
        return cls(public, paillier.PaillierPrivateKey(public.to_phe(), int(p), int(q)))

    def to_phe(self) -> paillier.PaillierPrivateKey:
        return self._phe

    def decrypt(self, ciphertext: int) -> int:
        """Decrypt to an integer in [0, n) (CRT decryption)."""
        crt = self._crt
        c = mpz(ciphertext)
        return crt.combine(gmpy2.powmod(c, crt.p_minus_1, crt.psquare), gmpy2.powmod(c, crt.q_minus_1, crt.qsquare))

    def decrypt_many(self, ciphertexts: Iterable[int], *, workers: int = 1) -> list[int]:
        """Decrypt a batch: the mod-p² and mod-q² exponentiations as two list calls.

        ``powmod_base_list`` releases the GIL, so with ``workers`` >= 2 the p and
        q halves (split further for more workers) run on separate cores.
        """
        cs = [mpz(c) for c in ciphertexts]
        if not cs:
            return []
        crt = self._crt
        if workers <= 1:
            ups = gmpy2.powmod_base_list(cs, crt.p_minus_1, crt.psquare)
            uqs = gmpy2.powmod_base_list(cs, crt.q_minus_1, crt.qsquare)
        else:
            per_half = max(1, workers // 2)
            step = -(-len(cs) // per_half)
            chunks = [cs[i : i + step] for i in range(0, len(cs), step)]
            tasks = [(chunk, crt.p_minus_1, crt.psquare) for chunk in chunks]
            tasks += [(chunk, crt.q_minus_1, crt.qsquare) for chunk in chunks]
            with ThreadPoolExecutor(max_workers=min(workers, len(tasks))) as pool:
                parts = list(pool.map(lambda t: gmpy2.powmod_base_list(*t), tasks))
            ups = [u for part in parts[: len(chunks)] for u in part]
            uqs = [u for part in parts[len(chunks) :] for u in part]
        return [crt.combine(up, uq) for up, uq in zip(ups, uqs)]


def check_peer_key(public_key: PublicKey, minimum: int, *, sender: str) -> PublicKey:
    """``public_key`` if its modulus has at least ``minimum`` bits, else :class:`PeerKeyTooSmall` naming ``sender``."""
    if public_key.key_size < minimum:
        raise PeerKeyTooSmall(sender, public_key.key_size, minimum)
    return public_key


def generate_keypair(
    key_size: int = DEFAULT_KEY_SIZE, *, allow_insecure_key_size: bool = False
) -> tuple[PublicKey, PrivateKey]:
    """Generate a Paillier key pair (n = p·q, g = n + 1); sizes under 2048 bits need the opt-in.

    Returns (public, private); both wrap phe key objects built from the same p, q.
    """
    p, q = generate_primes(key_size, allow_insecure_key_size=allow_insecure_key_size)
    private = PrivateKey.from_pq(p, q)
    return private.public_key, private
