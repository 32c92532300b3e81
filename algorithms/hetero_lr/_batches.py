"""Mini-batch plan that every party derives from one shared seed, and the smallest batch it allows.

Every party derives the seed itself: the job's ``seed`` when it sets one, else
a hash of the salt all parties agreed by commit-reveal, so no party (the guest
included) picks which rows share a batch. Each party then computes the same
permutation of the aligned rows per epoch, so no row list crosses the wire.
The remainder of an epoch is folded into its last batch, so every batch has
at least ``batch_size`` rows: a short tail batch would be the easiest one to
solve for the residuals (see :func:`check_batches`).
"""

from __future__ import annotations

import hashlib

import numpy as np

from fedspark.algorithms.hetero_lr._kernels import IntArray
from fedspark.common import ConfigError

MIN_BATCH_ROWS = 100
"""No party takes part in a batch of this many rows or fewer, whatever its feature count."""


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


def epoch_batches(seed: int, epoch: int, n_rows: int, batch_size: int) -> list[IntArray]:
    """The row indices of each mini-batch of one epoch (full batch when batch_size <= 0)."""
    count = n_batches(n_rows, batch_size)
    if count == 1:
        return [np.arange(n_rows)]
    order = np.random.default_rng([seed, epoch]).permutation(n_rows)
    bounds = [i * batch_size for i in range(count)] + [n_rows]
    return [np.sort(order[start:end]) for start, end in zip(bounds[:-1], bounds[1:])]
