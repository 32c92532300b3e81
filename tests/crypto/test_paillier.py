"""Paillier wrapper: phe interop, homomorphic identities, key-size policy."""

from __future__ import annotations

import random

import numpy as np
import pytest
from phe import paillier

from fedspark.crypto import (
    EncodingOverflow,
    FixedPoint,
    InsecureKeySize,
    KeyMismatch,
    PublicKey,
    generate_keypair,
)


@pytest.fixture(scope="module")
def keys():
    return generate_keypair(1024, allow_insecure_key_size=True)


def test_small_keys_need_the_named_minimum_setting():
    with pytest.raises(InsecureKeySize, match="min-key-size"):
        generate_keypair(1024)


def test_default_key_is_2048_bits():
    public, _ = generate_keypair()
    assert public.key_size == 2048
    assert public.ciphertext_width == 512


def test_interop_with_phe_both_ways(keys):
    public, private = keys
    c = public.encrypt(424242)
    assert private.to_phe().raw_decrypt(c) == 424242
    c_phe = public.to_phe().raw_encrypt(31337)
    assert private.decrypt(c_phe) == 31337
    # phe's EncryptedNumber built on our ciphertext decrypts with phe's API too
    enc = paillier.EncryptedNumber(public.to_phe(), public.encrypt(7), exponent=0)
    assert private.to_phe().decrypt(enc) == 7


def test_encryption_is_randomised(keys):
    public, _ = keys
    assert public.encrypt(5) != public.encrypt(5)


@pytest.mark.parametrize(("a", "b"), [(3, 4), (0, 0), (-5, 2), (10**12, -(10**12) + 1)])
def test_homomorphic_add_and_plain_ops(keys, a, b):
    public, private = keys
    fp = FixedPoint(public.n, frac_bits=0)
    ca, cb = public.encrypt(fp.encode_int(a)), public.encrypt(fp.encode_int(b))
    assert fp.decode([private.decrypt(public.add(ca, cb))])[0] == a + b
    assert fp.decode([private.decrypt(public.add_plain(ca, fp.encode_int(b)))])[0] == a + b
    assert fp.decode([private.decrypt(public.mul_plain(ca, b))])[0] == a * b


def test_dot_with_mixed_sign_scalars_matches_plain(keys):
    public, private = keys
    fp = FixedPoint(public.n, frac_bits=0)
    rng = random.Random(7)
    xs = [rng.randint(-1000, 1000) for _ in range(40)]
    ks = [rng.randint(-(2**20), 2**20) for _ in range(40)]
    cs = [public.encrypt(fp.encode_int(x)) for x in xs]
    got = fp.decode([private.decrypt(public.dot(cs, ks))])[0]
    assert got == sum(x * k for x, k in zip(xs, ks))
    assert private.decrypt(public.sum(cs)) == fp.encode_int(sum(xs))


def test_key_mismatch_is_named(keys):
    public, _ = keys
    other, _ = generate_keypair(1024, allow_insecure_key_size=True)
    with pytest.raises(KeyMismatch, match=public.fingerprint):
        public.check_same(other)
    assert PublicKey.from_dict(public.to_dict()) == public


def test_fixed_point_round_trip_and_products(keys):
    public, private = keys
    fp = FixedPoint(public.n, frac_bits=24)
    values = np.array([0.0, 1.5, -2.25, 1e-6, -123456.789])
    decoded = fp.decode([private.decrypt(public.encrypt(m)) for m in fp.encode(values)])
    np.testing.assert_allclose(decoded, values, atol=2**-24)
    # a ciphertext times an encoded scalar carries 2f fractional bits
    c = public.encrypt(fp.encode([0.5])[0])
    k = fp.quantise([-3.0])[0]
    assert fp.decode([private.decrypt(public.mul_plain(c, k))], frac_bits=48)[0] == pytest.approx(-1.5)


def test_fixed_point_overflow_is_detected(keys):
    public, _ = keys
    fp = FixedPoint(public.n, frac_bits=32)
    with pytest.raises(EncodingOverflow, match="fractional bits"):
        fp.encode([float("nan")])
    with pytest.raises(EncodingOverflow):
        fp.encode_int(public.n // 2)
    with pytest.raises(EncodingOverflow):
        fp.decode([public.n // 2])


def test_rerandomise_keeps_the_plaintext_and_breaks_the_quotient(keys):
    public, private = keys
    c = public.encrypt(41)
    shifted = public.add_plain(c, 1)
    assert (public.add(shifted, int(pow(c, -1, public.nsquare))) - 1) % public.n == 0  # divisible: 1 + 1·n
    fresh = public.rerandomise([shifted, shifted])
    assert [private.decrypt(f) for f in fresh] == [42, 42]
    assert fresh[0] != fresh[1] != shifted
    quotient = public.add(fresh[0], int(pow(c, -1, public.nsquare)))
    assert (quotient - 1) % public.n != 0


def test_a_peer_key_below_the_own_minimum_is_refused_naming_the_sender(keys):
    from fedspark.crypto import PeerKeyTooSmall, check_peer_key

    public, _ = keys
    assert check_peer_key(public, 1024, sender="arbiter 10001") is public
    with pytest.raises(PeerKeyTooSmall, match=r"arbiter 10001 sent a 1024-bit Paillier key.*under 2048 bits"):
        check_peer_key(public, 2048, sender="arbiter 10001")
