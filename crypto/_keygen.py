"""Paillier key generation with gmpy2 primes and ``secrets`` randomness.

The keys have phe's shape (n = p·q, g = n + 1, |p| = |q| = |n|/2), so phe's
``PaillierPublicKey(n)`` / ``PaillierPrivateKey(pub, p, q)`` wrap them and the
ciphertexts interoperate both ways. Candidates come from ``secrets`` (the OS
CSPRNG), never from ``random``; each prime has its top two bits set so n has
exactly ``key_size`` bits, and p, q are kept far apart so n cannot be factored
by Fermat's method (|p − q| > 2^(|n|/2 − 100), as FIPS 186-5 asks for RSA).
"""

from __future__ import annotations

import math
import secrets

import gmpy2

from fedspark.crypto._errors import InsecureKeySize

SECURE_MIN_KEY_SIZE = 2048
DEFAULT_KEY_SIZE = 2048
_MIN_TEST_KEY_SIZE = 256
_MILLER_RABIN_ROUNDS = 40

# NIST SP 800-57 Part 1 rev. 5, table 2: bits of security of an RSA-type modulus.
_NIST_LEVELS = {1024: 80, 2048: 112, 3072: 128, 7680: 192, 15360: 256}


def security_level(key_size: int) -> int:
    """Bits of security of a modulus of ``key_size`` bits (2048 → 112).

    Table sizes use NIST SP 800-57; other sizes use the GNFS estimate of NIST
    SP 800-56B rev. 2, appendix D, rounded *up* to a multiple of 8, because
    the result sizes secret exponents, where more is the safe side.
    """
    if key_size in _NIST_LEVELS:
        return _NIST_LEVELS[key_size]
    ln_n = key_size * math.log(2)
    estimate: float = (1.923 * (ln_n * math.log(ln_n) ** 2) ** (1 / 3) - 4.69) / math.log(2)
    return max(8, 8 * math.ceil(estimate / 8))


def random_prime(bits: int) -> int:
    """A uniformly drawn prime of exactly ``bits`` bits with the top two bits set."""
    top = (1 << (bits - 1)) | (1 << (bits - 2)) | 1
    while True:
        candidate = gmpy2.mpz(secrets.randbits(bits) | top)
        if gmpy2.is_prime(candidate, _MILLER_RABIN_ROUNDS):
            return int(candidate)


def generate_primes(key_size: int, *, allow_insecure_key_size: bool = False) -> tuple[int, int]:
    """Two distinct primes p, q whose product has exactly ``key_size`` bits."""
    if key_size < SECURE_MIN_KEY_SIZE and not allow_insecure_key_size:
        raise InsecureKeySize(key_size, SECURE_MIN_KEY_SIZE)
    if key_size < _MIN_TEST_KEY_SIZE or key_size % 2:
        raise ValueError(f"key_size must be an even number of bits >= {_MIN_TEST_KEY_SIZE}, got {key_size}")
    half = key_size // 2
    min_gap = 1 << max(half - 100, half // 2)
    while True:
        p, q = random_prime(half), random_prime(half)
        n = p * q
        if abs(p - q) > min_gap and n.bit_length() == key_size and math.gcd(n, (p - 1) * (q - 1)) == 1:
            return p, q
