"""Paillier math over a batch of values: plain ints and numpy arrays, no Arrow.

The one home of the per-row Paillier work of an algorithm. A Spark kernel
(``Iterator[RecordBatch] -> Iterator[RecordBatch]``) converts its columns with
``fedspark.arrow_bridge`` and calls these; the driver calls them on cached
arrays. Both paths therefore produce the same integers, and crypto stays below
the Arrow layer.

X^T[[d]] is computed per partition (or per mini-batch) and the partial
products are joined with :func:`merge_partials`: Paillier ⊕ is a modular
product, so the order of partitions does not change the result.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from fedspark.crypto._errors import EncodingOverflow
from fedspark.crypto._fixed_point import FixedPoint
from fedspark.crypto._paillier import PublicKey

DEFAULT_X_FRAC_BITS = 16
DEFAULT_MAX_X_BITS = 24


def quantise_features(
    x: npt.ArrayLike, x_frac_bits: int = DEFAULT_X_FRAC_BITS, max_bits: int = DEFAULT_MAX_X_BITS, *, name: str = "x"
) -> npt.NDArray[np.int64]:
    """Features as signed integers round(x·2^f) with |q| < 2^max_bits: the short exponents of X^T[[d]].

    A value that needs more bits (or is not finite) raises :class:`EncodingOverflow`
    naming it, the range ±2^(max_bits − f) and the precision f: a longer exponent
    would silently cost more multiplications per term, and a cast past int64
    would silently corrupt it.
    """
    arr = np.asarray(x, dtype=np.float64)
    limit = 2.0 ** (max_bits - x_frac_bits)
    finite = np.isfinite(arr)
    scaled = np.rint(np.where(finite, arr, 0.0) * 2.0**x_frac_bits)
    bad = ~finite | (np.abs(scaled) >= 2.0**max_bits)
    if bad.any():
        raise EncodingOverflow(float(arr[bad].flat[0]), limit, x_frac_bits, what=f"feature '{name}' value")
    return scaled.astype(np.int64)


def encrypt_values(public_key: PublicKey, codec: FixedPoint, values: npt.ArrayLike) -> list[int]:
    """[[v_i]] for each float value, encoded at the job's precision, each with its own obfuscator.

    Obfuscators come from the key's pool, which hands each out once: no two
    ciphertexts share randomness, even within one batch.
    """
    return public_key.encrypt_many(codec.encode(values))


def xtd(public_key: PublicKey, xq: npt.ArrayLike, enc: Sequence[int], *, workers: int = 1) -> list[int]:
    """X^T[[d]]: Σ_i x_ij·[[d_i]] for each column j of the quantised (rows, features) matrix.

    One bucket multi-exponentiation per feature over the batch's rows: about two
    or three modular multiplications per (row, feature) instead of one powmod
    each. The result carries the fractional bits of [[d]] plus those of ``xq``.
    """
    return public_key.dot_many(enc, xq, workers=workers)


def merge_partials(public_key: PublicKey, keys: Iterable[int], partials: Iterable[int], size: int) -> list[int]:
    """⊕ of the partial ciphertexts per key 0..size−1 (e.g. per feature, over partitions).

    A key with no partial gets the identity 1, the deterministic encryption of 0.
    """
    merged = [1] * size
    for j, c in zip(keys, partials):
        merged[j] = public_key.add(merged[j], c)
    return merged
