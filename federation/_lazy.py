"""Package exports imported on first use, so importing a package never loads grpc or cryptography early.

Subpackages export lazily for a second reason: their modules import each other
across packages (the gateway's relay lives in ``star``, the relay speaks the
gateway's protocol), and an ``__init__`` that imported its modules eagerly
would turn those imports into cycles.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that imports ``exports[name]`` (a module path) on first use."""

    def __getattr__(name: str) -> Any:
        module_name = exports.get(name)
        if module_name is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module_name), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
