"""Every ``fedspark bench ...``: each measures one layer against a baseline run in the same process or command.

Bench sits above the engine (bench -> engine -> algorithms -> ...): a benchmark runs real jobs through
the engine's runner, so it may import anything in fedspark, and nothing imports it but the CLI's bench
commands, inside the command functions. Measurement thus never lives beside what it measures, and the
pickle baseline of ``bench arrow`` stays out of every product layer (``tests/test_layers.py``).

The entry points are exported lazily (PEP 562): importing this package loads no benchmark, so the
receiving peer of ``bench federation`` (``python -m fedspark.bench._federation_peer``), whose peak RSS
is one of the figures, carries only what it uses.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fedspark.bench._arrow import run_arrow_bench as run_arrow_bench
    from fedspark.bench._federation import parse_size as parse_size
    from fedspark.bench._federation import run_federation_bench as run_federation_bench
    from fedspark.bench._hetero_lr import run_hetero_lr_bench as run_hetero_lr_bench
    from fedspark.bench._hetero_lr_scale import run_hetero_lr_scale_bench as run_hetero_lr_scale_bench
    from fedspark.bench._homo_nn import run_homo_nn_bench as run_homo_nn_bench
    from fedspark.bench._paillier import run_paillier_bench as run_paillier_bench
    from fedspark.bench._psi import run_psi_bench as run_psi_bench
    from fedspark.bench._scoring import run_scoring_bench as run_scoring_bench

_HOME = {
    "run_arrow_bench": "_arrow",
    "parse_size": "_federation",
    "run_federation_bench": "_federation",
    "run_hetero_lr_bench": "_hetero_lr",
    "run_hetero_lr_scale_bench": "_hetero_lr_scale",
    "run_homo_nn_bench": "_homo_nn",
    "run_paillier_bench": "_paillier",
    "run_psi_bench": "_psi",
    "run_scoring_bench": "_scoring",
}

__all__ = sorted(_HOME)


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
