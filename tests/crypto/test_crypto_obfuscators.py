"""Obfuscator pools: DJN exponents, fixed-base tables, each obfuscator used once."""

from __future__ import annotations

import copy
import pickle
import secrets

import gmpy2
import pytest

from fedspark.crypto import (
    Exponent,
    KeyMismatch,
    ObfuscatorPool,
    ObfuscatorReuse,
    exponent_bits,
)
from fedspark.crypto._fixed_base import FixedBaseTable, choose_window


def test_exponent_lengths():
    assert exponent_bits(2048, "short") == 224
    assert exponent_bits(2048, Exponent.FULL) == 1024
    assert exponent_bits(3072, "short") == 256


@pytest.mark.parametrize(("bits", "window"), [(224, 12), (224, 5), (100, 1), (13, 16), (1024, 8)])
def test_fixed_base_table_equals_powmod(bits, window):
    m = gmpy2.mpz(secrets.randbits(600) | 1)
    g = secrets.randbelow(int(m))
    table = FixedBaseTable(g, m, bits, window)
    for x in [0, 1, (1 << bits) - 1] + [secrets.randbits(bits) for _ in range(20)]:
        assert table.pow(x) == pow(g, x, int(m))
    with pytest.raises(ValueError):
        table.pow(1 << bits)


def test_window_grows_with_expected_uses():
    assert choose_window(224, 10) < choose_window(224, 4096) <= choose_window(224, 10**6) <= 12
    assert choose_window(1024, 10**6) <= 10  # the table cap bounds it


def test_no_obfuscator_is_handed_out_twice(keys512):
    public, private = keys512
    pool = ObfuscatorPool(public, expected_uses=5000)
    pool.fill(2000, workers=2)
    assert len(pool) == 2000
    taken = pool.take(1500) + pool.take(1500)  # the second take generates 1000 more
    assert len(pool) == 0 and pool.issued == 3000
    assert len({int(o) for o in taken}) == 3000
    cs = public.encrypt_many([5] * 2000, pool=pool)
    assert len(set(cs)) == 2000
    assert set(private.decrypt_many(cs[:50])) == {5}


@pytest.mark.parametrize("mode", list(Exponent))
def test_short_and_full_exponents_decrypt(keys512, mode):
    public, private = keys512
    pool = ObfuscatorPool(public, mode)
    assert pool.exponent_bits == exponent_bits(512, mode)
    ms = [0, 1, public.n - 1] + [secrets.randbelow(public.n) for _ in range(20)]
    cs = public.encrypt_many(ms, pool=pool)
    assert private.decrypt_many(cs) == ms
    assert private.to_phe().raw_decrypt(cs[3]) == ms[3]


def test_obfuscators_are_nth_residues(keys512):
    public, private = keys512
    p, q = private.to_phe().p, private.to_phe().q
    lam = (p - 1) * (q - 1)
    for o in ObfuscatorPool(public).take(5):
        # n-th residues form a group isomorphic to Z_n^*, of order (p-1)(q-1)
        assert pow(int(o), lam, public.nsquare) == 1


def test_pool_refuses_copies(keys512):
    pool = ObfuscatorPool(keys512[0])
    with pytest.raises(ObfuscatorReuse, match="exactly once"):
        pickle.dumps(pool)
    with pytest.raises(ObfuscatorReuse):
        copy.copy(pool)
    with pytest.raises(ObfuscatorReuse):
        copy.deepcopy(pool)


def test_forked_child_drops_the_inherited_stock(keys512):
    pool = ObfuscatorPool(keys512[0])
    pool.fill(10)
    pool._pid = -1  # what a forked child sees: another process id than the creator's
    assert len(pool.take(3)) == 3 and len(pool) == 0


def test_pool_of_another_key_is_refused(keys512, keys1024):
    other_pool = ObfuscatorPool(keys1024[0])
    with pytest.raises(KeyMismatch):
        keys512[0].encrypt_many([1], pool=other_pool)
    with pytest.raises(KeyMismatch):
        keys512[0].use_obfuscator_pool(other_pool)


def test_shared_base_and_external_stock(keys512):
    public, private = keys512
    first = ObfuscatorPool(public)
    second = ObfuscatorPool(public, h_s=int(first.h_s))
    second.extend(first.generate(3))
    assert private.decrypt_many(public.encrypt_many([1, 2, 3], pool=second)) == [1, 2, 3]
    with pytest.raises(ValueError):
        second.extend([public.nsquare])
    with pytest.raises(ValueError):
        ObfuscatorPool(public, h_s=1)


def test_key_default_pool_can_be_replaced(keys512):
    public, private = keys512
    full = ObfuscatorPool(public, "full")
    public.use_obfuscator_pool(full)
    try:
        assert public.obfuscator_pool is full
        assert private.decrypt(public.encrypt(77)) == 77 and full.issued == 1
    finally:
        public.use_obfuscator_pool(ObfuscatorPool(public))
