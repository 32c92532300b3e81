"""homo_nn job files: the shipped jobs validate, every client needs a label, simulations need no parties."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from fedspark.common import ConfigError
from fedspark.engine.config._job import load_job

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["homo_nn_breast.yaml", "homo_nn_sim.yaml", "homo_nn_default_credit.yaml"])
def test_shipped_jobs_validate(name: str) -> None:
    job = load_job(REPO / "jobs" / name)
    assert job.algorithm == "homo_nn"
    assert job.all_party_configs()


def _no_host_label(raw: dict[str, Any]) -> None:
    del raw["parties"]["hosts"][0]["data"]["label_column"]


def _no_simulation(raw: dict[str, Any]) -> None:
    del raw["simulation"]


def _bad_factory(raw: dict[str, Any]) -> None:
    raw["params"]["network"]["factory"] = "no_colon"


@pytest.mark.parametrize(
    ("name", "edit", "message"),
    [
        ("homo_nn_breast.yaml", _no_host_label, "party 10000: data.label_column is required for homo_nn"),
        ("homo_nn_sim.yaml", _no_simulation, "'parties' is required"),
        ("homo_nn_breast.yaml", _bad_factory, "params.network"),
    ],
)
def test_bad_jobs_are_refused_with_the_field_named(
    tmp_path: Path, name: str, edit: Callable[[dict[str, Any]], None], message: str
) -> None:
    raw = yaml.safe_load((REPO / "jobs" / name).read_text())
    edit(raw)
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=message):
        load_job(path)
