"""fedspark's engine: job files, the embedded runner, party processes, Spark sessions and the CLI.

The names below are what the layer above (``bench``, which runs real jobs through the engine) and the
tests use; everything else is private. They are exported lazily (PEP 562): ``fedspark.engine.party_main``
and the party processes import this package first, and must not pay for the runner or pyspark here.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fedspark.engine import _worker_daemon as preloading_workers
    from fedspark.engine._config import load_job as load_job
    from fedspark.engine._examples import scaled_breast as scaled_breast
    from fedspark.engine._malloc import GATEWAY_MALLOC_ENV as GATEWAY_MALLOC_ENV
    from fedspark.engine._runner import EmbeddedRunner as EmbeddedRunner
    from fedspark.engine._spark import SIM_SPARK_CONF as SIM_SPARK_CONF
    from fedspark.engine._spark import build_session as build_session

_HOME = {
    "EmbeddedRunner": "_runner",
    "GATEWAY_MALLOC_ENV": "_malloc",
    "SIM_SPARK_CONF": "_spark",
    "build_session": "_spark",
    "load_job": "_config",
    "scaled_breast": "_examples",
}
_MODULES = {"preloading_workers": "_worker_daemon"}
"""Exported modules: the workers a homo_nn ``Simulation`` preloads torch in (``SparkWorkers``)."""

__all__ = [
    "GATEWAY_MALLOC_ENV",
    "SIM_SPARK_CONF",
    "EmbeddedRunner",
    "build_session",
    "load_job",
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
