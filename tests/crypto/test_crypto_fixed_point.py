"""Fixed-point range errors name the value range and the precision."""

from __future__ import annotations

import numpy as np
import pytest

from fedspark.crypto import DecodingOverflow, EncodingOverflow, FixedPoint


def test_negative_values_round_trip(keys512):
    public, private = keys512
    fp = FixedPoint(public.n, frac_bits=20)
    values = np.array([-1.0, -0.5, -1e-3, -123.456, 0.0, 2.5])
    decoded = fp.decode(private.decrypt_many(public.encrypt_many(fp.encode(values))))
    np.testing.assert_allclose(decoded, values, atol=2**-21)


def test_overflow_names_range_and_precision():
    fp = FixedPoint(1 << 64 | 1, frac_bits=16)  # a tiny modulus makes the range small: ±2^47
    with pytest.raises(EncodingOverflow, match=r"above the maximum.*16 fractional bits") as err:
        fp.encode([1e15])
    assert err.value.limit == pytest.approx((1 << 64 | 1) // 3 / 2**16)
    assert isinstance(err.value, ValueError)
    with pytest.raises(EncodingOverflow, match=r"range ±\S+ \(below the minimum\) at 16 fractional bits"):
        fp.encode([-1e15])
    with pytest.raises(EncodingOverflow, match="not a number"):
        fp.encode([float("nan")])
    with pytest.raises(EncodingOverflow, match="above the maximum"):
        fp.quantise([float("inf")])


def test_decoding_overflow_names_range_and_precision(keys512):
    public, _ = keys512
    fp = FixedPoint(public.n, frac_bits=32)
    with pytest.raises(DecodingOverflow, match=r"left the range ±\S+ at 48 fractional bits"):
        fp.decode([public.n // 2], frac_bits=48)
