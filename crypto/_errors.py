"""Crypto errors: each names the setting or value range that was violated."""

from __future__ import annotations

from fedspark.common import CryptoError


class InsecureKeySize(CryptoError):
    """A key below the secure minimum was asked for without the explicit opt-in."""

    def __init__(self, key_size: int, minimum: int) -> None:
        super().__init__(
            f"Paillier key size {key_size} bits is below the secure minimum of {minimum}; "
            "set 'allow_insecure_key_size: true' only for tests and benchmarks"
        )
        self.key_size, self.minimum = key_size, minimum


class KeyMismatch(CryptoError):
    """Ciphertexts or a key from another key pair were combined with this one."""

    def __init__(self, expected: str, got: str) -> None:
        super().__init__(f"Paillier key mismatch: expected key {expected}, got key {got}")
        self.expected, self.got = expected, got


class EncodingOverflow(CryptoError):
    """A value does not fit the fixed-point range of the key and precision."""

    def __init__(self, value: float, limit: float, frac_bits: int) -> None:
        super().__init__(
            f"value {value!r} is outside the encodable range ±{limit:.3g} "
            f"at {frac_bits} fractional bits of precision"
        )
        self.value, self.limit, self.frac_bits = value, limit, frac_bits
