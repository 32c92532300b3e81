"""Parties pinned to their own cores: every thread of the process, the runner's command line, and its refusals."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fedspark.common import ConfigError
from fedspark.engine.config._job import load_job
from fedspark.engine.runtime._party import _parse_args
from fedspark.engine.runtime._runner import EmbeddedRunner

CORE = min(os.sched_getaffinity(0))


def _runner(tmp_path: Path, cpus: dict[str, list[int]], spark_master: str | None = None) -> EmbeddedRunner:
    job = {"name": "pin", "algorithm": "hetero_lr_predict",
           "parties": {"guest": {"party_id": "9999", "data": {"uri": "g.csv", "label_column": "y"}},
                       "hosts": [{"party_id": "10000", "data": {"uri": "h.csv"}}]}}
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(job))
    return EmbeddedRunner(load_job(tmp_path / "job.yaml"), tmp_path / "job.yaml", "j1", tmp_path / "runs",
                          cpus=cpus, spark_master=spark_master)


def test_pinning_covers_threads_started_before_it_and_sizes_the_local_master() -> None:
    code = (
        "import os, threading\n"
        "from fedspark.engine import pin_to_cpus\n"
        "stop = threading.Event(); t = threading.Thread(target=stop.wait); t.start()\n"
        f"conf = pin_to_cpus([{CORE}])\n"
        "print(conf['spark.master'], sorted({tuple(sorted(os.sched_getaffinity(int(tid))))"
        " for tid in os.listdir('/proc/self/task')}))\n"
        "stop.set()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.split(" ", 1)
    assert out[0] == "local[1]" and out[1].strip() == f"[({CORE},)]"


def test_the_runner_passes_each_party_its_cores(tmp_path: Path) -> None:
    runner = _runner(tmp_path, {"host:10000": [CORE]})
    guest, host = runner.job.party_refs()[:2]
    host_cmd, _ = runner._command(host, None)
    guest_cmd, _ = runner._command(guest, None)
    assert host_cmd[host_cmd.index("--cpus") + 1] == str(CORE) and "--cpus" not in guest_cmd
    assert _parse_args([*host_cmd[3:]]).cpus == [CORE]


@pytest.mark.parametrize(("cpus", "master", "message"), [
    ({"host:10001": [0]}, None, "host:10001, not parties of the job"),
    ({"host:10000": [0]}, "spark://m:7077", "only in local mode"),
])
def test_cores_for_no_party_or_on_a_cluster_are_refused(
    tmp_path: Path, cpus: dict[str, list[int]], master: str | None, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        _runner(tmp_path, cpus, master).run()


@pytest.mark.parametrize("text", ["", "a", "0,x", "-1"])
def test_a_bad_cpu_list_is_a_usage_error(text: str) -> None:
    with pytest.raises(SystemExit):
        _parse_args(["--job", "j.yaml", "--party", "guest:9999", "--job-id", "j", "--runs-dir", "r", "--cpus", text])
