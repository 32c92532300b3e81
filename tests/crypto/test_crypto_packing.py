"""BatchCrypt packing: round trip, sums of several parties, the documented error bound."""

from __future__ import annotations

import numpy as np
import pytest

from fedspark.crypto import DecodingOverflow, EncodingOverflow, Packer, PackingOverflow


@pytest.mark.parametrize("slot_bits", [8, 16, 32])
def test_round_trip_within_half_a_step(keys512, slot_bits):
    public, private = keys512
    packer = Packer(public.n, slot_bits=slot_bits, clip=2.0)
    assert packer.slots == (512 - 2) // slot_bits
    values = np.random.default_rng(slot_bits).uniform(-2.0, 2.0, size=3 * packer.slots + 5)
    values[:3] = [-2.0, 2.0, 0.0]
    cs = packer.encrypt(public, values)
    assert len(cs) == 4
    decoded = packer.decrypt(private, cs, values.size)
    assert np.max(np.abs(decoded - values)) <= packer.error_bound(1) + 1e-12


def test_sum_of_parties_meets_the_error_bound(keys512):
    public, private = keys512
    parties = 5
    packer = Packer(public.n, slot_bits=16, clip=1.0, summands=parties)
    assert packer.value_bits == 16 - 3
    rng = np.random.default_rng(7)
    vectors = rng.uniform(-1.0, 1.0, size=(parties, 300))
    vectors[:, 0] = -1.0  # worst case for the headroom: every party at -clip
    vectors[:, 1] = 1.0
    encrypted = [packer.encrypt(public, v) for v in vectors]
    summed = [public.sum(column) for column in zip(*encrypted)]
    decoded = packer.decrypt(private, summed, 300)
    error = np.max(np.abs(decoded - vectors.sum(axis=0)))
    assert error <= packer.error_bound() == parties * packer.step / 2
    assert decoded[0] == pytest.approx(-parties, abs=packer.error_bound())


def test_plaintext_addition_of_packed_vectors(keys512):
    public, private = keys512
    packer = Packer(public.n, slot_bits=32, summands=2)
    a, b = np.linspace(-1, 1, 20), np.linspace(1, -1, 20) * 0.5
    c = packer.encrypt(public, a)
    summed = [public.add_plain(ci, mi) for ci, mi in zip(c, packer.pack(b))]
    np.testing.assert_allclose(packer.decrypt(private, summed, 20), a + b, atol=packer.error_bound(2))


def test_out_of_range_values_name_the_range():
    packer = Packer((1 << 511) + 1, slot_bits=16, clip=0.5)
    with pytest.raises(PackingOverflow, match=r"0\.75 is outside the packing range ±0\.5 \(16-bit values in 16-bit slots") as err:
        packer.pack([0.1, 0.75])
    assert isinstance(err.value, EncodingOverflow)
    with pytest.raises(PackingOverflow):
        packer.pack([float("nan")])
    saturating = Packer((1 << 511) + 1, slot_bits=16, clip=0.5, overflow="clip")
    np.testing.assert_allclose(saturating.unpack(saturating.pack([0.75, -3.0]), 2), [0.5, -0.5])


def test_too_many_summands_is_detected_or_refused():
    with pytest.raises(ValueError, match="summands"):
        Packer((1 << 511) + 1, slot_bits=8, summands=200)
    packer = Packer((1 << 511) + 1, slot_bits=8, clip=1.0)
    plain = packer.pack(np.ones(packer.slots))
    with pytest.raises(DecodingOverflow, match="packed plaintext 0"):
        packer.unpack([sum(plain) * 3], 1)
