"""Which parties a job needs, and which need a label, depend on the algorithm."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from fedspark.engine.config._job import JobConfig


def _job(algorithm: str, *, label: bool, arbiter: bool) -> dict[str, Any]:
    guest_data = {"uri": "g.csv", **({"label_column": "y"} if label else {})}
    parties: dict[str, Any] = {"guest": {"party_id": "1", "data": guest_data},
                               "hosts": [{"party_id": "2", "data": {"uri": "h.csv"}}]}
    if arbiter:
        parties["arbiter"] = {"party_id": "3"}
    return {"name": "j", "algorithm": algorithm, "parties": parties}


@pytest.mark.parametrize("algorithm", ["hetero_lr_predict", "psi"])
def test_scoring_and_psi_jobs_need_neither_labels_nor_an_arbiter(algorithm: str) -> None:
    job = JobConfig.model_validate(_job(algorithm, label=False, arbiter=False))
    assert [str(r) for r in job.party_refs()] == ["guest:1", "host:2"]


@pytest.mark.parametrize(
    ("label", "arbiter", "message"),
    [(False, True, "label_column is required for hetero_lr"), (True, False, "arbiter is required for hetero_lr")],
)
def test_training_needs_the_guest_label_and_an_arbiter(label: bool, arbiter: bool, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        JobConfig.model_validate(_job("hetero_lr", label=label, arbiter=arbiter))
