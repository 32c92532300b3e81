"""Arrows only point down: bench -> engine -> algorithms -> federation -> {arrow_bridge, storage} -> crypto -> common.

Checked on the source text, so a violation fails even when the module is never imported.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

LAYERS: tuple[tuple[str, ...], ...] = (
    ("bench",),
    ("engine",),
    ("algorithms",),
    ("federation",),
    ("arrow_bridge", "storage"),
    ("crypto",),
    ("common",),
)
"""The layer order of docs/architecture.md, top first: a package imports its own row and the rows below, never above.

The doc's middle layer (federation, arrow_bridge, crypto, storage) is ordered here too: nothing under the
federation imports it, and crypto imports none of them.
"""

NOT_IMPORTED = {
    # bench measures every layer, so it may import any of them; only the CLI (which starts it) is off limits.
    "bench": ["fedspark.engine.cli", "typer", "click"],
    "engine": [],
    "algorithms": ["grpc", "typer", "click", "pickle", "cloudpickle"],
    "federation": ["typer", "click", "pickle", "cloudpickle"],
    "arrow_bridge": ["grpc", "pickle"],
    "storage": ["grpc", "pickle"],
    "crypto": ["grpc", "pickle"],
    "common": ["grpc", "pyspark"],
}
"""What a package must not import besides the packages above it."""

FORBIDDEN = {
    package: [*(f"fedspark.{above}" for upper in LAYERS[:row] for above in upper), *NOT_IMPORTED[package]]
    for row, packages in enumerate(LAYERS)
    for package in packages
}

ALGORITHMS = sorted(p.parent.name for p in (REPO / "algorithms").glob("*/__init__.py"))
"""Each algorithm subpackage counts as a package of its own for the private-import rule."""

TEST_HOMES = {
    # tests/security holds one attack suite per algorithm; each is that algorithm's test.
    "tests/security/test_hetero_lr.py": "algorithms.hetero_lr",
    "tests/security/test_same_ids.py": "algorithms.hetero_lr",
    "tests/security/test_psi.py": "algorithms.psi",
    "tests/security/test_payloads.py": "federation",
    "tests/security/test_secure_aggregation.py": "algorithms.homo_nn",
}


# The one module allowed to import pickle: the Arrow benchmark's baseline codec, which
# loads only bytes it made a moment before in the same process.
PICKLE_BASELINE = {Path("bench/_arrow.py")}

# Nothing imports bench but the CLI's bench commands, and those only inside the command function.
BENCH_CALLERS = ("engine/cli/*.py",)


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


def _product_files(layer: str) -> list[Path]:
    return [p for p in sorted((REPO / layer).rglob("*.py")) if not p.name.endswith(("_pb2.py", "_pb2_grpc.py"))]


def _is_bench(name: str) -> bool:
    return name == "fedspark.bench" or name.startswith("fedspark.bench.")


def test_forbidden_follows_the_layer_table() -> None:
    assert sorted(FORBIDDEN) == sorted(p.name for p in REPO.iterdir() if (p / "__init__.py").is_file())
    assert FORBIDDEN["crypto"][:6] == [f"fedspark.{p}" for p in ("bench", "engine", "algorithms", "federation",
                                                                "arrow_bridge", "storage")]
    assert not [p for p in FORBIDDEN["bench"] if p.startswith("fedspark.") and p != "fedspark.engine.cli"]


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_only_downwards(layer: str) -> None:
    offenders = []
    for path in _product_files(layer):
        rel = path.relative_to(REPO)
        names = _imports(path)
        if any(rel.match(pattern) for pattern in BENCH_CALLERS):
            # the CLI's bench commands import bench inside their functions (next test)
            names = [n for n in names if not _is_bench(n)]
        for name in names:
            if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN[layer]):
                offenders.append(f"{rel} imports {name}")
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


def _package_of_module(parts: list[str]) -> str:
    """``fedspark.algorithms.psi._group`` -> ``algorithms.psi``; ``fedspark.engine.runtime._spark`` -> ``engine``."""
    if len(parts) > 2 and parts[1] == "algorithms" and parts[2] in ALGORITHMS:
        return f"algorithms.{parts[2]}"
    return parts[1]


def _package_of_file(rel: Path) -> str | None:
    """The package a file belongs to; a test belongs to the package its folder mirrors (None: integration)."""
    parts = rel.parts
    if parts[0] != "tests":
        return _package_of_module(["fedspark", *rel.with_suffix("").parts])
    if rel.as_posix() in TEST_HOMES:
        return TEST_HOMES[rel.as_posix()]
    if len(parts) < 3 or parts[1] not in FORBIDDEN:
        return None
    if parts[1] == "algorithms":
        return next((f"algorithms.{a}" for a in ALGORITHMS if parts[2].startswith(f"test_{a}")), "algorithms")
    return parts[1]


def _private_imports(rel: Path, source: str) -> Iterator[str]:
    """Every ``fedspark`` module or name the file ``rel`` imports from another package's ``_private`` module."""
    own = _package_of_file(rel)
    for node in ast.walk(ast.parse(source, filename=str(rel))):
        modules = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        for module in modules:
            parts = module.split(".")
            if parts[0] != "fedspark" or len(parts) < 2:
                continue
            package = _package_of_module(parts)
            inside = parts[len(package.split(".")) + 1:]
            if package != own and any(p.startswith("_") for p in inside):
                yield f"{rel} imports {module}"


@pytest.mark.parametrize("layer", [*sorted(FORBIDDEN), "tests"])
def test_no_package_imports_another_packages_private_modules(layer: str) -> None:
    """'Private' means private: other packages use what an ``__init__`` exports.

    Each algorithm subpackage is a package of its own (``hetero_lr`` may not import ``psi._group``).
    A test may import its own package's private modules (``tests/<x>/`` tests ``x``, the files under
    ``tests/algorithms/`` are named after their algorithm, ``TEST_HOMES`` places the attack suites);
    the integration tests and ``tests/conftest.py`` import only exported names.
    """
    offenders = [
        hit for path in sorted((REPO / layer).rglob("*.py")) for hit in _private_imports(path.relative_to(REPO), path.read_text())
    ]
    assert not offenders, "\n".join(offenders)


@pytest.mark.parametrize(("rel", "source", "offends"), [
    ("algorithms/hetero_lr/_x.py", "from fedspark.algorithms.psi._group import check_scalar", True),
    ("algorithms/hetero_lr/_x.py", "from fedspark.algorithms.psi import _group", True),
    ("algorithms/hetero_lr/_x.py", "from fedspark.algorithms.hetero_lr._batches import epoch_batches", False),
    ("algorithms/hetero_lr/_x.py", "from fedspark.algorithms import register", False),
    ("bench/_x.py", "from fedspark.engine.runtime._spark import build_session", True),
    ("bench/_x.py", "from fedspark.engine import build_session", False),
    ("tests/engine/test_x.py", "from fedspark.engine.runtime._spark import build_session", False),
    ("tests/engine/test_x.py", "import fedspark.federation.transport._grpc", True),
    ("tests/algorithms/test_psi_x.py", "from fedspark.algorithms.psi._group import check_scalar", False),
    ("tests/algorithms/test_psi_x.py", "from fedspark.algorithms.homo_nn._split import x", True),
    ("tests/integration/test_x.py", "from fedspark.engine.config._job import load_job", True),
])
def test_the_private_rule(rel: str, source: str, offends: bool) -> None:
    assert bool(list(_private_imports(Path(rel), source))) is offends


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(["fedspark", *(parts[:-1] if parts[-1] == "__init__" else parts)])


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _module_imports(module: str, source: str, is_package: bool, known: set[str]) -> set[str]:
    """The product modules ``module`` imports at module or function level, outside ``if TYPE_CHECKING:``.

    ``from fedspark.x import y`` is ``fedspark.x.y`` when that is a module, else ``fedspark.x``; a module's
    import of its own package (its ``__init__``) does not count.
    """
    tree = ast.parse(source)
    typing_only = {
        id(inner) for node in ast.walk(tree) if isinstance(node, ast.If) and _is_type_checking(node)
        for stmt in node.body for inner in ast.walk(stmt)
    }
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            found.update(f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names)
    return {name for name in found if name in known and name != module and (is_package or name != package)}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            for nxt in successors:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        components.append(sorted(component))
    return components


def test_no_import_cycle_between_modules() -> None:
    paths = {_module_name(p): p for layer in FORBIDDEN for p in (REPO / layer).rglob("*.py")}
    known = set(paths)
    graph = {m: _module_imports(m, p.read_text(), p.name == "__init__.py", known) for m, p in paths.items()}
    cycles = [
        " -> ".join(f"{m} (imports {', '.join(sorted(graph[m] & set(c)))})" for m in c) for c in _cycles(graph)
    ]
    assert not cycles, "\n".join(cycles)


@pytest.mark.parametrize(("graph", "expected"), [
    ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
    ({"a": {"b"}, "b": {"a"}, "c": {"a"}}, [["a", "b"]]),
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"e"}, "e": {"d"}}, [["a", "b", "c"], ["d", "e"]]),
])
def test_the_cycle_finder(graph: dict[str, set[str]], expected: list[list[str]]) -> None:
    assert sorted(_cycles(graph)) == expected


def test_the_import_graph_reads_what_python_would_run() -> None:
    known = {"fedspark.x", "fedspark.x._a", "fedspark.x._b", "fedspark.x._c", "fedspark.y"}
    source = (
        "from typing import TYPE_CHECKING\n"
        "import fedspark.y\n"
        "from fedspark.x import _b, something\n"
        "if TYPE_CHECKING:\n    from fedspark.x._c import C\n"
        "def f():\n    from ._c import c\n"
    )
    assert _module_imports("fedspark.x._a", source, False, known) == {"fedspark.y", "fedspark.x._b", "fedspark.x._c"}
    assert _module_imports("fedspark.x._a", "from fedspark.x import _c", False, known - {"fedspark.x._c"}) == set()


def test_engine_holds_only_its_rooms() -> None:
    """engine/: the CLI, configuration and runtime rooms, and spark-submit's driver script; nothing else on top."""
    top = sorted(p.name for p in (REPO / "engine").iterdir() if p.name != "__pycache__")
    assert top == ["__init__.py", "cli", "config", "party_main.py", "py.typed", "runtime"]


def test_the_cli_registers_every_command_at_the_top_of_one_module() -> None:
    """Every import of ``engine/cli/__init__.py`` comes before the app is built, and no other module builds one."""
    tree = ast.parse((REPO / "engine" / "cli" / "__init__.py").read_text())
    built = False
    late = []
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            if built:
                late.append(f"line {node.lineno}")
        elif not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)):
            built = True
    assert not late, f"imports after the app is built: {late}"
    builders = [str(p.relative_to(REPO)) for p in REPO.rglob("*.py")
                if p.parts[len(REPO.parts)] in FORBIDDEN and "typer.Typer(" in p.read_text()]
    assert builders == ["engine/cli/__init__.py"], builders


def test_engine_holds_no_protocol() -> None:
    """Who sends what lives in algorithms/: no engine module addresses a peer (``ctx.guest.put``, ``hosts.get`` ...)."""
    peers, verbs = {"guest", "hosts", "arbiter"}, {"put", "get", "put_table", "get_table", "get_table_rows", "get_stream"}
    offenders = []
    for path in sorted((REPO / "engine").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if (isinstance(node, ast.Attribute) and node.attr in verbs
                    and isinstance(node.value, ast.Attribute | ast.Subscript)):
                target = node.value.value if isinstance(node.value, ast.Subscript) else node.value  # hosts[i].put
                if isinstance(target, ast.Attribute) and target.attr in peers:
                    offenders.append(f"{path.relative_to(REPO)}:{node.lineno} .{node.attr}")
    assert not offenders, "\n".join(offenders)
