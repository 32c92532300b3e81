"""Spark's Python daemon for fedspark sessions: import the heavy modules once, then fork workers.

Spark starts one Python daemon per executor and forks every Python worker
from it. PySpark's own daemon (``pyspark.daemon``) imports almost nothing, so
each worker pays its imports on its first task: torch alone takes ~1.5-3.5 s,
and with ``local[2]`` two workers pay it at once on the same two cores, in
the middle of a simulation's first round. This daemon imports the modules
named in :data:`PRELOAD_ENV` first and then runs PySpark's daemon loop, so the
forked workers start with them loaded (shared copy-on-write pages) and the
import is paid once, when the daemon starts.

Fork safety: PySpark's daemon imports the worker module only after the fork
because a fork copies just the calling thread. The modules preloaded here
start no thread that could hold a lock across the fork except allocator and
BLAS pools that register ``pthread_atfork`` handlers (jemalloc's background
thread, OpenBLAS), and nothing here runs a computation; torch's intra-op pool
starts on first use, in the worker.

Which workers preload is chosen per Spark job, not per session: Spark keeps
one daemon per (Python, daemon module, executor environment), and a Python
function carries the driver's executor environment (``SparkContext.environment``)
as it was when the function was created. Functions created inside
:func:`preloading` carry :data:`PRELOAD_ENV`, so their tasks get workers from
a second daemon that preloads, while other jobs (reading and validating a
table) keep the light one, which starts in a fraction of the time: the table
read does not wait for torch, and on free cores the two start-ups overlap (on
saturated ones they only share the CPU). A listed
module that is not installed is skipped, so asking for torch works without
the ``nn`` extra (such tasks then fail at their own ``import torch``).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import pyarrow as pa

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

DAEMON_MODULE = "fedspark.engine.runtime._worker_daemon"
"""``spark.python.daemon.module`` of every engine session; without :data:`PRELOAD_ENV` it is PySpark's daemon."""
PRELOAD_ENV = "FEDSPARK_WORKER_PRELOAD"
@contextlib.contextmanager
def preloading(spark: SparkSession, modules: Sequence[str]) -> Iterator[None]:
    """Python functions (``mapInArrow`` kernels) created inside run in workers that preloaded ``modules``.

    Create the DataFrame inside, run it anywhere. Not for concurrent use with
    other threads creating Python functions on the same session.
    """
    env = spark.sparkContext.environment
    previous = env.get(PRELOAD_ENV)
    env[PRELOAD_ENV] = ",".join(modules)
    try:
        yield
    finally:
        if previous is None:
            del env[PRELOAD_ENV]
        else:
            env[PRELOAD_ENV] = previous


def preload(modules: Sequence[str]) -> list[str]:
    """Import each installed module of ``modules``; returns the ones imported."""
    loaded = []
    for name in modules:
        if name and importlib.util.find_spec(name.split(".")[0]) is not None:
            importlib.import_module(name)
            loaded.append(name)
    return loaded


def preloaded_kernel(batches: Iterator[pa.RecordBatch], *, modules: tuple[str, ...]) -> Iterator[pa.RecordBatch]:
    """Kernel: one row per input batch naming the ``modules`` already imported in this worker.

    The warm-up job's task, and the test's proof that the worker came from this daemon.
    """
    import sys

    names = ",".join(name for name in modules if name in sys.modules)
    for batch in batches:
        yield pa.RecordBatch.from_arrays([pa.array([names] * min(batch.num_rows, 1), pa.string())],
                                         names=["preloaded"])


def start_warm_up(spark: SparkSession, modules: Sequence[str]) -> DataFrame:
    """A one-task job whose worker comes from the preloading daemon; collect it to start that daemon.

    Built on the calling thread (see :func:`preloading`), collected on another
    (:func:`fedspark.arrow_bridge.collect_arrow`) while the caller reads its
    table. One task, so it holds one of the executor's task slots while the
    daemon imports, and the table's own jobs keep the others.
    """
    from fedspark.arrow_bridge import map_in_arrow

    kernel = functools.partial(preloaded_kernel, modules=tuple(modules))
    with preloading(spark, modules):
        return map_in_arrow(spark.range(1, numPartitions=1), kernel, "preloaded string")


def main() -> None:
    preload(os.environ.get(PRELOAD_ENV, "").split(","))
    from pyspark.daemon import manager

    manager()


if __name__ == "__main__":
    main()
