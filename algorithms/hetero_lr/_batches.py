"""Mini-batch plan that every party derives from one shared seed.

The guest draws the seed and sends it; each party then computes the same
permutation of the aligned rows per epoch, so no row list crosses the wire.
"""

from __future__ import annotations

import math

import numpy as np

from fedspark.algorithms.hetero_lr._kernels import IntArray


def n_batches(n_rows: int, batch_size: int) -> int:
    size = n_rows if batch_size <= 0 or batch_size >= n_rows else batch_size
    return math.ceil(n_rows / size)


def epoch_batches(seed: int, epoch: int, n_rows: int, batch_size: int) -> list[IntArray]:
    """The row indices of each mini-batch of one epoch (full batch when batch_size <= 0)."""
    if batch_size <= 0 or batch_size >= n_rows:
        return [np.arange(n_rows)]
    order = np.random.default_rng([seed, epoch]).permutation(n_rows)
    return [np.sort(order[i : i + batch_size]) for i in range(0, n_rows, batch_size)]
