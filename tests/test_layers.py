"""Arrows only point down: bench -> engine -> algorithms -> {federation, arrow_bridge, crypto, storage} -> common.

Checked on the source text, so a violation fails even when the module is never imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

FORBIDDEN = {
    # bench measures every layer, so it may import any of them; only the CLI (which starts it) is off limits.
    "bench": ["fedspark.engine.cli", "typer", "click"],
    "algorithms": ["grpc", "fedspark.engine", "typer", "click", "pickle", "cloudpickle"],
    "crypto": ["grpc", "fedspark.engine", "fedspark.algorithms", "fedspark.federation", "fedspark.arrow_bridge",
               "pickle"],
    "arrow_bridge": ["grpc", "fedspark.engine", "fedspark.algorithms", "fedspark.federation", "pickle"],
    "storage": ["grpc", "fedspark.engine", "fedspark.algorithms", "fedspark.federation", "pickle"],
    "federation": ["fedspark.engine", "fedspark.algorithms", "typer", "click", "pickle", "cloudpickle"],
    "common": ["grpc", "fedspark.engine", "fedspark.algorithms", "fedspark.federation", "pyspark"],
}


# The one module allowed to import pickle: the Arrow benchmark's baseline codec, which
# loads only bytes it made a moment before in the same process.
PICKLE_BASELINE = {Path("bench/_arrow.py")}

# Nothing imports bench but the CLI's bench commands, and those only inside the command function.
BENCH_CALLERS = ("engine/cli.py", "engine/_cli_*.py")


def _imports(path: Path, *, module_level_only: bool = False) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    in_functions = {
        id(inner)
        for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        for inner in ast.walk(node)
    }
    names: list[str] = []
    for node in ast.walk(tree):
        if module_level_only and id(node) in in_functions:
            continue
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def _is_bench(name: str) -> bool:
    return name == "fedspark.bench" or name.startswith("fedspark.bench.")


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_only_downwards(layer: str) -> None:
    offenders = []
    for path in sorted((REPO / layer).rglob("*.py")):
        if path.name.endswith(("_pb2.py", "_pb2_grpc.py")):
            continue
        for name in _imports(path):
            if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN[layer]):
                offenders.append(f"{path.relative_to(REPO)} imports {name}")
    assert not offenders, "\n".join(offenders)


def test_nothing_imports_bench_but_the_cli_inside_its_commands() -> None:
    offenders = []
    for layer in sorted({*FORBIDDEN, "engine"} - {"bench"}):
        for path in sorted((REPO / layer).rglob("*.py")):
            rel = path.relative_to(REPO)
            cli = any(rel.match(pattern) for pattern in BENCH_CALLERS)
            names = _imports(path, module_level_only=cli)
            offenders += [f"{rel} imports {name}" for name in names if _is_bench(name)]
    assert not offenders, "\n".join(offenders)


def test_nothing_under_engine_is_a_benchmark() -> None:
    assert not sorted(str(p.relative_to(REPO)) for p in (REPO / "engine").rglob("*bench*.py"))


def test_no_pickle_loads_anywhere_in_product_code() -> None:
    hits = [
        str(p.relative_to(REPO))
        for layer in FORBIDDEN
        for p in (REPO / layer).rglob("*.py")
        if p.relative_to(REPO) not in PICKLE_BASELINE
        and ("pickle.loads" in p.read_text() or "pickle.load(" in p.read_text())
    ]
    hits += [str(p.relative_to(REPO)) for p in (REPO / "engine").rglob("*.py") if "pickle" in p.read_text()]
    assert not hits


def test_the_pickle_baseline_stays_local() -> None:
    """The Arrow-vs-pickle benchmark may pickle its own bytes in one process; it must not reach the wire."""
    for rel in PICKLE_BASELINE:
        imports = _imports(REPO / rel)
        assert not [name for name in imports if name.startswith(("fedspark.federation", "grpc"))], rel


def test_no_module_outside_the_federation_imports_its_private_modules() -> None:
    """'Private' means private: other packages and the tests use what an ``__init__`` exports."""
    offenders = []
    for layer in [*sorted(FORBIDDEN), "engine", "tests"]:
        if layer == "federation":
            continue
        for path in sorted((REPO / layer).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                modules = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    modules = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
                for module in modules:
                    parts = module.split(".")
                    if (parts[:2] == ["fedspark", "federation"] and module != "fedspark.federation._generate"
                            and any(p.startswith("_") for p in parts[2:])):
                        offenders.append(f"{path.relative_to(REPO)} imports {module}")
    assert not offenders, "\n".join(offenders)
