"""A third-party algorithm registered with one line runs through ``fedspark run`` as real party processes.

The toy lives in a module outside fedspark; the job names it in ``modules:``, so the CLI and every
party process import it (and so register it) before they look the algorithm up.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import run_cli

pytestmark = pytest.mark.integration

TOY = '''
from pydantic import BaseModel

from fedspark.algorithms import Algorithm, Task, register
from fedspark.common import Role


class ToyParams(BaseModel):
    base: int = 1


def guest(task: Task) -> dict:
    task.ctx.hosts.put("base", task.params.base)
    return {"role": "guest", "total": sum(task.ctx.hosts.get("answer")), "table": task.data.uri}


def host(task: Task) -> dict:
    answer = task.ctx.guest.get("base") + int(task.me.party_id)
    task.ctx.guest.put("answer", answer)
    return {"role": "host", "answer": answer}


register(Algorithm(name="toy_sum", params=ToyParams, entry_points={Role.GUEST: guest, Role.HOST: host}))
'''


def test_a_toy_algorithm_registered_in_one_line_runs_through_fedspark_run(
    tmp_path: Path, fresh_job_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "toy_fedspark_algorithm.py").write_text(TOY)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    table = tmp_path / "t.csv"
    table.write_text("id,x\n1,0.5\n")
    job = {
        "name": "toy", "algorithm": "toy_sum", "modules": ["toy_fedspark_algorithm"], "params": {"base": 5},
        "parties": {"guest": {"party_id": "9999", "data": {"uri": str(table)}},
                    "hosts": [{"party_id": "10000", "data": {"uri": str(table)}},
                              {"party_id": "10001", "data": {"uri": str(table)}}]},
    }
    result = run_cli(tmp_path, job, fresh_job_id)
    assert result.returncode == 0, result.stderr + result.stdout
    run_dir = tmp_path / "runs" / fresh_job_id
    guest = json.loads((run_dir / "guest-9999" / "metrics.json").read_text())
    # The runner adds how the party's traffic travelled (mTLS by default) to whatever the algorithm returns.
    assert guest == {"role": "guest", "total": 5 + 10000 + 5 + 10001, "table": str(table), "transport": "mtls"}
    assert json.loads((run_dir / "host-10001" / "metrics.json").read_text())["answer"] == 10006
