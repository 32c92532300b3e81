"""fedspark's engine: ``config/`` (job, party, exchange, cluster files), ``runtime/`` (runner, party
processes, events, outputs, Spark sessions, spark-submit) and ``cli/`` (every command).

The names below are what the layer above (``bench``, which runs real jobs through the engine) and the
tests use; everything else is private. They are exported lazily (PEP 562): ``fedspark.engine.party_main``
and the party processes import this package first, and must not pay for the runner or pyspark here.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fedspark.engine.config._job import load_job as load_job
    from fedspark.engine.runtime import _worker_daemon as preloading_workers
    from fedspark.engine.runtime._examples import scaled_breast as scaled_breast
    from fedspark.engine.runtime._malloc import GATEWAY_MALLOC_ENV as GATEWAY_MALLOC_ENV
    from fedspark.engine.runtime._runner import EmbeddedRunner as EmbeddedRunner
    from fedspark.engine.runtime._spark import SIM_SPARK_CONF as SIM_SPARK_CONF
    from fedspark.engine.runtime._spark import build_session as build_session
    from fedspark.engine.runtime._spark import pin_to_cpus as pin_to_cpus

_HOME = {
    "EmbeddedRunner": "runtime._runner",
    "GATEWAY_MALLOC_ENV": "runtime._malloc",
    "SIM_SPARK_CONF": "runtime._spark",
    "build_session": "runtime._spark",
    "load_job": "config._job",
    "pin_to_cpus": "runtime._spark",
    "scaled_breast": "runtime._examples",
}
_MODULES = {"preloading_workers": "runtime._worker_daemon"}
"""Exported modules: the workers a homo_nn ``Simulation`` preloads torch in (``SparkWorkers``)."""

__all__ = [
    "GATEWAY_MALLOC_ENV",
    "SIM_SPARK_CONF",
    "EmbeddedRunner",
    "build_session",
    "load_job",
    "pin_to_cpus",
    "preloading_workers",
    "scaled_breast",
]


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        value = importlib.import_module(f"{__name__}.{_MODULES[name]}")
    elif name in _HOME:
        value = getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    setattr(sys.modules[__name__], name, value)
    return value
