"""Mini-batch plan that every party derives from one shared seed, and the smallest batch it allows.

Every party derives the seed itself: the job's ``seed`` when it sets one, else
a hash of the salt all parties agreed by commit-reveal, so no party (the guest
included) picks which rows share a batch.

A row's batch is a function of its rank (its position in the agreed row order),
the seed and the epoch alone: a keyed permutation of the ranks
(:func:`permute`), divided by the batch size. So every party, and every
executor of a party, assigns every row to the same batch without any row list
crossing a wire or reaching a driver: executors compute the batch of their own
rows (:func:`batch_of`), and a driver that needs one batch's ranks inverts the
permutation over that batch's slots only (:func:`batch_rows`, O(batch size)).
The driver path and the executor path run the same plan, so they compute the
same weights.

The remainder of an epoch is folded into its last batch, so every batch has
at least ``batch_size`` rows: a short tail batch would be the easiest one to
solve for the residuals (see :func:`check_batches`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from fedspark.algorithms.hetero_lr._kernels import IntArray
from fedspark.common import ConfigError

MIN_BATCH_ROWS = 100
"""No party takes part in a batch of this many rows or fewer, whatever its feature count."""

_ROUNDS = 4
"""Feistel rounds: four make a keyed permutation that passes as random for batch membership."""


def batch_seed(job_seed: int | None, agreed_salt: bytes) -> int:
    """The seed of the batch order: the job's own, or one no single party chose."""
    if job_seed is not None:
        return job_seed
    digest = hashlib.sha256(b"fedspark-hetero-lr-batch-order\0" + agreed_salt).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def n_batches(n_rows: int, batch_size: int) -> int:
    if batch_size <= 0 or batch_size >= n_rows:
        return 1
    return max(1, n_rows // batch_size)


def smallest_batch(n_rows: int, batch_size: int) -> int:
    """Rows of the smallest mini-batch of an epoch (the last one holds the remainder too)."""
    return n_rows if n_batches(n_rows, batch_size) == 1 else batch_size


def minimum_batch_rows(n_features: int) -> int:
    """The smallest batch a party with ``n_features`` columns accepts: more than max(d + 1, 100) rows.

    Why: each party learns its own gradient X_Bᵀe of every batch B. With no
    more rows than features, X_B is (generically) invertible on its rows and e,
    which carries the other parties' labels or partial scores, is solved
    exactly; a margin above that keeps the system underdetermined.
    """
    return max(n_features + 1, MIN_BATCH_ROWS) + 1


def check_batches(job_id: str, who: str, n_rows: int, batch_size: int, n_features: int) -> None:
    """Refuse a batch plan whose smallest batch is small enough to solve for residuals."""
    smallest, minimum = smallest_batch(n_rows, batch_size), minimum_batch_rows(n_features)
    if smallest < minimum:
        raise ConfigError(
            f"job {job_id}: {who} refuses mini-batches of {smallest} rows (batch_size {batch_size}, "
            f"{n_rows} aligned rows); with {n_features} features of its own it needs at least {minimum} rows "
            "per batch, so that no batch can be solved for the other parties' residuals"
        )


def _round_keys(seed: int, epoch: int) -> list[np.uint64]:
    digest = hashlib.sha256(f"fedspark-hetero-lr-batches\0{seed}\0{epoch}".encode()).digest()
    return [np.uint64(int.from_bytes(digest[8 * i : 8 * i + 8], "big")) for i in range(_ROUNDS)]


def _mix(x: np.ndarray, key: np.uint64) -> np.ndarray:
    """splitmix64's finaliser of ``x ^ key``: the Feistel round function (uint64 arithmetic wraps)."""
    z = x ^ key
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _half_bits(n_rows: int) -> int:
    """Half the bits of the smallest even-width power-of-two domain holding ``n_rows`` (at most 4n values)."""
    return max(1, (max(n_rows - 1, 1).bit_length() + 1) // 2)


def _feistel(x: np.ndarray, keys: list[np.uint64], half: int, inverse: bool) -> np.ndarray:
    mask = np.uint64((1 << half) - 1)
    shift = np.uint64(half)
    left, right = x >> shift, x & mask
    if not inverse:
        for key in keys:
            left, right = right, left ^ (_mix(right, key) & mask)
    else:
        for key in reversed(keys):
            left, right = right ^ (_mix(left, key) & mask), left
    return (left << shift) | right


def _walk(values: Iterable[int] | np.ndarray, seed: int, epoch: int, n_rows: int, inverse: bool) -> IntArray:
    """The keyed permutation of [0, n) (or its inverse) at ``values``: Feistel with cycle walking."""
    keys, half = _round_keys(seed, epoch), _half_bits(n_rows)
    x = np.asarray(values, dtype=np.int64)
    if x.size and (x.min() < 0 or x.max() >= n_rows):
        raise ValueError(f"ranks must lie in [0, {n_rows})")
    out = _feistel(x.astype(np.uint64), keys, half, inverse)
    outside = out >= np.uint64(n_rows)
    while outside.any():  # a domain under 4n: about one extra round per value, on average
        out[outside] = _feistel(out[outside], keys, half, inverse)
        outside = out >= np.uint64(n_rows)
    return out.astype(np.int64)


def permute(seed: int, epoch: int, ranks: Iterable[int] | np.ndarray, n_rows: int) -> IntArray:
    """The slot of each rank in epoch ``epoch``'s keyed permutation of the ``n_rows`` ranks."""
    return _walk(ranks, seed, epoch, n_rows, inverse=False)


def batch_of(seed: int, epoch: int, ranks: Iterable[int] | np.ndarray, n_rows: int, batch_size: int) -> IntArray:
    """The mini-batch of each rank in epoch ``epoch`` (what an executor computes for its own rows)."""
    count = n_batches(n_rows, batch_size)
    ranks = np.asarray(ranks, dtype=np.int64)
    if count == 1:
        return np.zeros(len(ranks), dtype=np.int64)
    return np.minimum(permute(seed, epoch, ranks, n_rows) // batch_size, count - 1)


def batch_rows(seed: int, epoch: int, batch: int, n_rows: int, batch_size: int) -> IntArray:
    """The ranks of one mini-batch, ascending: the inverse permutation over that batch's slots only."""
    count = n_batches(n_rows, batch_size)
    if count == 1:
        return np.arange(n_rows, dtype=np.int64)
    start = batch * batch_size
    end = n_rows if batch == count - 1 else start + batch_size
    return np.sort(_walk(np.arange(start, end), seed, epoch, n_rows, inverse=True))


@dataclass(frozen=True)
class Batch:
    """One mini-batch as the protocol speaks of it: which epoch, which batch, and its ranks (ascending)."""

    epoch: int
    index: int
    rows: IntArray


def iter_batches(seed: int, epoch: int, n_rows: int, batch_size: int) -> Iterator[Batch]:
    """The batches of one epoch, each computed when reached (one batch's ranks in memory at a time)."""
    for b in range(n_batches(n_rows, batch_size)):
        yield Batch(epoch, b, batch_rows(seed, epoch, b, n_rows, batch_size))


def epoch_batches(seed: int, epoch: int, n_rows: int, batch_size: int) -> list[IntArray]:
    """The ranks of each mini-batch of one epoch (full batch when batch_size <= 0)."""
    return [batch_rows(seed, epoch, b, n_rows, batch_size) for b in range(n_batches(n_rows, batch_size))]


def plan_digest(sizes_and_sums: Iterable[tuple[int, int, int]]) -> str:
    """A digest of an epoch's batches as (batch, rows, Σ ranks): what two parties compare before the first
    batch, so a party whose rows fall into other batches (another n, batch size, order or code) is named
    before any ciphertext crosses."""
    h = hashlib.sha256(b"fedspark-hetero-lr-plan\0")
    for batch, rows, rank_sum in sorted(sizes_and_sums):
        h.update(f"{batch}:{rows}:{rank_sum};".encode())
    return h.hexdigest()


def driver_plan_digest(seed: int, epoch: int, n_rows: int, batch_size: int) -> str:
    """:func:`plan_digest` of one epoch from the plan itself (the driver path holds no other truth)."""
    batches = epoch_batches(seed, epoch, n_rows, batch_size)
    return plan_digest((b, len(rows), int(rows.sum())) for b, rows in enumerate(batches))


def batch_column(
    batches: Iterator[tuple[pa.Array, ...]], *, seed: int, epoch: int, n_rows: int, batch_size: int
) -> Iterator[pa.Array]:
    """Column kernel: each row's mini-batch of the epoch, from its rank alone (``_batches.batch_of``)."""
    for (ranks,) in batches:
        yield pa.array(batch_of(seed, epoch, ranks.to_numpy(), n_rows, batch_size), pa.int64())
