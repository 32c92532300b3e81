"""Generated example tables equal FATE's public files (ids, order, columns, values)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from fedspark.engine.runtime._examples import GUEST_FILE, HOST_FILE, write_breast_examples


def read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="") as handle:
        header, *rows = list(csv.reader(handle))
    return header, rows


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_breast_examples(tmp_path_factory.mktemp("examples"))


def test_writes_both_files(generated: dict[str, Path]) -> None:
    assert sorted(generated) == ["guest", "host"]
    assert generated["guest"].name == GUEST_FILE
    assert generated["host"].name == HOST_FILE


@pytest.mark.parametrize(("role", "name", "n_values"), [("guest", GUEST_FILE, 11), ("host", HOST_FILE, 20)])
def test_matches_public_file(
    generated: dict[str, Path], test_data: Path, role: str, name: str, n_values: int
) -> None:
    header, rows = read_csv(generated[role])
    public_header, public_rows = read_csv(test_data / name)

    assert header == public_header
    assert [row[0] for row in rows] == [row[0] for row in public_rows]
    assert len(rows) == 569
    if role == "guest":
        assert [row[1] for row in rows] == [row[1] for row in public_rows]  # labels, not inverted
    values = np.array([row[1:] for row in rows], dtype=np.float64)
    public_values = np.array([row[1:] for row in public_rows], dtype=np.float64)
    assert values.shape == (569, n_values)
    np.testing.assert_allclose(values, public_values, rtol=0, atol=1e-6)


def test_values_are_printed_with_six_decimals(generated: dict[str, Path]) -> None:
    _, rows = read_csv(generated["host"])
    assert all(len(cell.split(".")[1]) == 6 for cell in rows[0][1:])


@pytest.mark.parametrize("role", ["guest", "host"])
def test_bytes_equal_public_file(generated: dict[str, Path], test_data: Path, role: str) -> None:
    """Stronger than the 1e-6 check: the module docstring promises identical files."""
    assert generated[role].read_bytes() == (test_data / generated[role].name).read_bytes()


@pytest.mark.parametrize("role", ["guest", "host", "test"])
def test_homo_split_matches_public_file(tmp_path_factory: pytest.TempPathFactory, test_data: Path, role: str) -> None:
    from fedspark.engine.runtime._examples import HOMO_FILES, write_breast_homo_examples

    written = write_breast_homo_examples(tmp_path_factory.mktemp("homo"))
    header, rows = read_csv(written[role])
    public_header, public_rows = read_csv(test_data / HOMO_FILES[role])
    assert header == public_header and len(rows) == len(public_rows)
    values = np.array(rows, dtype=np.float64)
    np.testing.assert_allclose(values, np.array(public_rows, dtype=np.float64), rtol=0, atol=1e-6)
