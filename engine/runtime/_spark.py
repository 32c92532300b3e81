"""Spark session lifecycle for one party.

Each party process owns one SparkSession: local by default, or the cluster
spark-submit names (see :func:`submitted_conf`). The machines this runs on have
2 cores and several party JVMs at once, so defaults are small: ``local[2]``,
a 1 GiB driver, 4 shuffle partitions, Arrow on, and no UI (whose port would
collide between parties on one host).
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Collection
from typing import TYPE_CHECKING

from fedspark.common import ConfigError
from fedspark.engine.runtime._worker_daemon import DAEMON_MODULE

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

DEFAULT_SPARK_CONF: dict[str, str] = {
    "spark.master": "local[2]",
    "spark.driver.memory": "1g",
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "2",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.execution.arrow.maxRecordsPerBatch": "10000",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.driver.host": "127.0.0.1",
    "spark.python.worker.reuse": "true",
    # PySpark's daemon, plus imports chosen per job (a simulation's training workers start with torch).
    "spark.python.daemon.module": DAEMON_MODULE,
}


_LOOPBACK_KEYS = ("spark.driver.bindAddress", "spark.driver.host")

QUICK_JIT_CONF: dict[str, str] = {"spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1"}
"""The JVM's JIT stops at its quick tier (C1): for short runs, where C2's compiling costs more than it saves."""
SIM_SPARK_CONF: dict[str, str] = dict(QUICK_JIT_CONF)
"""Session defaults for a simulation (a job's ``spark`` section overrides them).

A simulation is one short-lived local driver whose JVM only plans small jobs
and moves a few Arrow batches per round; the training runs in Python. Its
JIT's optimising tier (C2) compiled code the run barely reused while it
competed for the same two cores: stopping at the quick C1 tier halved the
driver JVM's CPU time for the session start, cut it by 40% after it, and
set-up + round 0 by 25-35% on the loaded 2-core machine (docs/benchmarks.md). Later rounds
were not clearly slower in interleaved runs (means 0.62-0.66 s against
0.52-0.90 s), but that is not proven; not an engine-wide default, as long
jobs over big tables (the PSI and Arrow benches) do reuse C2's code.
"""
SMALL_INPUT_BYTES = 64 << 20
"""A party whose local input is at most this size starts its JVM with :data:`QUICK_JIT_CONF`.

Measured on the 2-core machines (docs/benchmarks.md, "Small jobs: the JIT's quick tier"): the breast
scoring job took 22.4-22.7 s instead of 32.8-35.1 s and training 26.1 s
instead of 30.4 s; federated scoring of 1M rows (about 50 MB per party)
19.7-19.9 s instead of 20.8-22.7 s; but of 10M rows (about 500 MB) 62.6 s
instead of 45-47 s, where C2's code is reused long enough to pay for itself.
"""


def jit_conf_for(input_bytes: int | None) -> dict[str, str]:
    """Session settings for a party's JIT, given its input size (None: unknown, e.g. on HDFS: the JVM's default)."""
    return dict(QUICK_JIT_CONF) if input_bytes is not None and input_bytes <= SMALL_INPUT_BYTES else {}


def pin_to_cpus(cpus: Collection[int]) -> dict[str, str]:
    """Pin every thread of this process to ``cpus``; return the local master sized to them.

    Call it before the Spark JVM starts: the JVM, the Python daemon it forks and every worker
    inherit the set (and the JVM sizes its GC and JIT threads from it), so the whole party runs
    on those cores only, as it would on its own machine. Threads already running (e.g. a BLAS
    pool started at import) are pinned too, not just the calling one.
    """
    chosen = set(cpus)
    try:
        for tid in os.listdir("/proc/self/task"):
            try:
                os.sched_setaffinity(int(tid), chosen)
            except ProcessLookupError:  # the thread ended meanwhile
                pass
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot pin this process to CPUs {sorted(chosen)}: {exc}") from None
    return {"spark.master": f"local[{len(chosen)}]"}


def submitted_conf() -> dict[str, str] | None:
    """The Spark settings spark-submit gave this driver, or None when not launched by spark-submit.

    spark-submit starts the Python driver with ``PYSPARK_GATEWAY_PORT`` pointing at
    its own JVM, whose system properties hold the command line's ``--master``,
    ``--conf`` and friends.
    """
    if "PYSPARK_GATEWAY_PORT" not in os.environ:
        return None
    from pyspark import SparkConf, SparkContext

    SparkContext._ensure_initialized()  # connects to spark-submit's JVM; starts nothing
    return {str(k): str(v) for k, v in SparkConf().getAll()}


def build_session(app_name: str, conf: dict[str, str] | None = None) -> SparkSession:
    """Start (or reuse) this process's SparkSession with party-sized defaults.

    Under spark-submit, settings its command line gave take precedence over the
    defaults and over ``conf`` (the job file's ``spark`` section).
    """
    from pyspark.sql import SparkSession

    # Executors' Python workers must be this interpreter (the one fedspark is installed in),
    # not whatever ``python3`` is first on PATH.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    # fedspark moves data with mapInArrow, not pandas; PySpark's pandas-3 notice is noise in party logs.
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
    settings = {**DEFAULT_SPARK_CONF, **(conf or {})}
    submitted = submitted_conf()
    if submitted is not None:
        # Launched by spark-submit: what its command line set (master, memory, cores) wins, and
        # on a real cluster the driver must not advertise the loopback address to its executors.
        master = submitted.get("spark.master", "local")
        settings = {k: v for k, v in settings.items() if k not in submitted
                    and not (k in _LOOPBACK_KEYS and not master.startswith("local"))}
        app_name = submitted.get("spark.app.name", app_name)
    builder = SparkSession.builder.appName(app_name)
    for key, value in settings.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session
