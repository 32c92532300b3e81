"""Where a client's training rows come from: numpy arrays already in memory, or its table kept in Spark.

A real client's table may be larger than its driver, so :class:`TableRows`
never collects it: the validated DataFrame is split by a hash of the id into
blocks of about ``stream.block_rows`` rows, persisted (memory, spilling to
disk), and the driver fetches one block at a time as Arrow (one Spark job per
block; the cached batches of other blocks are skipped by their column
statistics), the next one while torch trains on the current one. Each epoch visits the blocks in an order drawn from the job's
seed, and rows are sorted by id inside a block, so a run is reproducible
whatever Spark's partitioning. A table of at most ``stream.buffer_rows`` rows
stays in the driver after its first pass: it is within the memory bound
anyway, and refetching it every epoch would only add Spark jobs.

:class:`ArrayRows` is the in-memory form (tests, and the simulation's virtual
clients, whose rows are already in their Spark task).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Protocol

import numpy as np

from fedspark.common import ConfigError

if TYPE_CHECKING:
    import torch
    from pyspark.sql import DataFrame

    from fedspark.algorithms.homo_nn._params import StreamParams
    from fedspark.storage import PartyTable

Block = tuple[np.ndarray, np.ndarray]
"""Features (row-major float64) and labels (float64) of consecutive rows."""

_BLOCK = "_fedspark_block"


class Rows(Protocol):
    """A client's rows, handed out block by block; no block needs the whole table in memory."""

    @property
    def n_rows(self) -> int: ...

    @property
    def n_features(self) -> int: ...

    def blocks(self, generator: torch.Generator | None = None) -> Iterator[Block]:
        """Every row once; with ``generator``, blocks in an order drawn from it (an epoch's order)."""
        ...


class ArrayRows:
    """Rows already in memory: one block, so an epoch shuffles the whole table at once."""

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        self.x = np.ascontiguousarray(x, dtype=np.float64)
        self.y = np.ascontiguousarray(y, dtype=np.float64)

    @property
    def n_rows(self) -> int:
        return int(self.x.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.x.shape[1])

    def blocks(self, generator: torch.Generator | None = None) -> Iterator[Block]:
        yield self.x, self.y


class TableRows:
    """A client's validated table, persisted in its executors and fetched one block at a time.

    Call :meth:`close` (or use it as a context manager) to release the persisted blocks.
    """

    def __init__(self, table: PartyTable, feature_names: list[str], stream: StreamParams, *, party: str) -> None:
        from pyspark import StorageLevel
        from pyspark.sql import functions as F

        missing = [name for name in ["label", *feature_names] if name not in table.dataframe.columns]
        if missing:
            raise ConfigError(f"{party}: table {table.uri} lacks column(s) {', '.join(missing)} "
                              f"(the model's features: {', '.join(feature_names)})")
        self.feature_names = list(feature_names)
        self._n_rows = table.n_rows
        self._resident_limit = stream.buffer_rows
        self.n_blocks = max(1, math.ceil(self._n_rows / stream.block_rows))
        frame = table.dataframe.withColumn(_BLOCK, F.pmod(F.xxhash64("id"), F.lit(self.n_blocks)).cast("int"))
        # One shuffle at setup puts each block's rows together (in id order: reproducible), so a
        # block's fetch reads its own cached batches and skips the others by their statistics.
        # No more partitions than cores: every fetch schedules a task per partition, mostly idle.
        partitions = min(self.n_blocks, frame.sparkSession.sparkContext.defaultParallelism)
        frame = frame.repartition(partitions, _BLOCK).sortWithinPartitions(_BLOCK, "id")
        self._frame: DataFrame = frame.select(_BLOCK, "label", *self.feature_names).persist(
            StorageLevel.MEMORY_AND_DISK)
        self._frame.count()
        self._resident: list[Block] | None = None

    @property
    def n_rows(self) -> int:
        return self._n_rows

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    def blocks(self, generator: torch.Generator | None = None) -> Iterator[Block]:
        import torch

        order: Sequence[int] = range(self.n_blocks)
        if generator is not None and self.n_blocks > 1:
            order = torch.randperm(self.n_blocks, generator=generator).tolist()
        if self._resident is not None:
            yield from (self._resident[k] for k in order)
            return
        keep = self._n_rows <= self._resident_limit
        fetched: dict[int, Block] = {}
        # The next block is fetched while torch trains on this one (as toLocalIterator's
        # prefetchPartitions): at most two blocks in the driver, and the Spark job's latency hidden.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="fedspark-rows") as fetcher:
            ahead = fetcher.submit(self._fetch, order[0])
            for i, k in enumerate(order):
                block = ahead.result()
                if i + 1 < len(order):
                    ahead = fetcher.submit(self._fetch, order[i + 1])
                if keep:
                    fetched[k] = block
                yield block
        if keep and len(fetched) == self.n_blocks:
            self._resident = [fetched[k] for k in range(self.n_blocks)]

    def _fetch(self, k: int) -> Block:
        """Block ``k`` as Arrow, then one row-major copy of its features (bounded by the block size)."""
        from pyspark.sql import functions as F

        from fedspark.arrow_bridge import collect_arrow, feature_matrix

        table = collect_arrow(self._frame.where(F.col(_BLOCK) == k).drop(_BLOCK))  # bounded: one block (stream.block_rows)
        labels = table.column("label").to_numpy()
        return feature_matrix(table, self.feature_names), np.ascontiguousarray(labels, dtype=np.float64)

    def close(self) -> None:
        self._resident = None
        self._frame.unpersist()

    def __enter__(self) -> TableRows:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
