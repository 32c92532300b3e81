"""The wheel installs one namespace, fedspark.*, and nothing generic at the top of site-packages."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LAYERS = ["common", "engine", "federation", "algorithms", "arrow_bridge", "storage", "crypto", "bench"]
"""Every top-level folder with an ``__init__.py`` (``test_every_layer_is_listed``)."""


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(REPO)],
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("fedspark-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        return zf.namelist()


def test_everything_installs_under_the_fedspark_namespace(wheel_names: list[str]) -> None:
    tops = {name.split("/")[0] for name in wheel_names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"fedspark"}


@pytest.mark.parametrize("layer", LAYERS)
def test_each_layer_is_a_fedspark_subpackage(wheel_names: list[str], layer: str) -> None:
    assert f"fedspark/{layer}/__init__.py" in wheel_names
    assert f"fedspark/{layer}/py.typed" in wheel_names


def test_wheel_carries_proto_generated_code_and_console_script(wheel_names: list[str]) -> None:
    assert "fedspark/federation/federation.proto" in wheel_names
    assert "fedspark/federation/federation_pb2.py" in wheel_names
    assert "fedspark/algorithms/hetero_lr/_guest.py" in wheel_names
    assert "fedspark/engine/party_main.py" in wheel_names  # spark-submit's driver script
    entry_points = next(n for n in wheel_names if n.endswith("entry_points.txt"))
    assert entry_points


def test_no_test_data_or_conf_in_the_wheel(wheel_names: list[str]) -> None:
    assert not [n for n in wheel_names if n.endswith(".csv") or n.startswith(("tests/", "conf/", "jobs/"))]


def test_every_package_and_subpackage_ships(wheel_names: list[str]) -> None:
    """A folder of modules left out of pyproject's package list would install as nothing, silently."""
    on_disk = {
        "fedspark/" + folder.relative_to(REPO).as_posix()
        for layer in LAYERS
        for folder in {p.parent for p in (REPO / layer).rglob("*.py") if "__pycache__" not in p.parts}
    }
    in_wheel = {name.rpartition("/")[0] for name in wheel_names if name.endswith("/__init__.py")}
    assert on_disk == in_wheel
    assert {"fedspark/federation/transport", "fedspark/algorithms/hetero_lr"} <= in_wheel


def test_every_layer_is_listed() -> None:
    assert sorted(LAYERS) == sorted(p.name for p in REPO.iterdir() if (p / "__init__.py").is_file())
