"""Crypto errors: each names the setting or value range that was violated.

::

    CryptoError (fedspark.common)
    ├── InsecureKeySize      a key below 2048 bits without the explicit opt-in
    │   └── PeerKeyTooSmall  a peer sent a key below this party's own minimum
    ├── KeyMismatch          ciphertexts, pools or keys from another key pair
    ├── EncodingOverflow     a value outside the fixed-point range of the job
    │   ├── DecodingOverflow a decrypted result fell into the overflow band
    │   └── PackingOverflow  a value outside the clipping range of a packer
    └── ObfuscatorReuse      an obfuscator pool was copied or serialised
"""

from __future__ import annotations

import math

from fedspark.common import CryptoError


class InsecureKeySize(CryptoError):
    """A key below the secure minimum was asked for without the explicit opt-in."""

    def __init__(self, key_size: int, minimum: int) -> None:
        super().__init__(
            f"Paillier key size {key_size} bits is below the secure minimum of {minimum}; "
            "lower the minimum (the party's own --min-key-size) only for tests and benchmarks"
        )
        self.key_size, self.minimum = key_size, minimum


class PeerKeyTooSmall(InsecureKeySize):
    """A public key received from a peer is shorter than this party's own minimum.

    Why each party checks: the key holder alone chooses the key, and a short
    modulus lets it (or anyone who factors it) read every ciphertext the others
    encrypt. The minimum is the receiving party's own setting, never the job's.
    """

    def __init__(self, sender: str, key_size: int, minimum: int) -> None:
        CryptoError.__init__(
            self,
            f"{sender} sent a {key_size}-bit Paillier key; this party accepts no key under {minimum} bits "
            "(its own minimum: lower it with --min-key-size only for tests and benchmarks)",
        )
        self.sender, self.key_size, self.minimum = sender, key_size, minimum


class KeyMismatch(CryptoError):
    """Ciphertexts or a key from another key pair were combined with this one."""

    def __init__(self, expected: str, got: str) -> None:
        super().__init__(f"Paillier key mismatch: expected key {expected}, got key {got}")
        self.expected, self.got = expected, got


class EncodingOverflow(CryptoError, ValueError):
    """A value does not fit the fixed-point range of the key and precision.

    The message names the value, the encodable range ±limit, the number of
    fractional bits and the resulting resolution, so the user can tell whether
    to lower the precision (range too small) or rescale the data.
    """

    def __init__(self, value: float, limit: float, frac_bits: int, *, what: str = "value") -> None:
        side = "not a number" if math.isnan(value) else "below the minimum" if value < 0 else "above the maximum"
        super().__init__(
            f"{what} {value!r} is outside the encodable range ±{_magnitude(limit)} ({side}) "
            f"at {frac_bits} fractional bits of precision (resolution 2^-{frac_bits} = {2.0**-frac_bits:.3g})"
        )
        self.value, self.limit, self.frac_bits = value, limit, frac_bits


class DecodingOverflow(EncodingOverflow):
    """A decrypted integer lies in the band no in-range result can reach.

    Sums and products of in-range values that leave ±limit wrap into the
    middle third of [0, n); decoding refuses them instead of returning garbage.
    """

    def __init__(self, limit: float, frac_bits: int, *, what: str = "decrypted result") -> None:
        CryptoError.__init__(
            self,
            f"{what} overflowed: a sum or product left the range ±{_magnitude(limit)} "
            f"at {frac_bits} fractional bits of precision (resolution 2^-{frac_bits} = {2.0**-frac_bits:.3g})",
        )
        self.value, self.limit, self.frac_bits = float("inf"), limit, frac_bits


def _magnitude(limit: float) -> str:
    """A range bound as a float, or as a power of two when it exceeds float range."""
    if isinstance(limit, int) and limit.bit_length() > 1000:
        return f"2^{limit.bit_length() - 1}"
    return f"{float(limit):.6g}"


class PackingOverflow(EncodingOverflow):
    """A value lies outside ±clip of a packer; its slot could not hold it."""

    def __init__(self, value: float, clip: float, slot_bits: int, value_bits: int, step: float) -> None:
        CryptoError.__init__(
            self,
            f"value {value!r} is outside the packing range ±{clip:.6g} "
            f"({value_bits}-bit values in {slot_bits}-bit slots, step {step:.3g}); "
            "raise 'clip' or pass overflow='clip' to saturate instead",
        )
        self.value, self.limit, self.frac_bits = value, clip, value_bits
        self.slot_bits, self.value_bits, self.step = slot_bits, value_bits, step


class ObfuscatorReuse(CryptoError):
    """An obfuscator pool was copied, serialised or fed twice.

    Two copies of a pool would hand out the same r^n to two encryptions, and
    c1 / c2 = (1+n)^(m1-m2) reveals m1 - m2 to anyone. So pools refuse it.
    """

    def __init__(self, action: str) -> None:
        super().__init__(
            f"obfuscator pool cannot be {action}: each obfuscator must be used exactly once; "
            "create a new pool in each process instead"
        )
        self.action = action
