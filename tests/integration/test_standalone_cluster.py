"""`fedspark run --spark-master spark://...` on a real standalone master and worker on 127.0.0.1.

Guest and host are spark-submit applications (driver: ``party_main.py``) that
share one 2-core worker, each capped at ``spark.cores.max=1``; the master's JSON
UI must show both applications finished, and nothing may be left running.

On the same cluster (started once for the module), a received distributed table
is read by the worker's executors, which run in the worker's own folder, from
the receiving gateway's stream: the gateway's spill files are moved away before
any executor reads, so no executor could have opened them (issue 19, item 2).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
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


@pytest.fixture(scope="module")
def standalone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A master and one worker (2 cores, 2 GiB) on free loopback ports, shared by this module's tests; stopped afterwards."""
    tmp_path = tmp_path_factory.mktemp("standalone")
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
    assert metrics["auc"] >= 0.98 and metrics["compute"] == "executors"  # compute.backend: spark

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


# The receiving party's driver: both parties' gateways run in it (on loopback), the
# guest's spilling every payload under a folder relative to the driver's own working
# directory; a hook moves each spilled partition elsewhere as the gateway takes it
# over, so only the gateway knows where the bytes are.
_RECEIVER = textwrap.dedent("""
    import json, os, sys
    from pathlib import Path

    from pyspark.sql import SparkSession

    spark = (SparkSession.builder.master(sys.argv[1]).appName("fedspark-table-source")
             .config("spark.cores.max", "2").config("spark.executor.memory", "512m")
             .config("spark.sql.shuffle.partitions", "2").getOrCreate())  # the JVM forks before gRPC starts

    from fedspark.common import PartyRef, Role
    from fedspark.federation import Context, Federation, GatewayOptions, GrpcTransport
    from fedspark.federation.transport import ReceivedPayload, ServedTables

    hidden, vanished = Path(sys.argv[2]), []
    original = ServedTables.serve

    def serve(self, job_id, tag, src, payloads):
        vanished.extend(str(p.path.resolve()) for p in payloads)
        moved = [ReceivedPayload(p.size, path=p.path.rename(hidden / f"part-{i}"), kind=p.kind)
                 for i, p in enumerate(payloads)]
        return original(self, job_id, tag, src, moved)

    ServedTables.serve = serve
    guest, host = PartyRef(Role.GUEST, "9999"), PartyRef(Role.HOST, "10000")
    job, parties = "standalone-table", [guest, host]
    receiver = GrpcTransport(guest, listen=GatewayOptions(work_dir="mailbox", memory_limit_bytes=0))
    sender = GrpcTransport(host)
    try:
        routes = {"9999": f"127.0.0.1:{receiver.port}", "10000": f"127.0.0.1:{sender.port}"}
        for transport in (receiver, sender):
            transport.set_routes(routes)
            transport.open_job(job, parties)
        df = spark.range(0, 3000, numPartitions=3).selectExpr("id", "id / 2 as x")
        Context(Federation(job, host, parties, sender)).guest.put_table("t", df)
        got = Context(Federation(job, guest, parties, receiver)).hosts[0].get_table("t", spark)

        def where(batches):
            import os
            import pyarrow as pa
            for batch in batches:
                n = batch.num_rows
                yield batch.append_column("pid", pa.array([os.getpid()] * n)).append_column(
                    "cwd", pa.array([os.getcwd()] * n))

        rows = got.mapInArrow(where, "id long, x double, pid long, cwd string").toArrow()
        print(json.dumps({
            "ids": rows.column("id").to_pylist(), "x_sum": sum(rows.column("x").to_pylist()),
            "executor_pids": sorted(set(rows.column("pid").to_pylist())),
            "executor_cwds": sorted(set(rows.column("cwd").to_pylist())),
            "driver": [os.getpid(), os.getcwd()], "vanished": vanished,
            "still_there": [p for p in vanished if os.path.exists(p)],
        }))
    finally:
        sender.close()
        receiver.close()
        spark.stop()
""")


def test_a_received_table_is_read_by_the_workers_executors_through_the_gateway(
    standalone: dict[str, Any], tmp_path: Path
) -> None:
    driver_dir, hidden = tmp_path / "driver", tmp_path / "hidden"
    driver_dir.mkdir()
    hidden.mkdir()
    script = tmp_path / "receiver.py"
    script.write_text(_RECEIVER)
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable,
           "PYSPARK_DRIVER_PYTHON": sys.executable}
    proc = subprocess.run([sys.executable, str(script), standalone["url"], str(hidden)], cwd=driver_dir, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])

    assert result["ids"] == list(range(3000)) and result["x_sum"] == sum(range(3000)) * 0.5
    # The three partitions spilled under the driver's folder and were moved away before any task ran.
    assert len(result["vanished"]) == 3 and result["still_there"] == []
    assert all(path.startswith(str(driver_dir)) for path in result["vanished"])
    # The readers were the worker's executors: other processes, in the worker's folder, not the driver's.
    driver_pid, driver_cwd = result["driver"]
    assert driver_pid not in result["executor_pids"] and result["executor_cwds"]
    assert all(cwd.startswith(str(standalone["tmp"] / "work")) for cwd in result["executor_cwds"])
    assert driver_cwd == str(driver_dir)
