"""Fixed-point encoding with one precision per job.

phe gives every EncryptedNumber its own exponent and aligns exponents before each
addition, which costs an exponentiation and leaks the magnitude of values through
the exponent. fedspark instead encodes every value of a job as round(v · 2^f) mod n
for one agreed ``frac_bits`` f. Products with an encoded plaintext scalar carry
2f fractional bits; the caller says how many when decoding.

Negative values wrap to n − |k|. The top and bottom thirds of [0, n) are the
positive and negative ranges; the middle third is "overflow" (as in phe), so a
sum that wrapped is detected at decoding instead of silently returning garbage.
Every range error names the value, the range ±(n/3)/2^f and the precision f.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from fedspark.crypto._errors import DecodingOverflow, EncodingOverflow

DEFAULT_FRAC_BITS = 32


class FixedPoint:
    """Encode floats to integers mod n at ``frac_bits`` fractional bits, and back."""

    def __init__(self, n: int, frac_bits: int = DEFAULT_FRAC_BITS) -> None:
        if frac_bits < 0:
            raise ValueError(f"frac_bits must be >= 0, got {frac_bits}")
        self.n = n
        self.frac_bits = frac_bits
        self.max_int = n // 3

    def limit(self, frac_bits: int | None = None) -> float | int:
        """Largest magnitude encodable (or decodable) at ``frac_bits`` (default: this codec's).

        An int when the bound exceeds the float range (keys of ~1100 bits and more).
        """
        bits = self.frac_bits if frac_bits is None else frac_bits
        try:
            return self.max_int / (1 << bits)
        except OverflowError:
            return self.max_int >> bits

    def encode_int(self, k: int) -> int:
        """Place a signed integer (already scaled) into [0, n)."""
        if abs(k) > self.max_int:
            raise EncodingOverflow(k / 2**self.frac_bits, self.limit(), self.frac_bits)
        return k % self.n

    def quantise(self, values: npt.ArrayLike, frac_bits: int | None = None) -> list[int]:
        """Signed integers round(v · 2^f), before reduction mod n (scalars for ⊗).

        NaN and ±inf raise :class:`EncodingOverflow`, which names the precision.
        """
        bits = self.frac_bits if frac_bits is None else frac_bits
        arr = np.asarray(values, dtype=np.float64).ravel()
        finite = np.isfinite(arr)
        if not finite.all():
            raise EncodingOverflow(float(arr[~finite][0]), self.limit(bits), bits)
        scaled = np.rint(arr * float(2**bits))
        if scaled.size == 0 or float(np.max(np.abs(scaled))) < 2.0**62:
            return scaled.astype(np.int64).tolist()  # type: ignore[no-any-return]
        return [int(x) for x in scaled]

    def encode(self, values: npt.ArrayLike) -> list[int]:
        """Encode floats at this codec's precision into [0, n).

        The range check runs once over the whole array, so a value outside
        ±n/3 / 2^f is reported by value before anything is encrypted.
        """
        ks = self.quantise(values)
        n, max_int = self.n, self.max_int
        out = []
        for k in ks:
            if k > max_int or -k > max_int:
                raise EncodingOverflow(k / 2**self.frac_bits, self.limit(), self.frac_bits)
            out.append(k % n)
        return out

    def decode(self, encoded: Iterable[int], frac_bits: int | None = None) -> npt.NDArray[np.float64]:
        """Decode integers in [0, n) that carry ``frac_bits`` fractional bits (default: one factor)."""
        bits = self.frac_bits if frac_bits is None else frac_bits
        n, max_int = self.n, self.max_int
        scale = 2.0**-bits
        out = []
        for m in encoded:
            m = int(m) % n
            if m <= max_int:
                k = m
            elif m >= n - max_int:
                k = m - n
            else:
                raise DecodingOverflow(self.limit(bits), bits)
            out.append(k * scale if abs(k) < 2**1000 else k / 2**bits)
        return np.asarray(out, dtype=np.float64)
