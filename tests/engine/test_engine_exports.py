"""The engine exports what bench and the tests use, lazily: importing it loads no runner and no pyspark."""

from __future__ import annotations

import subprocess
import sys

import fedspark.engine as engine


def test_exports_are_pinned_and_resolve() -> None:
    assert set(engine.__all__) == {*engine._HOME, *engine._MODULES}
    for name in engine.__all__:
        assert getattr(engine, name) is not None


def test_importing_the_engine_loads_nothing_heavy() -> None:
    code = "import sys, fedspark.engine; print(sorted(m for m in sys.modules if m.startswith(('pyspark', 'fedspark.engine.'))))"
    assert subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.strip() == "[]"
