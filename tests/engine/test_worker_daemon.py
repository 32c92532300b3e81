"""The preloading Python daemon: a job created under ``preloading`` runs in workers forked
from a daemon that already imported the listed modules; other jobs are unaffected."""

from __future__ import annotations

import sys
from typing import Any

import pyarrow as pa
import pytest

from fedspark.arrow_bridge import collect_arrow
from fedspark.engine.runtime._spark import DEFAULT_SPARK_CONF
from fedspark.engine.runtime._worker_daemon import (
    DAEMON_MODULE,
    PRELOAD_ENV,
    preload,
    preloaded_kernel,
    preloading,
    start_warm_up,
)

# Modules nothing else in the test session imports: only a preloading daemon can have them.
_RARE = ("tabnanny", "fedspark_no_such_module")


def test_preload_imports_installed_modules_and_skips_missing_ones() -> None:
    sys.modules.pop("tabnanny", None)
    assert preload(["", *_RARE]) == ["tabnanny"]
    assert "tabnanny" in sys.modules


@pytest.mark.parametrize(("batches", "expected"), [
    ([], []),
    ([pa.record_batch({"id": pa.array([], pa.int64())})], []),
    ([pa.record_batch({"id": [1, 2]}), pa.record_batch({"id": [3]})], ["pyarrow", "pyarrow"]),
])
def test_preloaded_kernel_reports_one_row_per_nonempty_batch(batches: list[pa.RecordBatch], expected: list[str]) -> None:
    out = list(preloaded_kernel(iter(batches), modules=("pyarrow", "fedspark_no_such_module")))
    assert [v for b in out for v in b.column("preloaded").to_pylist()] == expected
    assert all(b.schema.names == ["preloaded"] for b in out)


def test_engine_sessions_use_the_daemon() -> None:
    assert DEFAULT_SPARK_CONF["spark.python.daemon.module"] == DAEMON_MODULE


def test_jobs_created_under_preloading_get_preloaded_workers(spark: Any) -> None:
    assert spark.conf.get("spark.python.daemon.module") == DAEMON_MODULE
    env = spark.sparkContext.environment
    assert PRELOAD_ENV not in env
    warm = start_warm_up(spark, _RARE)
    assert PRELOAD_ENV not in env  # restored: later jobs keep the light daemon
    assert collect_arrow(warm).column("preloaded").to_pylist() == ["tabnanny"]

    plain = spark.range(2, numPartitions=2).mapInArrow(
        lambda batches: preloaded_kernel(batches, modules=_RARE), "preloaded string")
    assert collect_arrow(plain).column("preloaded").to_pylist() == ["", ""]


def test_preloading_restores_a_previous_value(spark: Any) -> None:
    env = spark.sparkContext.environment
    env[PRELOAD_ENV] = "numpy"
    try:
        with pytest.raises(ZeroDivisionError), preloading(spark, ["torch"]):
            assert env[PRELOAD_ENV] == "torch"
            1 / 0  # noqa: B018
        assert env[PRELOAD_ENV] == "numpy"
    finally:
        del env[PRELOAD_ENV]
