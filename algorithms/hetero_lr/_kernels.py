"""Per-row compute of hetero LR: pure functions over numpy views and Arrow batches.

These never talk to a peer or a session. The driver-side backend calls the
numpy forms on cached arrays; the Spark backend calls the RecordBatch forms
inside ``mapInArrow`` (see ``_compute``). Both produce the same integers.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import cast

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from fedspark.arrow_bridge import as_fixed_binary, column_view, fixed_binary_to_ints, ints_to_fixed_binary
from fedspark.crypto import FixedPoint, PublicKey

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def linear_predictor(x: FloatArray, w: FloatArray) -> FloatArray:
    """u = X·w for one party's feature block."""
    return x @ w


def quantise_features(x: FloatArray, x_frac_bits: int) -> IntArray:
    """Features as signed integers round(x·2^b): the short exponents of X^T[[d]]."""
    return np.rint(x * float(2**x_frac_bits)).astype(np.int64)


def encrypt_values(public_key: PublicKey, codec: FixedPoint, values: FloatArray) -> list[int]:
    """[[v_i]] for each value, each with fresh randomness."""
    return [public_key.encrypt(m) for m in codec.encode(values)]


def encrypted_gradient(public_key: PublicKey, xq: IntArray, enc: Sequence[int], workers: int = 1) -> list[int]:
    """Σ_i x_ij·[[e_i]] for each feature j (scale: frac_bits + x_frac_bits).

    A bucket multi-exponentiation per feature over the batch's rows: about two or
    three modular multiplications per (row, feature) instead of one powmod each.
    """
    return public_key.dot_many(enc, xq, workers=workers)


# --- RecordBatch forms, for mapInArrow -----------------------------------------

def encrypt_batches(batches: Iterator[pa.RecordBatch], *, n: int, frac_bits: int) -> Iterator[pa.RecordBatch]:
    """(row, value) -> (row, [[value]]) with the ciphertext as a fixed-width binary column."""
    public_key = PublicKey.from_n(n)
    codec = FixedPoint(n, frac_bits)
    for batch in batches:
        values = column_view(batch, "value") if batch.num_rows else np.zeros(0)
        enc = encrypt_values(public_key, codec, values)
        yield pa.RecordBatch.from_arrays(
            [batch.column("row"), ints_to_fixed_binary(enc, public_key.ciphertext_width)], names=["row", "enc"]
        )


def gradient_batches(
    batches: Iterator[pa.RecordBatch], *, n: int, feature_names: Sequence[str]
) -> Iterator[pa.RecordBatch]:
    """(quantised features..., enc) -> this partition's Σ_i x_ij·[[e_i]] for every feature j.

    Partial products of all partitions are multiplied together on the driver.
    """
    public_key = PublicKey.from_n(n)
    partial = [1] * len(feature_names)
    for batch in batches:
        if batch.num_rows == 0:
            continue
        xq = np.column_stack([batch.column(name).to_numpy() for name in feature_names])
        enc = fixed_binary_to_ints(as_fixed_binary(cast(pa.BinaryArray, batch.column("enc"))))
        for j, c in enumerate(encrypted_gradient(public_key, xq, enc)):
            partial[j] = public_key.add(partial[j], c)
    yield pa.RecordBatch.from_arrays(
        [pa.array(range(len(feature_names)), pa.int32()), ints_to_fixed_binary(partial, public_key.ciphertext_width)],
        names=["feature", "partial"],
    )
