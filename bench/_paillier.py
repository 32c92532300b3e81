"""``fedspark bench paillier``: fedspark's Paillier against ``phe``, same key, same run.

Every operation is timed for ``seconds`` on one core (this process), then on
both cores: two spawned worker processes run the same loop at the same time
(they start behind a barrier) and their rates are added; phe is timed the same
way. The time of each figure is split into ``rounds`` passes that visit every
variant in turn, so fedspark and phe see the same background load (a shared
machine's noise moves rates by ±15% but ratios much less); each fedspark
variant runs right next to its phe counterpart. Setup (keys,
fixed-base tables, input ciphertexts) is never timed; table build times are
reported in ``params``.

What each figure counts:

- ``encrypt_short`` / ``encrypt_full``: encoding, the obfuscator h_s^x it
  consumes (generated inside the timed loop) and (1 + m·n)·r^n.
- ``encrypt_online_*``: encryption from a pool filled beforehand (the
  per-value cost once obfuscators were generated ahead of need); timed over
  ``online_sample`` values per round, the refill between rounds is untimed.
- ``decrypt``: ``PrivateKey.decrypt_many`` against phe's ``raw_decrypt`` (phe's
  fastest path); ``decrypt_2_threads`` is one process with ``workers=2``.
- ``scalar_mul``: [[a]] ⊗ k for k a 24-bit signed fixed-point scalar, against
  phe's ``EncryptedNumber * float``.
- ``xtd_term``: X^T[[d]] per (row, feature) term: ``dot_many`` over
  ``xtd_rows`` × ``xtd_features`` with x uniform in [−1, 1) quantised to
  24-bit signed integers, against phe's ``acc = acc + enc * x`` loop on floats.
- ``packed_encrypt``: per value, BatchCrypt packing into 32-bit slots plus the
  short-exponent encryption of each packed plaintext, against phe's encrypt.

``ratio`` is the headline: encrypt_short over phe's encrypt, one core.
``target`` compares one-core figures, except ``decrypt_both_cores_vs_phe_one_core``
(fedspark's two-process decrypt rate over phe's one-core rate).
"""

from __future__ import annotations

import itertools
import math
import multiprocessing
import os
import platform
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from fedspark.crypto import (
    Exponent,
    FixedPoint,
    ObfuscatorPool,
    Packer,
    PrivateKey,
    PublicKey,
    exponent_bits,
    generate_keypair,
)

FRAC_BITS = 32
X_BITS = 24  # signed: 23 magnitude bits + sign
XTD_ROWS = 10_000  # the mini-batch of `fedspark bench hetero-lr`
XTD_FEATURES = 2
PACK_SLOT_BITS = 32
ONLINE_SAMPLE = {"short": 1000, "full": 500}
TARGETS = {
    "encrypt_short_vs_phe_encrypt": 50.0,
    "xtd_term_vs_phe_term": 20.0,
    "decrypt_vs_phe_one_core": 0.95,
    "decrypt_both_cores_vs_phe_one_core": 1.5,
    "packed_encrypt_per_value_vs_phe_encrypt": 500.0,
}

Run = Callable[[float], tuple[int, float]]
"""Time one variant for about ``seconds``: (operations, timed seconds)."""


class Prepared:
    """A variant after its untimed setup: ``run`` may be called once per round."""

    def __init__(self, run: Run, **facts: Any) -> None:
        self.run = run
        self.facts = facts


Variant = Callable[["_Keys"], Prepared]


class _Keys:
    """One key pair as fedspark and phe objects (rebuilt from p, q in each worker)."""

    def __init__(self, p: int, q: int) -> None:
        self.p, self.q = p, q
        self.private: PrivateKey = PrivateKey.from_pq(p, q)
        self.public: PublicKey = self.private.public_key
        self.phe_public = self.public.to_phe()
        self.phe_private = self.private.to_phe()
        self.codec = FixedPoint(self.public.n, FRAC_BITS)
        self.rng = np.random.default_rng(int.from_bytes(os.urandom(8), "big"))

    def ciphertexts(self, count: int) -> list[int]:
        values = self.rng.uniform(-1.0, 1.0, count)
        return self.public.encrypt_many(self.codec.encode(values))


def _loop(step: Callable[[], int]) -> Run:
    """A ``Run`` that repeats ``step`` (which returns its operation count) until time is up."""

    def run(seconds: float) -> tuple[int, float]:
        ops = 0
        started = time.perf_counter()
        while True:
            ops += step()
            elapsed = time.perf_counter() - started
            if elapsed >= seconds:
                return ops, elapsed

    return run


# --- fedspark variants ----------------------------------------------------------

def _encrypt(mode: str, chunk: int) -> Variant:
    def prepare(keys: _Keys) -> Prepared:
        pool = ObfuscatorPool(keys.public, mode, expected_uses=200_000)
        built = time.perf_counter()
        table = pool.precompute()
        build_s = time.perf_counter() - built
        values = keys.codec.encode(keys.rng.uniform(-1.0, 1.0, chunk))
        run = _loop(lambda: len(keys.public.encrypt_many(values, pool=pool)))
        return Prepared(run, table_build_s=build_s, window=pool.window, table_entries=table.entries)

    return prepare


def _encrypt_online(mode: str) -> Variant:
    def prepare(keys: _Keys) -> Prepared:
        sample = ONLINE_SAMPLE[mode]
        pool = ObfuscatorPool(keys.public, mode, expected_uses=200_000)
        values = keys.codec.encode(keys.rng.uniform(-1.0, 1.0, sample))
        pool.fill(sample)

        def run(seconds: float) -> tuple[int, float]:
            ops, timed = 0, 0.0
            wall = time.perf_counter()
            while True:
                if len(pool) < sample:
                    pool.fill(sample - len(pool))  # untimed refill
                began = time.perf_counter()
                ops += len(keys.public.encrypt_many(values, pool=pool))
                timed += time.perf_counter() - began
                if time.perf_counter() - wall >= seconds:
                    return ops, timed

        return Prepared(run)

    return prepare


def _decrypt(workers: int) -> Variant:
    def prepare(keys: _Keys) -> Prepared:
        cs = keys.ciphertexts(8)
        return Prepared(_loop(lambda: len(keys.private.decrypt_many(cs, workers=workers))))

    return prepare


def _add(keys: _Keys) -> Prepared:
    cs = keys.ciphertexts(64)
    add = keys.public.add

    def step() -> int:
        for a, b in itertools.pairwise(cs):
            add(a, b)
        return len(cs) - 1

    return Prepared(_loop(step))


def _scalar_mul(keys: _Keys) -> Prepared:
    cs = keys.ciphertexts(32)
    ks = keys.codec.quantise(keys.rng.uniform(-1.0, 1.0, 32), X_BITS - 1)
    mul = keys.public.mul_plain

    def step() -> int:
        for c, k in zip(cs, ks):
            mul(c, k)
        return len(cs)

    return Prepared(_loop(step))


def _xtd(keys: _Keys) -> Prepared:
    cs = keys.ciphertexts(XTD_ROWS)
    top = 2 ** (X_BITS - 1) - 1
    xq = np.rint(keys.rng.uniform(-1.0, 1.0, (XTD_ROWS, XTD_FEATURES)) * top).astype(np.int64)
    return Prepared(_loop(lambda: len(keys.public.dot_many(cs, xq)) * XTD_ROWS))


def _packed_encrypt(keys: _Keys) -> Prepared:
    packer = Packer(keys.public.n, slot_bits=PACK_SLOT_BITS, clip=1.0)
    pool = ObfuscatorPool(keys.public, Exponent.SHORT, expected_uses=200_000)
    pool.precompute()
    values = keys.rng.uniform(-1.0, 1.0, packer.slots * 16)
    run = _loop(lambda: len(packer.encrypt(keys.public, values, pool=pool)) * packer.slots)
    return Prepared(run, slots=packer.slots)


# --- phe variants ----------------------------------------------------------------

def _phe_encrypt(keys: _Keys) -> Prepared:
    values = keys.rng.uniform(-1.0, 1.0, 4).tolist()
    encrypt = keys.phe_public.encrypt

    def step() -> int:
        for v in values:
            encrypt(v)
        return len(values)

    return Prepared(_loop(step))


def _phe_decrypt(keys: _Keys) -> Prepared:
    cs = keys.ciphertexts(8)
    raw_decrypt = keys.phe_private.raw_decrypt

    def step() -> int:
        for c in cs:
            raw_decrypt(c)
        return len(cs)

    return Prepared(_loop(step))


def _phe_numbers(keys: _Keys, count: int) -> list[Any]:
    """phe EncryptedNumbers as phe's encrypt(float) makes them (ciphertexts from the fast path)."""
    from phe import paillier

    out = []
    for v in keys.rng.uniform(-1.0, 1.0, count).tolist():
        encoded = paillier.EncodedNumber.encode(keys.phe_public, v)
        c = keys.public.encrypt(encoded.encoding)
        out.append(paillier.EncryptedNumber(keys.phe_public, c, encoded.exponent))
    return out


def _phe_add(keys: _Keys) -> Prepared:
    from phe import paillier

    numbers = [paillier.EncryptedNumber(keys.phe_public, c, -20) for c in keys.ciphertexts(64)]

    def step() -> int:
        for a, b in itertools.pairwise(numbers):
            _ = a + b
        return len(numbers) - 1

    return Prepared(_loop(step))


def _phe_scalar_mul(keys: _Keys) -> Prepared:
    numbers = _phe_numbers(keys, 16)
    scalars = keys.rng.uniform(-1.0, 1.0, 16).tolist()

    def step() -> int:
        for e, s in zip(numbers, scalars):
            _ = e * s
        return len(numbers)

    return Prepared(_loop(step))


def _phe_xtd(keys: _Keys) -> Prepared:
    numbers = _phe_numbers(keys, 32)
    x = keys.rng.uniform(-1.0, 1.0, 32).tolist()

    def step() -> int:
        acc = numbers[0] * x[0]
        for e, v in zip(numbers[1:], x[1:]):
            acc = acc + e * v
        return len(numbers)

    return Prepared(_loop(step))


FEDSPARK: dict[str, tuple[Variant, str]] = {
    "encrypt_short": (_encrypt("short", 128), "ops/s"),
    "encrypt_full": (_encrypt("full", 32), "ops/s"),
    "encrypt_online_short": (_encrypt_online("short"), "ops/s"),
    "encrypt_online_full": (_encrypt_online("full"), "ops/s"),
    "decrypt": (_decrypt(1), "ops/s"),
    "add": (_add, "ops/s"),
    "scalar_mul": (_scalar_mul, "ops/s"),
    "xtd_term": (_xtd, "terms/s"),
    "packed_encrypt": (_packed_encrypt, "values/s"),
}
THREADED: dict[str, tuple[Variant, str]] = {"decrypt_2_threads": (_decrypt(2), "ops/s")}
PHE: dict[str, tuple[Variant, str]] = {
    "phe_encrypt": (_phe_encrypt, "ops/s"),
    "phe_decrypt": (_phe_decrypt, "ops/s"),
    "phe_add": (_phe_add, "ops/s"),
    "phe_scalar_mul": (_phe_scalar_mul, "ops/s"),
    "phe_xtd_term": (_phe_xtd, "terms/s"),
}
VARIANTS = {**FEDSPARK, **THREADED, **PHE}
ORDER = [
    "encrypt_short", "phe_encrypt", "packed_encrypt", "encrypt_full", "encrypt_online_short",
    "encrypt_online_full", "decrypt", "phe_decrypt", "decrypt_2_threads", "add", "phe_add",
    "scalar_mul", "phe_scalar_mul", "xtd_term", "phe_xtd_term",
]
"""Each round visits the variants in this order: every fedspark figure next to its phe counterpart."""
PARALLEL = [name for name in ORDER if name not in THREADED]
"""Variants timed again in two processes (the threaded one already uses both cores)."""


def _measure(
    names: list[str], seconds: float, rounds: int, run: Callable[[str, float], tuple[float, float]]
) -> dict[str, float]:
    """Rates over ``rounds`` round-robin passes of ``seconds / rounds`` each.

    Interleaving puts fedspark and phe under the same background load (the
    machine may be shared), so their ratios are steadier than their rates.
    """
    totals = {name: [0.0, 0.0] for name in names}
    for _ in range(rounds):
        for name in names:
            ops, elapsed = run(name, seconds / rounds)
            totals[name][0] += ops
            totals[name][1] += elapsed
    return {name: ops / elapsed for name, (ops, elapsed) in totals.items()}


# --- worker processes (both-core figures) ------------------------------------------

_WORKER: dict[str, Any] = {}


def _worker_init(p: int, q: int, barrier: Any) -> None:
    keys = _Keys(p, q)
    _WORKER["prepared"] = {name: VARIANTS[name][0](keys) for name in PARALLEL}
    _WORKER["barrier"] = barrier


def _worker_run(name: str, seconds: float) -> tuple[int, float]:
    _WORKER["barrier"].wait()
    result: tuple[int, float] = _WORKER["prepared"][name].run(seconds)
    return result


def run_paillier_bench(
    bits: int = 2048, *, seconds: float = 1.5, allow_insecure: bool = False, processes: int = 2, rounds: int = 10
) -> dict[str, Any]:
    """Time fedspark's Paillier and phe on one key; one JSON-able dict (see the module docstring).

    ``seconds`` is the timed duration of each figure, split over ``rounds``
    interleaved passes; a default run takes about a minute. Keys
    under 2048 bits need ``allow_insecure``.
    """
    public, private = generate_keypair(bits, allow_insecure_key_size=allow_insecure)
    p, q = private.to_phe().p, private.to_phe().q
    keys = _Keys(p, q)
    prepared = {name: variant(keys) for name, (variant, _) in VARIANTS.items()}
    one = _measure(ORDER, seconds, rounds, lambda name, s: prepared[name].run(s))
    facts = {name: item.facts for name, item in prepared.items()}
    prepared.clear()  # free the main process's tables before the workers build theirs
    both: dict[str, float] = {}
    if processes > 1:
        ctx = multiprocessing.get_context("spawn")
        barrier = ctx.Barrier(processes)
        with ctx.Pool(processes, initializer=_worker_init, initargs=(p, q, barrier)) as pool:

            def parallel(name: str, s: float) -> tuple[float, float]:
                parts = pool.starmap(_worker_run, [(name, s)] * processes)
                mean = sum(el for _, el in parts) / len(parts)
                return sum(ops / el for ops, el in parts) * mean, mean  # the summed rate, weighted by time

            both = _measure(PARALLEL, seconds, rounds, parallel)

    def entry(name: str, unit: str) -> dict[str, Any]:
        item: dict[str, Any] = {"rate": one[name], "unit": unit}
        if name in both:
            item["rate_both_cores"] = both[name]
        if name in THREADED:
            item["cores"] = 2
        return item

    results = {name: entry(name, unit) for name, (_, unit) in {**FEDSPARK, **THREADED}.items()}
    baseline = {name: entry(name, unit) for name, (_, unit) in PHE.items()}
    decrypt_both = both.get("decrypt", one["decrypt_2_threads"])
    ratios = {
        "encrypt_short_vs_phe_encrypt": one["encrypt_short"] / one["phe_encrypt"],
        "xtd_term_vs_phe_term": one["xtd_term"] / one["phe_xtd_term"],
        "decrypt_vs_phe_one_core": one["decrypt"] / one["phe_decrypt"],
        "decrypt_both_cores_vs_phe_one_core": decrypt_both / one["phe_decrypt"],
        "packed_encrypt_per_value_vs_phe_encrypt": one["packed_encrypt"] / one["phe_encrypt"],
    }
    target = {
        name: {"ratio": round(ratios[name], 3), "required": f">= {TARGETS[name]}", "met": bool(ratios[name] >= TARGETS[name])}
        for name in TARGETS
    }
    short, full = facts["encrypt_short"], facts["encrypt_full"]
    return {
        "bench": "paillier",
        "params": {
            "bits": bits,
            "seconds": seconds,
            "rounds": rounds,
            "insecure_key_size": bits < 2048,
            "processes": processes,
            "cpu_count": os.cpu_count(),
            "key_fingerprint": public.fingerprint,
            "exponent_bits": {"short": exponent_bits(bits, "short"), "full": exponent_bits(bits, "full")},
            "fixed_base_window": {"short": short["window"], "full": full["window"]},
            "table_entries": {"short": short["table_entries"], "full": full["table_entries"]},
            "table_build_s": {"short": round(short["table_build_s"], 3), "full": round(full["table_build_s"], 3)},
            "frac_bits": FRAC_BITS,
            "x_bits": X_BITS,
            "xtd_rows": XTD_ROWS,
            "xtd_features": XTD_FEATURES,
            "pack_slot_bits": PACK_SLOT_BITS,
            "pack_slots": facts["packed_encrypt"]["slots"],
            "online_sample": ONLINE_SAMPLE,
            "python": platform.python_version(),
            "versions": _versions(),
        },
        "results": _rounded(results),
        "baseline": _rounded(baseline),
        "ratio": round(ratios["encrypt_short_vs_phe_encrypt"], 2),
        "target": target,
        "meets_target": all(t["met"] for t in target.values()),
    }


def _rounded(entries: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Rates to 4 significant digits: the run-to-run noise is larger than that."""
    def r(x: Any) -> Any:
        return float(f"{x:.4g}") if isinstance(x, float) and math.isfinite(x) else x

    return {name: {k: r(v) for k, v in item.items()} for name, item in entries.items()}


def _versions() -> dict[str, str]:
    import gmpy2
    import phe

    return {"gmpy2": gmpy2.version(), "gmp": gmpy2.mp_version(), "phe": getattr(phe, "__version__", "?")}


if __name__ == "__main__":  # pragma: no cover - manual runs: python -m fedspark.bench._paillier
    import json
    import sys

    size = int(sys.argv[1]) if len(sys.argv) > 1 else 2048
    print(json.dumps(run_paillier_bench(size, allow_insecure=size < 2048), indent=2))
