"""Fixtures for integration tests."""

from __future__ import annotations

import os

import pytest


@pytest.fixture
def fresh_job_id(request: pytest.FixtureRequest) -> str:
    return f"t-{request.node.name[:30]}-{os.getpid()}"
