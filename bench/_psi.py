"""``fedspark bench psi``: ECDH PSI between two parties against libsodium's own limit.

Two parties (guest and host threads of this process, over the in-memory
federation) align ``rows`` ids each, of which ``overlap`` × rows are shared,
through one local Spark session (``local[2]``). The clock runs from the first
message to both aligned tables written (Spark's ``noop`` sink, so every row is
computed).

The baseline is physical, measured in the same run on one core through the
same binding: t_hash (SHA-512 + ``crypto_core_ristretto255_from_hash``) and
t_mult (``crypto_scalarmult_ristretto255``). Each party hashes and blinds its
own N ids and re-blinds the other's N, so the two parties need
2·N·(t_hash + 2·t_mult) core-seconds; two cores take at least
limit_s = N·(t_hash + 2·t_mult). ``ratio`` = limit_s / measured seconds (1.0
would be perfect parallel efficiency with zero Spark, transfer, sort and join
cost). The rates are measured before and after the run and averaged, since a
shared machine's load moves them.
"""

from __future__ import annotations

import os
import platform
import time
from typing import Any

from fedspark.algorithms.psi import PsiResult, align, blind, hash_to_group, random_scalar
from fedspark.common import PartyRef, Role
from fedspark.federation import Context, run_parties

TARGET_RATIO = 0.75
TARGET_SECONDS_PER_MILLION = 150.0
GUEST = PartyRef(Role.GUEST, "9999")
HOST = PartyRef(Role.HOST, "10000")


def libsodium_seconds(seconds: float) -> tuple[float, float]:
    """(t_hash, t_mult): one core's seconds per hash-to-group and per scalar multiplication."""
    scalar = random_scalar()
    salt = os.urandom(64)

    def per_op(step: Any) -> float:
        ops, started = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - started) < seconds:
            for i in range(500):
                step(i)
            ops += 500
        return elapsed / ops

    t_hash = per_op(lambda i: hash_to_group(salt, str(i).encode()))
    point = hash_to_group(salt, b"x")
    t_mult = per_op(lambda i: blind(scalar, point))
    return t_hash, t_mult


def run_psi_bench(rows: int, overlap: float, partitions: int = 8, rate_seconds: float = 2.0) -> dict[str, Any]:
    from fedspark.engine import build_session

    if rows < 1 or not 0 < overlap <= 1:
        raise ValueError("rows must be positive and overlap in (0, 1]")
    spark = build_session("fedspark-bench-psi", {"spark.driver.memory": "2g"})
    before = libsodium_seconds(rate_seconds)
    shared = max(1, int(rows * overlap))
    tables = {
        GUEST: spark.range(0, rows, numPartitions=partitions),
        HOST: spark.range(rows - shared, 2 * rows - shared, numPartitions=partitions),
    }

    def side(party: PartyRef) -> Any:
        def run(ctx: Context) -> PsiResult:
            result = align(ctx, tables[party], "id", spark)
            result.table.write.format("noop").mode("overwrite").save()
            return result

        return run

    started = time.perf_counter()
    results = run_parties("bench-psi", {party: side(party) for party in tables}, timeout_s=3600)
    seconds = time.perf_counter() - started
    after = libsodium_seconds(rate_seconds)
    t_hash, t_mult = (before[0] + after[0]) / 2, (before[1] + after[1]) / 2
    limit_s = rows * (t_hash + 2 * t_mult)
    matched = results[GUEST].matched
    if matched != shared or results[HOST].matched != shared:
        raise RuntimeError(f"bench psi: expected {shared} common ids, guest found {matched}, host {results[HOST].matched}")
    ratio = limit_s / seconds
    target_seconds = TARGET_SECONDS_PER_MILLION * rows / 1_000_000
    return {
        "bench": "psi",
        "params": {
            "rows_per_party": rows,
            "overlap": overlap,
            "partitions": partitions,
            "spark_master": spark.sparkContext.master,
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "transport": "in-memory federation (two parties, threads of one process)",
        },
        "results": {
            "psi": {"seconds": seconds, "rate": rows / seconds, "unit": "ids/s per party"},
            "psi_per_core": {"rate": rows / seconds / 2, "unit": "ids/s per party per core (2 cores)"},
            "matched": {"rate": matched, "unit": "ids in the intersection"},
        },
        "baseline": {
            "limit_s": limit_s,
            "formula": "N * (t_hash + 2 * t_mult), one core's libsodium times, two parties on two cores",
            "hash_to_group": {"rate": 1 / t_hash, "unit": "/s one core", "before": 1 / before[0], "after": 1 / after[0]},
            "scalarmult": {"rate": 1 / t_mult, "unit": "/s one core", "before": 1 / before[1], "after": 1 / after[1]},
        },
        "ratio": ratio,
        "target": {"ratio": TARGET_RATIO, "seconds": target_seconds, "seconds_rule": "150 s per million ids per party"},
        "meets_target": ratio >= TARGET_RATIO and seconds <= target_seconds,
    }
