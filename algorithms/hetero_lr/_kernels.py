"""Per-row compute of hetero LR: the Spark kernels over Arrow batches, and X·w.

These never talk to a peer or a session. The Paillier math itself lives in
``fedspark.crypto`` (``encrypt_values``, ``xtd``, ``merge_partials``) over
ints and numpy arrays; the driver backend calls it on cached arrays, and the
kernels here call it inside ``mapInArrow`` after converting columns with
``fedspark.arrow_bridge`` (see ``_compute``, ``_executor``). Both produce the
same integers.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from fedspark.arrow_bridge import column_view, feature_matrix, fixed_binary_to_ints, ints_to_fixed_binary
from fedspark.crypto import FixedPoint, PublicKey, encrypt_values, quantise_features, xtd

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

RANK, LINEAR = "_rank", "_u"
"""Columns of the executor path's frames: the row's agreed position, and a party's X·w."""

_MAX_X_BITS = 63
"""hetero_lr does not bound feature magnitude (scaling is a job step): refuse only what int64
exponents cannot hold, instead of letting the cast corrupt it."""


@functools.lru_cache(maxsize=4)
def worker_key(n: int) -> PublicKey:
    """This Python worker's key object for ``n``, kept across tasks (Spark reuses its workers).

    Its obfuscator pool and windowed table are built once per worker instead of once per
    task, i.e. per mini-batch; the pool still hands each obfuscator out once.
    """
    return PublicKey.from_n(n)


def linear_predictor(x: FloatArray, w: FloatArray) -> FloatArray:
    """u = X·w for one party's feature block."""
    return x @ w


def encrypt_batches(batches: Iterator[pa.RecordBatch], *, n: int, frac_bits: int) -> Iterator[pa.RecordBatch]:
    """(row, value) -> (row, [[value]]) with the ciphertext as a fixed-width binary column.

    Only ``n`` and ``frac_bits`` are bound, so Spark ships plain integers: each
    executor builds its own key object and obfuscator pool, and no obfuscator
    is ever used twice.
    """
    public_key = worker_key(n)
    codec = FixedPoint(n, frac_bits)
    for batch in batches:
        values = column_view(batch, "value") if batch.num_rows else np.zeros(0)
        enc = encrypt_values(public_key, codec, values)
        yield pa.RecordBatch.from_arrays(
            [batch.column("row"), ints_to_fixed_binary(enc, public_key.ciphertext_width)], names=["row", "enc"]
        )


def linear_batches(
    batches: Iterator[pa.RecordBatch], *, rank: str, names: Sequence[str], w: FloatArray, out: str,
    keep: Sequence[str] = (),
) -> Iterator[pa.RecordBatch]:
    """(rank, features…, keep…) -> (rank, out = X·w, keep…)."""
    for batch in batches:
        u = feature_matrix(batch, list(names)) @ w if batch.num_rows else np.zeros(0)
        columns = [batch.column(rank), pa.array(u, pa.float64()), *(batch.column(k) for k in keep)]
        yield pa.RecordBatch.from_arrays(columns, names=[rank, out, *keep])


def encrypted_linear_batches(
    batches: Iterator[pa.RecordBatch], *, rank: str, names: Sequence[str], w: FloatArray, out: str, n: int,
    frac_bits: int,
) -> Iterator[pa.RecordBatch]:
    """(rank, features…) -> (rank, out = X·w, enc = [[X·w]]): a host's batch in one pass, no second job."""
    public_key = worker_key(n)
    codec = FixedPoint(n, frac_bits)
    for batch in batches:
        u = feature_matrix(batch, list(names)) @ w if batch.num_rows else np.zeros(0)
        enc = ints_to_fixed_binary(encrypt_values(public_key, codec, u), public_key.ciphertext_width)
        yield pa.RecordBatch.from_arrays([batch.column(rank), pa.array(u, pa.float64()), enc], names=[rank, out, "enc"])


def gradient_batches(
    batches: Iterator[pa.RecordBatch], *, n: int, rank: str, names: Sequence[str], x_frac_bits: int,
    ranks: IntArray, enc: pa.FixedSizeBinaryArray,
) -> Iterator[pa.RecordBatch]:
    """(rank, features…) of one task's rows of a batch -> its Σ_i x_ij·[[e_i]] for every feature j.

    ``ranks`` are the batch's ranks in ascending order and ``enc`` their ciphertexts in the same
    order, so a row finds its ciphertext by binary search. Features are quantised here (the
    driver path quantises once; here they stay floats in the persisted table). Emits one row
    per feature even for an empty task (the identity 1), so the driver joins all tasks with
    ``merge_partials`` without special cases. Only ``n`` and plain arrays are bound.
    """
    public_key = worker_key(n)
    partial = [1] * len(names)
    for batch in batches:
        if batch.num_rows == 0:
            continue
        mine = batch.column(rank).to_numpy()
        at = np.minimum(np.searchsorted(ranks, mine), len(ranks) - 1)
        if not np.array_equal(ranks[at], mine):
            raise ValueError("a row of this batch has no ciphertext: its rank is not in the batch's plan")
        xq = quantise_features(feature_matrix(batch, list(names)), x_frac_bits, _MAX_X_BITS)
        e = fixed_binary_to_ints(enc.take(pa.array(at)))
        for j, c in enumerate(xtd(public_key, xq, e)):
            partial[j] = public_key.add(partial[j], c)
    yield pa.RecordBatch.from_arrays(
        [pa.array(range(len(names)), pa.int32()), ints_to_fixed_binary(partial, public_key.ciphertext_width)],
        names=["feature", "partial"],
    )
