"""Where a party's per-row math runs.

The aligned table is collected once as Arrow and kept in the driver, so a
mini-batch never pays for re-reading it. Two backends run the kernels of
``_kernels`` (Paillier math from ``fedspark.crypto``) over it:

- ``DriverCompute``: everything in the driver process. No Spark job per batch:
  best for small tables and small keys, where job latency would dominate.
- ``SparkCompute``: X·w in the driver (cheap), but encryption and X^T[[e]] (the
  Paillier work, ~99% of the time at 2048 bits) as ``mapInArrow`` jobs over
  Arrow batches, so they use every executor core.

The protocol code only sees ``PartyCompute``; a backend over a cached
DataFrame for tables that do not fit a driver can be added the same way.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np
import pyarrow as pa

from fedspark.algorithms.hetero_lr._kernels import (
    FloatArray,
    IntArray,
    encrypt_batches,
    gradient_batches,
    linear_predictor,
)
from fedspark.algorithms.hetero_lr._params import HeteroLRParams
from fedspark.arrow_bridge import ArrowKernel, collect_arrow, fixed_binary_to_ints, ints_to_fixed_binary, map_in_arrow
from fedspark.crypto import FixedPoint, PublicKey, encrypt_values, merge_partials, quantise_features, xtd

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# hetero_lr does not bound feature magnitude (scaling is a job step): refuse only
# what int64 exponents cannot hold, instead of letting the cast corrupt it.
_MAX_X_BITS = 63


class PartyCompute(Protocol):
    """The per-row operations one party needs for each mini-batch."""

    n_rows: int
    n_features: int

    def linear(self, rows: IntArray, w: FloatArray) -> FloatArray: ...

    def encrypt(self, values: FloatArray) -> list[int]: ...

    def gradient(self, rows: IntArray, enc: Sequence[int]) -> list[int]: ...


class DriverCompute:
    """Kernels over one cached (n, d) matrix; quantised features are computed once."""

    def __init__(
        self, x: FloatArray, public_key: PublicKey, frac_bits: int, x_frac_bits: int, workers: int = 1
    ) -> None:
        self._x = np.ascontiguousarray(x, dtype=np.float64)
        self._xq = quantise_features(self._x, x_frac_bits, _MAX_X_BITS)
        self._public_key = public_key
        self._codec = FixedPoint(public_key.n, frac_bits)
        self.n_rows, self.n_features = self._x.shape
        self._workers = workers

    def linear(self, rows: IntArray, w: FloatArray) -> FloatArray:
        return linear_predictor(self._x[rows], w)

    def encrypt(self, values: FloatArray) -> list[int]:
        return encrypt_values(self._public_key, self._codec, values)

    def gradient(self, rows: IntArray, enc: Sequence[int]) -> list[int]:
        return xtd(self._public_key, self._xq[rows], enc, workers=self._workers)



class SparkCompute(DriverCompute):
    """Encryption and X^T[[e]] as mapInArrow jobs; the rest as in ``DriverCompute``."""

    def __init__(
        self,
        spark: SparkSession,
        x: FloatArray,
        public_key: PublicKey,
        frac_bits: int,
        x_frac_bits: int,
        partitions: int,
    ) -> None:
        super().__init__(x, public_key, frac_bits, x_frac_bits)
        self._spark = spark
        self._partitions = max(1, partitions)
        self._frac_bits = frac_bits
        self._names = [f"x{j}" for j in range(self.n_features)]

    def encrypt(self, values: FloatArray) -> list[int]:
        table = pa.table({"row": np.arange(len(values), dtype=np.int64), "value": np.asarray(values, np.float64)})
        kernel = functools.partial(encrypt_batches, n=self._public_key.n, frac_bits=self._frac_bits)
        out = self._run(table, kernel, "row long, enc binary").sort_by("row")
        return fixed_binary_to_ints(out.column("enc"))

    def gradient(self, rows: IntArray, enc: Sequence[int]) -> list[int]:
        columns = {name: self._xq[rows, j] for j, name in enumerate(self._names)}
        table = pa.table({**columns, "enc": ints_to_fixed_binary(enc, self._public_key.ciphertext_width)})
        kernel = functools.partial(gradient_batches, n=self._public_key.n, feature_names=self._names)
        out = self._run(table, kernel, "feature int, partial binary")
        features = out.column("feature").to_numpy().tolist()
        return merge_partials(self._public_key, features, fixed_binary_to_ints(out.column("partial")), self.n_features)

    def _run(self, table: pa.Table, kernel: ArrowKernel, schema: str) -> pa.Table:
        df = self._spark.createDataFrame(table).repartition(self._partitions)
        # bounded: one mini-batch's ciphertexts, or one partial sum per partition and feature; the
        # driver already holds the batch here (executor-resident tables are issue 19)
        return collect_arrow(map_in_arrow(df, kernel, schema))  # bounded: one batch's values (see above)


def compute_factory(
    x: FloatArray,
    params: HeteroLRParams,
    *,
    intercept: bool,
    spark: SparkSession | None = None,
    partitions: int = 2,
) -> Callable[[PublicKey], PartyCompute]:
    """A factory for ``train_guest``/``train_host``: Spark executors when a session is
    given, else the driver. The guest adds a constant column for its intercept."""
    matrix = np.column_stack([x, np.ones(len(x))]) if intercept else x

    def make(public_key: PublicKey) -> PartyCompute:
        if spark is None:
            return DriverCompute(matrix, public_key, params.frac_bits, params.x_frac_bits, workers=partitions)
        return SparkCompute(spark, matrix, public_key, params.frac_bits, params.x_frac_bits, partitions)

    return make
