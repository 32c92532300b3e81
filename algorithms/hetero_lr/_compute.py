"""Where a party's per-row math runs: over Arrow-backed arrays cached in the driver.

Small tables should not pay one Spark job per mini-batch, so the aligned table
is collected once (as Arrow, zero-copy numpy views) and the kernels of
``_kernels`` run over it for every batch. The protocol code only sees the
``PartyCompute`` interface, so an executor-side backend for tables that do not
fit a driver can replace this one without touching the protocol.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from fedspark.algorithms.hetero_lr._kernels import (
    FloatArray,
    IntArray,
    encrypt_values,
    encrypted_gradient,
    linear_predictor,
    quantise_features,
)
from fedspark.algorithms.hetero_lr._params import HeteroLRParams
from fedspark.crypto import FixedPoint, PublicKey


class PartyCompute(Protocol):
    """The per-row operations one party needs for each mini-batch."""

    n_rows: int
    n_features: int

    def linear(self, rows: IntArray, w: FloatArray) -> FloatArray: ...

    def encrypt(self, values: FloatArray) -> list[int]: ...

    def gradient(self, rows: IntArray, enc: Sequence[int]) -> list[int]: ...


class DriverCompute:
    """Kernels over one cached (n, d) matrix; quantised features are computed once."""

    def __init__(self, x: FloatArray, public_key: PublicKey, frac_bits: int, x_frac_bits: int) -> None:
        self._x = np.ascontiguousarray(x, dtype=np.float64)
        self._xq = quantise_features(self._x, x_frac_bits)
        self._public_key = public_key
        self._codec = FixedPoint(public_key.n, frac_bits)
        self.n_rows, self.n_features = self._x.shape

    def linear(self, rows: IntArray, w: FloatArray) -> FloatArray:
        return linear_predictor(self._x[rows], w)

    def encrypt(self, values: FloatArray) -> list[int]:
        return encrypt_values(self._public_key, self._codec, values)

    def gradient(self, rows: IntArray, enc: Sequence[int]) -> list[int]:
        return encrypted_gradient(self._public_key, self._xq[rows], enc)



def driver_compute_factory(
    x: FloatArray, params: HeteroLRParams, *, intercept: bool
) -> Callable[[PublicKey], DriverCompute]:
    """A factory for ``train_guest``/``train_host``; the guest adds a constant column for its intercept."""
    matrix = np.column_stack([x, np.ones(len(x))]) if intercept else x

    def make(public_key: PublicKey) -> DriverCompute:
        return DriverCompute(matrix, public_key, params.frac_bits, params.x_frac_bits)

    return make
