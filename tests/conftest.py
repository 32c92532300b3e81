"""Shared fixtures: one SparkSession per test session, the public data folder,
and an environment cleaner so a developer's settings never leak into a test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def _find_test_data() -> Path | None:
    configured = os.environ.get("FEDSPARK_TEST_DATA")
    candidates = [Path(configured)] if configured else []
    candidates.append(REPO_ROOT.parent / "shared" / "data")
    for candidate in candidates:
        if (candidate / "breast_hetero_guest.csv").is_file():
            return candidate
    return None


@pytest.fixture(scope="session")
def test_data() -> Path:
    """The public example tables; skip (or fail under CI=true) when absent."""
    found = _find_test_data()
    if found is None:
        reason = "public test tables not found: set FEDSPARK_TEST_DATA or provide ../shared/data"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return found


@pytest.fixture(scope="session")
def spark() -> Iterator[object]:
    """One local[2] SparkSession for the whole test session (Arrow on)."""
    from fedspark.engine._spark import build_session

    # local[2,2]: two cores, and a failed task is retried once (as on a cluster), so tests
    # can show that a retried task does not duplicate what it sent.
    session = build_session("fedspark-tests", {"spark.driver.memory": "2g", "spark.master": "local[2,2]"})
    yield session
    session.stop()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove fedspark settings inherited from the developer's shell."""
    for key in list(os.environ):
        if key.startswith("FEDSPARK_") and key != "FEDSPARK_TEST_DATA":
            monkeypatch.delenv(key, raising=False)
