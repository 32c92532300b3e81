"""Where a party's per-row math runs.

The protocol code (``_guest``, ``_host``) only sees ``PartyCompute``: batches
(:class:`._batches.Batch`) and vectors, never where the rows live. Two
backends run the kernels (Paillier math from ``fedspark.crypto``):

- ``DriverCompute``: the aligned table collected once into the driver, everything
  in the driver process (X^T[[e]] columns over a small process pool). No Spark
  job per batch: best for tables a driver holds, where job latency would dominate.
- ``ExecutorCompute`` (``_executor``): the table stays a persisted DataFrame and
  every per-row step runs in the executors (``mapInArrow`` over Arrow batches);
  for tables a driver cannot hold.

Both run the same batch plan, so they compute the same weights.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np

from fedspark.algorithms.hetero_lr._batches import Batch, driver_plan_digest
from fedspark.algorithms.hetero_lr._kernels import (
    _MAX_X_BITS,
    LINEAR,
    RANK,
    FloatArray,
    linear_predictor,
)
from fedspark.algorithms.hetero_lr._params import HeteroLRParams
from fedspark.arrow_bridge import collect_arrow
from fedspark.common import ProtocolError
from fedspark.crypto import FixedPoint, PublicKey, encrypt_values, quantise_features, xtd

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession



class PartyCompute(Protocol):
    """The per-row operations one party needs: per mini-batch, and once over the whole table at the end."""

    n_rows: int
    n_features: int
    spark: SparkSession | None
    """A session to receive a host's partial scores sent as a table."""

    def start_epoch(self, seed: int, epoch: int, batch_size: int) -> None: ...

    def plan_digest(self) -> str: ...

    def linear(self, batch: Batch, w: FloatArray) -> FloatArray: ...

    def labels(self, batch: Batch) -> FloatArray: ...

    def encrypted_linear(self, batch: Batch, w: FloatArray) -> tuple[FloatArray, list[int]]: ...

    def gradient(self, batch: Batch, enc: Sequence[int]) -> list[int]: ...

    def partial_scores(self, w: FloatArray) -> FloatArray | DataFrame: ...

    def scores(self, w: FloatArray, host_partials: Sequence[FloatArray | DataFrame]) -> FloatArray | DataFrame: ...

    def release(self) -> None: ...

    def metrics(self) -> dict[str, int]: ...


class DriverCompute:
    """Kernels over one cached (n, d) matrix; quantised features are computed once."""

    spark: SparkSession | None = None
    """A session to receive a host's partial scores sent as a table (the driver path needs none otherwise)."""

    def __init__(
        self, x: FloatArray, public_key: PublicKey, frac_bits: int, x_frac_bits: int, workers: int = 1,
        spark: SparkSession | None = None,
    ) -> None:
        self._x = np.ascontiguousarray(x, dtype=np.float64)
        self._xq = quantise_features(self._x, x_frac_bits, _MAX_X_BITS)
        self.spark = spark
        self._public_key = public_key
        self._codec = FixedPoint(public_key.n, frac_bits)
        self.n_rows, self.n_features = self._x.shape
        self._workers = workers
        self._plan: tuple[int, int, int] = (0, 0, -1)

    def start_epoch(self, seed: int, epoch: int, batch_size: int) -> None:
        self._plan = (seed, epoch, batch_size)

    def plan_digest(self) -> str:
        seed, epoch, batch_size = self._plan
        return driver_plan_digest(seed, epoch, self.n_rows, batch_size)

    def linear(self, batch: Batch, w: FloatArray) -> FloatArray:
        return linear_predictor(self._x[batch.rows], w)

    def labels(self, batch: Batch) -> FloatArray:
        raise RuntimeError("on the driver path the guest's labels are in its VerticalData")

    def encrypt(self, values: FloatArray) -> list[int]:
        return encrypt_values(self._public_key, self._codec, values)

    def encrypted_linear(self, batch: Batch, w: FloatArray) -> tuple[FloatArray, list[int]]:
        """u = X_B·w and [[u]] (a host's first step of every batch)."""
        u = self.linear(batch, w)
        return u, self.encrypt(u)

    def gradient(self, batch: Batch, enc: Sequence[int]) -> list[int]:
        return xtd(self._public_key, self._xq[batch.rows], enc, workers=self._workers)

    def partial_scores(self, w: FloatArray) -> FloatArray:
        return linear_predictor(self._x, w)

    def scores(self, w: FloatArray, host_partials: Sequence[FloatArray | DataFrame]) -> FloatArray:
        u = linear_predictor(self._x, w)
        for i, partial in enumerate(host_partials):
            arr = partial if isinstance(partial, np.ndarray) else _collect_partials(partial, self.n_rows)
            if arr.shape != (self.n_rows,):
                raise ProtocolError(f"host #{i} sent {arr.shape} partial scores, expected ({self.n_rows},)")
            u = u + arr
        scores: FloatArray = 1.0 / (1.0 + np.exp(-u))
        return scores

    def release(self) -> None:
        """Nothing persisted."""

    def metrics(self) -> dict[str, int]:
        return {}


def _collect_partials(frame: DataFrame, n_rows: int) -> FloatArray:
    """A host's partial scores sent as a table, for a guest on the driver path (a table it holds anyway)."""
    table = collect_arrow(frame.select(RANK, LINEAR)).sort_by(RANK)  # bounded: the driver path's own table size
    if table.num_rows != n_rows or table.column(RANK).to_pylist() != list(range(n_rows)):
        raise ProtocolError(f"a host's partial scores do not cover ranks 0..{n_rows - 1} once each")
    return np.asarray(table.column(LINEAR).to_numpy(), dtype=np.float64)


def compute_factory(
    x: FloatArray,
    params: HeteroLRParams,
    *,
    intercept: bool,
    spark: SparkSession | None = None,
    partitions: int = 2,
) -> Callable[[PublicKey], PartyCompute]:
    """A factory for ``train_guest``/``train_host`` over a driver-held table (``spark``, when given, only
    receives hosts' partial scores sent as tables). The guest adds a constant column for its intercept."""
    matrix = np.column_stack([x, np.ones(len(x))]) if intercept else x

    def make(public_key: PublicKey) -> PartyCompute:
        return DriverCompute(matrix, public_key, params.frac_bits, params.x_frac_bits, workers=partitions,
                             spark=spark)

    return make
