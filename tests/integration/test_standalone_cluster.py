"""`fedspark run --spark-master spark://...` on a real standalone master and worker on 127.0.0.1.

Guest and host are spark-submit applications (driver: ``party_main.py``) that
share one 2-core worker, each capped at ``spark.cores.max=1``; the master's JSON
UI must show both applications finished, and nothing may be left running.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import breast_job, leftover_processes, run_cli

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _spark_class() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent / "bin" / "spark-class"


def _master_json(webui: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{webui}/json", timeout=5) as response:
        return dict(json.load(response))


def _stop(proc: subprocess.Popen[bytes]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=15)
            if sig == signal.SIGTERM:
                os.killpg(proc.pid, signal.SIGKILL)  # children the daemon left (executors)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            continue


@pytest.fixture
def standalone(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A master and one worker (2 cores, 2 GiB) on free loopback ports; stopped afterwards."""
    ports = {name: _free_port() for name in ("master", "master_ui", "worker", "worker_ui")}
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_DAEMON_MEMORY": "256m",
           "SPARK_LOG_DIR": str(tmp_path / "logs"), "SPARK_WORKER_DIR": str(tmp_path / "work"),
           "SPARK_NO_DAEMONIZE": "1"}
    url = f"spark://127.0.0.1:{ports['master']}"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with open(tmp_path / "master.log", "wb") as log:
            procs.append(subprocess.Popen(
                [str(_spark_class()), "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                 "--port", str(ports["master"]), "--webui-port", str(ports["master_ui"])],
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        _wait_for(lambda: _master_json(ports["master_ui"])["status"] == "ALIVE", "the master")
        with open(tmp_path / "worker.log", "wb") as log:
            procs.append(subprocess.Popen(
                [str(_spark_class()), "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
                 "--port", str(ports["worker"]), "--webui-port", str(ports["worker_ui"]),
                 "--cores", "2", "--memory", "2g", "--work-dir", str(tmp_path / "work"), url],
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        _wait_for(lambda: len(_master_json(ports["master_ui"])["workers"]) == 1, "the worker to register")
        yield {"url": url, "webui": ports["master_ui"], "procs": procs, "tmp": tmp_path}
    finally:
        for proc in reversed(procs):
            _stop(proc)


def _wait_for(ready: Any, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if ready():
                return
        except OSError:
            pass
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")


def test_breast_job_on_a_standalone_cluster(standalone: dict[str, Any], test_data: Path, tmp_path: Path,
                                            fresh_job_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPARK_LOCAL_IP", "127.0.0.1")  # drivers advertise loopback to the worker's executors
    # Generous timeouts: each party starts a spark-submit JVM and an executor on a shared machine.
    job = breast_job(test_data, params={"max_iter": 5}, compute={"backend": "spark", "partitions": 1},
                     federation={"timeout_s": 300})
    proc = run_cli(tmp_path, job, fresh_job_id, "--spark-master", standalone["url"], "--cores-max", "1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    metrics = json.loads((tmp_path / "runs" / fresh_job_id / "guest-9999" / "metrics.json").read_text())
    assert metrics["auc"] >= 0.98 and metrics["compute"] == "spark"

    state = _master_json(standalone["webui"])
    apps = {app["name"]: app for app in state["completedapps"] if fresh_job_id in app["name"]}
    assert sorted(apps) == [f"fedspark-{fresh_job_id}-guest-9999", f"fedspark-{fresh_job_id}-host-10000"]
    for app in apps.values():
        assert app["state"] == "FINISHED" and app["cores"] <= 1  # capped: both shared the 2-core worker
    first, second = sorted(apps.values(), key=lambda a: a["starttime"])
    assert second["starttime"] < first["starttime"] + first["duration"]  # ran at the same time on one worker
    assert not [a for a in state["activeapps"] if fresh_job_id in a["name"]]
    assert leftover_processes(fresh_job_id) == []
    routes = json.loads((tmp_path / "runs" / fresh_job_id / "routes.json").read_text())
    assert sorted(routes) == ["10000", "10001", "9999"]
