"""Federated algorithms. They see a federation Context, never a transport.

Each algorithm registers itself (:func:`register`) with its params, roles and
entry points; the engine runs any registered algorithm through :func:`get_algorithm`.
"""

from fedspark.algorithms._registry import (
    ENTRY_POINT_GROUP,
    Algorithm,
    Entry,
    Task,
    algorithm_names,
    get_algorithm,
    register,
)

__all__ = ["ENTRY_POINT_GROUP", "Algorithm", "Entry", "Task", "algorithm_names", "get_algorithm", "register"]
