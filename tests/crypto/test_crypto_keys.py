"""Key generation, phe interop in both directions, and CRT decryption."""

from __future__ import annotations

import copy
import math
import pickle
import secrets

import gmpy2
import pytest
from phe import paillier

from fedspark.crypto import (
    InsecureKeySize,
    Obfuscation,
    PrivateKey,
    PublicKey,
    generate_keypair,
    security_level,
)


def test_key_has_phe_shape(keys1024):
    public, private = keys1024
    p, q = private.to_phe().p, private.to_phe().q
    assert public.key_size == 1024 and p * q == public.n and p != q
    assert public.to_phe().g == public.n + 1
    assert gmpy2.is_prime(p) and gmpy2.is_prime(q) and p.bit_length() == q.bit_length() == 512
    assert math.gcd(public.n, (p - 1) * (q - 1)) == 1


def test_insecure_sizes_are_refused_by_name():
    with pytest.raises(InsecureKeySize, match="2048"):
        generate_keypair(1024)
    with pytest.raises(ValueError):
        generate_keypair(101, allow_insecure_key_size=True)


@pytest.mark.parametrize(("bits", "level"), [(1024, 80), (2048, 112), (3072, 128), (4096, 152)])
def test_security_levels(bits, level):
    assert security_level(bits) == level


def test_our_ciphertexts_decrypt_with_phe(keys1024):
    public, private = keys1024
    phe_private = private.to_phe()
    for obfuscation in Obfuscation:
        c = public.encrypt(424242, obfuscation=obfuscation)
        assert phe_private.raw_decrypt(c) == 424242
    # phe's EncryptedNumber arithmetic on our ciphertexts
    a = paillier.EncryptedNumber(public.to_phe(), public.encrypt(7), exponent=0)
    b = paillier.EncryptedNumber(public.to_phe(), public.encrypt(public.n - 3), exponent=0)
    assert phe_private.decrypt(a + b) == 4
    assert phe_private.decrypt(a * 6) == 42


def test_phe_ciphertexts_decrypt_here(keys1024):
    public, private = keys1024
    phe_public = public.to_phe()
    assert private.decrypt(phe_public.raw_encrypt(31337)) == 31337
    enc = phe_public.encrypt(-12)  # phe encodes -12 as n - 12 at exponent 0
    assert private.decrypt(enc.ciphertext()) == public.n - 12
    assert private.decrypt_many([phe_public.raw_encrypt(m) for m in (1, 2, 3)]) == [1, 2, 3]


def test_keys_from_phe_interoperate():
    phe_public, phe_private = paillier.generate_paillier_keypair(n_length=512)
    public, private = PublicKey.from_phe(phe_public), PrivateKey.from_phe(phe_private)
    assert phe_private.raw_decrypt(public.encrypt(99)) == 99
    assert private.decrypt(phe_public.raw_encrypt(98)) == 98


def test_decrypt_many_matches_decrypt_and_phe(keys512):
    public, private = keys512
    ms = [secrets.randbelow(public.n) for _ in range(40)]
    cs = public.encrypt_many(ms)
    assert [private.decrypt(c) for c in cs] == ms
    assert [private.to_phe().raw_decrypt(c) for c in cs] == ms
    for workers in (1, 2, 3, 8):
        assert private.decrypt_many(cs, workers=workers) == ms
    assert private.decrypt_many([]) == []


def test_public_key_serialises_as_n_only(keys512):
    public, _ = keys512
    public.encrypt(1)  # creates the lazy pool
    clone = pickle.loads(pickle.dumps(public))
    assert clone == public and clone.n == public.n
    assert copy.copy(public) == public
    assert PublicKey.from_dict(public.to_dict()) == public
