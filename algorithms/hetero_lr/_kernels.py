"""Per-row compute of hetero LR: the Spark kernels over Arrow batches, and X·w.

These never talk to a peer or a session. The Paillier math itself lives in
``fedspark.crypto`` (``encrypt_values``, ``xtd``, ``merge_partials``) over
ints and numpy arrays; the driver-side backend calls it on cached arrays, and
the kernels here call it inside ``mapInArrow`` after converting columns with
``fedspark.arrow_bridge`` (see ``_compute``). Both produce the same integers.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import cast

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from fedspark.arrow_bridge import as_fixed_binary, column_view, fixed_binary_to_ints, ints_to_fixed_binary
from fedspark.crypto import FixedPoint, PublicKey, encrypt_values, xtd

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def linear_predictor(x: FloatArray, w: FloatArray) -> FloatArray:
    """u = X·w for one party's feature block."""
    return x @ w


def encrypt_batches(batches: Iterator[pa.RecordBatch], *, n: int, frac_bits: int) -> Iterator[pa.RecordBatch]:
    """(row, value) -> (row, [[value]]) with the ciphertext as a fixed-width binary column.

    Only ``n`` and ``frac_bits`` are bound, so Spark ships plain integers: each
    executor builds its own key object and obfuscator pool, and no obfuscator
    is ever used twice.
    """
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

    Emits one row per feature even for an empty partition (the identity 1), so
    the driver joins all partitions with ``merge_partials`` without special cases.
    """
    public_key = PublicKey.from_n(n)
    partial = [1] * len(feature_names)
    for batch in batches:
        if batch.num_rows == 0:
            continue
        xq = np.column_stack([batch.column(name).to_numpy() for name in feature_names])
        enc = fixed_binary_to_ints(as_fixed_binary(cast(pa.BinaryArray, batch.column("enc"))))
        for j, c in enumerate(xtd(public_key, xq, enc)):
            partial[j] = public_key.add(partial[j], c)
    yield pa.RecordBatch.from_arrays(
        [pa.array(range(len(feature_names)), pa.int32()), ints_to_fixed_binary(partial, public_key.ciphertext_width)],
        names=["feature", "partial"],
    )
