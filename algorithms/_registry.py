"""The algorithm registry: what each algorithm declares, and the task every party hands its entry point.

An algorithm registers one :class:`Algorithm` (in its own package, on import): its
params model, the roles it runs (one entry point per role), which roles need a
label column, whether it needs an arbiter, and whether the CLI shows its progress
in epochs/rounds or as one step. The engine's configuration, party runtime and CLI
read only this registry, so adding an algorithm edits no engine file.

Where the engine finds an algorithm: the built-ins (``_BUILTIN``) are imported by
name on first lookup; a third-party package registers in its module, which a job
names in ``modules:`` (every party process imports them before reading the job's
algorithm) or which an installed distribution lists in the ``fedspark.algorithms``
entry-point group (``name = "package.module"``, imported on lookup).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from fedspark.common import ConfigError, PartyRef, Role

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from fedspark.federation import Context
    from fedspark.storage import TableSpec

ENTRY_POINT_GROUP = "fedspark.algorithms"
_BUILTIN = {
    "hetero_lr": "fedspark.algorithms.hetero_lr",
    "hetero_lr_predict": "fedspark.algorithms.hetero_lr",
    "homo_nn": "fedspark.algorithms.homo_nn",
    "psi": "fedspark.algorithms.psi",
}


@dataclass(frozen=True)
class Task:
    """What the engine hands every algorithm's entry point: one party's side of one job.

    ``params`` is the job's ``params`` validated by the algorithm's own model. ``compute``,
    ``features``, ``align``, ``security``, ``debug`` and ``scoring`` are the job's generic
    sections as written (``compute.backend``/``partitions``, ``features.fill``/``scale``/``active``,
    ``align`` ``"same_ids"`` or ``"psi"``, ``security.key_size``, ``debug.record_gradients``,
    ``scoring.model_job``/``model_job_id``/``output``). ``min_key_size`` is this party's own
    Paillier floor (never the job's). ``emit(event, **fields)`` reports progress
    (``emit("epoch", epoch=1, total=20, loss=0.6)``) with this party named.
    """

    ctx: Context
    me: PartyRef
    spark: SparkSession | None
    params: Any
    job_name: str
    out: Path
    runs_dir: Path
    data: TableSpec | None = None
    test_data: TableSpec | None = None
    model_dir: str | None = None
    compute: Any = None
    features: Any = None
    align: str = "same_ids"
    security: Any = None
    debug: Any = None
    scoring: Any = None
    min_key_size: int = 2048
    delay_s: float = 0.0
    emit: Callable[..., None] = field(default=lambda event, **fields: None)


Entry = Callable[[Task], dict[str, Any]]
"""A role's entry point: runs that role's side of the job and returns its metrics (JSON-ready)."""


@dataclass(frozen=True)
class Algorithm:
    """One algorithm as the engine sees it.

    ``entry_points``: the roles it runs. ``requires_arbiter``: a job without ``parties.arbiter`` is
    refused. ``labels_at``: roles whose table must name a ``label_column``. ``steps_param``: the
    ``params`` field counting its epochs or rounds (the CLI's progress bar); ``None`` is a one-step
    job. ``delays_itself``: it applies ``debug.delay_s`` itself (every round) instead of the runtime
    stalling once at the start. ``simulation``: it runs ``simulation:`` jobs.
    """

    name: str
    params: type[BaseModel]
    entry_points: Mapping[Role, Entry]
    requires_arbiter: bool = False
    labels_at: frozenset[Role] = frozenset()
    steps_param: str | None = None
    delays_itself: bool = False
    simulation: bool = False

    @property
    def one_step(self) -> bool:
        return self.steps_param is None

    def entry_point(self, role: Role) -> Entry:
        try:
            return self.entry_points[role]
        except KeyError:
            raise ConfigError(f"algorithm {self.name} has no {role.value} role") from None


_REGISTRY: dict[str, Algorithm] = {}


def register(algorithm: Algorithm) -> Algorithm:
    """Make ``algorithm`` available to jobs by its name (the same object again is a no-op)."""
    known = _REGISTRY.get(algorithm.name)
    if known is not None and known is not algorithm:
        raise ValueError(f"algorithm {algorithm.name!r} is already registered")
    _REGISTRY[algorithm.name] = algorithm
    return algorithm


def get_algorithm(name: str) -> Algorithm:
    """The registered algorithm ``name``, importing its built-in or entry-point module on first use."""
    if name not in _REGISTRY:
        module = _BUILTIN.get(name) or next(
            (ep.value for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name), None
        )
        if module is not None:
            importlib.import_module(module.split(":")[0])
    if name not in _REGISTRY:
        raise ConfigError(f"unknown algorithm {name!r} (known: {', '.join(algorithm_names())})")
    return _REGISTRY[name]


def algorithm_names() -> list[str]:
    """Every algorithm a job may name: the built-ins, installed entry points and those registered."""
    return sorted({*_BUILTIN, *(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)), *_REGISTRY})
