"""`fedspark spark-submit`: the YARN and Kubernetes commands field by field, and the same command
run for real with the master swapped for local[2], client mode and this interpreter as PYSPARK_PYTHON."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from fedspark.common import ConfigError, PartyRef, Role
from fedspark.engine.config._cluster import ClusterConfig
from fedspark.engine.runtime._submit import SubmitCommand, entry_point, spark_submit_command

FEDSPARK = [sys.executable, "-c", "from fedspark.engine.cli import main; main()"]
GUEST = PartyRef(Role.GUEST, "9999")

YARN = {
    "master": "yarn", "deploy_mode": "cluster", "queue": "federated", "num_executors": 4, "executor_cores": 2,
    "executor_memory": "4g", "driver_memory": "2g", "python_archive": "hdfs:///envs/fedspark-env.tar.gz",
    "principal": "fl@BANK.EXAMPLE", "keytab": "/etc/security/fl.keytab",
    "conf": {"spark.yarn.maxAppAttempts": "1"},
}
K8S = {
    "master": "k8s://https://k8s.bank.example:6443", "deploy_mode": "cluster", "num_executors": 3,
    "executor_memory": "2g", "python_archive": "s3a://envs/fedspark-env.tar.gz",
    "kubernetes": {"image": "registry.bank.example/fedspark:0.1", "namespace": "fl", "service_account": "spark",
                   "upload_path": "s3a://spark-uploads/"},
}


def _job(tmp_path: Path, test_data: Path, cluster: dict[str, Any]) -> Path:
    job = {
        "name": "submit-test",
        "parties": {
            "guest": {"party_id": "9999", "cluster": cluster,
                      "data": {"uri": str(test_data / "breast_hetero_guest.csv"), "label_column": "y"}},
            "hosts": [{"party_id": "10000", "data": {"uri": str(test_data / "breast_hetero_host.csv")}}],
            "arbiter": {"party_id": "10001"},
        },
        "spark": {"spark.driver.memory": "512m", "spark.sql.shuffle.partitions": "2"},
    }
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(job))
    return path


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*FEDSPARK, "spark-submit", *args], capture_output=True, text=True, cwd=cwd, timeout=600)


def _parse(line: str) -> SubmitCommand:
    words = shlex.split(line)
    env = dict(w.split("=", 1) for w in words if "=" in w and not w.startswith("-") and w.isascii()
               and w.split("=", 1)[0].isupper())
    return SubmitCommand(words[len(env):], env)


def test_yarn_cluster_command_field_by_field(tmp_path: Path, test_data: Path) -> None:
    job_file = _job(tmp_path, test_data, YARN)
    (tmp_path / "routes.json").write_text(json.dumps({"9999": "gw.bank:50051", "10000": "gw.ins:50051"}))
    proc = _cli(str(job_file), "--party", "guest:9999", "--job-id", "j7", "--port", "50051",
                "--routes", "routes.json", "--runs-dir", "/shared/fl/runs", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    cmd = _parse(proc.stdout.strip())
    assert Path(cmd.argv[0]).name == "spark-submit"
    assert cmd.option("--master") == "yarn" and cmd.option("--deploy-mode") == "cluster"
    assert cmd.option("--queue") == "federated" and cmd.option("--num-executors") == "4"
    assert cmd.option("--executor-cores") == "2" and cmd.option("--executor-memory") == "4g"
    assert cmd.option("--driver-memory") == "2g"
    assert cmd.option("--principal") == "fl@BANK.EXAMPLE" and cmd.option("--keytab") == "/etc/security/fl.keytab"
    assert cmd.option("--archives") == "hdfs:///envs/fedspark-env.tar.gz#environment"
    assert cmd.option("--name") == "fedspark-j7-guest-9999"
    assert cmd.env["PYSPARK_PYTHON"] == "./environment/bin/python" and "PYSPARK_DRIVER_PYTHON" not in cmd.env
    conf = cmd.conf()
    assert conf["spark.yarn.appMasterEnv.PYSPARK_PYTHON"] == "./environment/bin/python"
    assert conf["spark.pyspark.python"] == conf["spark.executorEnv.PYSPARK_PYTHON"] == "./environment/bin/python"
    assert conf["spark.sql.shuffle.partitions"] == "2" and conf["spark.yarn.maxAppAttempts"] == "1"
    assert "spark.driver.memory" not in conf and "spark.pyspark.driver.python" not in conf
    # The driver runs in the cluster: job and routes files are shipped and named by their base names.
    assert cmd.option("--files") == f"{job_file.resolve()},{(tmp_path / 'routes.json').resolve()}"
    app = cmd.argv[cmd.argv.index(str(entry_point())) + 1:]
    assert str(entry_point()).endswith("fedspark/engine/party_main.py") or entry_point().name == "party_main.py"
    assert app == ["--job", "job.yaml", "--role", "guest", "--party", "9999", "--job-id", "j7",
                   "--runs-dir", "/shared/fl/runs", "--port", "50051", "--routes", "routes.json"]


def test_kubernetes_cluster_command(tmp_path: Path, test_data: Path) -> None:
    proc = _cli(str(_job(tmp_path, test_data, K8S)), "--party", "guest:9999", "--job-id", "j8", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    cmd = _parse(proc.stdout.strip())
    assert cmd.option("--master") == "k8s://https://k8s.bank.example:6443" and cmd.option("--deploy-mode") == "cluster"
    conf = cmd.conf()
    assert conf["spark.kubernetes.container.image"] == "registry.bank.example/fedspark:0.1"
    assert conf["spark.kubernetes.namespace"] == "fl"
    assert conf["spark.kubernetes.authenticate.driver.serviceAccountName"] == "spark"
    assert conf["spark.kubernetes.file.upload.path"] == "s3a://spark-uploads/"
    assert conf["spark.executor.instances"] == "3"
    assert conf["spark.kubernetes.driverEnv.PYSPARK_PYTHON"] == "./environment/bin/python"
    assert cmd.option("--archives") == "s3a://envs/fedspark-env.tar.gz#environment"
    assert cmd.option("--queue") is None and cmd.option("--num-executors") is None


@pytest.mark.parametrize(("cluster", "message"), [
    ({"master": "local[2]", "deploy_mode": "cluster"}, "cluster deploy mode needs a cluster master"),
    ({"master": "mesos://old:5050"}, "is not yarn"),
    ({"master": "k8s://https://k8s:6443"}, "needs cluster.kubernetes.image"),
    ({"master": "yarn", "principal": "fl@BANK"}, "principal and cluster.keytab go together"),
])
def test_bad_cluster_sections_are_refused(cluster: dict[str, Any], message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=message):
        spark_submit_command(ClusterConfig.model_validate(cluster), job_file=tmp_path / "j.yaml", me=GUEST,
                             job_id="j", runs_dir=tmp_path)


def test_the_same_command_runs_on_local_master(tmp_path: Path, test_data: Path) -> None:
    """spark-submit accepts everything else: archive, confs, files, entry point; the party reads its table."""
    env_dir = tmp_path / "env"
    (env_dir / "bin").mkdir(parents=True)
    (env_dir / "bin" / "README").write_text("stands in for a venv-pack archive\n")
    archive = tmp_path / "fedspark-env.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(env_dir, arcname=".")
    yarn = {**YARN, "python_archive": str(archive), "principal": None, "keytab": None, "queue": None,
            "num_executors": None, "executor_cores": None, "executor_memory": None, "driver_memory": "512m"}
    job_file = _job(tmp_path, test_data, yarn)
    proc = _cli(str(job_file), "--party", "guest:9999", "--job-id", "j9", "--master", "local[2]",
                "--deploy-mode", "client", "--python", sys.executable, "--check", "--execute", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    cmd = _parse(proc.stdout.splitlines()[0])
    assert cmd.option("--master") == "local[2]" and cmd.option("--archives") == f"{archive}#environment"
    assert cmd.env["PYSPARK_PYTHON"] == sys.executable and cmd.conf()["spark.pyspark.python"] == sys.executable
    events = [json.loads(line.split(" ", 1)[1]) for line in proc.stdout.splitlines() if line.startswith("@@fedspark-event")]
    (checked,) = [e for e in events if e["event"] == "checked"]
    assert checked["master"] == "local[2]" and checked["rows"] == 569 and checked["features"] == 10
    assert checked["python"] == sys.executable


def _tls_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "tls"
    folder.mkdir()
    (folder / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n")
    (folder / "party-9999.pem").write_text("-----BEGIN CERTIFICATE-----\nme\n-----END CERTIFICATE-----\n")
    (folder / "party-9999.key").write_text("-----BEGIN PRIVATE KEY-----\nsecret\n-----END PRIVATE KEY-----\n")
    return folder


def test_cluster_mode_reads_tls_from_the_nodes_and_ships_no_key(tmp_path: Path) -> None:
    """The driver is pointed at a folder already on the nodes; --files carries the job and routes only."""
    job_file, routes = tmp_path / "job.yaml", tmp_path / "routes.json"
    job_file.write_text("name: j\n")
    routes.write_text("{}")
    cluster = ClusterConfig.model_validate({**YARN, "tls_dir_on_nodes": "/etc/fedspark/tls"})
    cmd = spark_submit_command(cluster, job_file=job_file, me=GUEST, job_id="j", runs_dir=Path("/shared/runs"),
                               routes_file=routes)
    app = cmd.argv[cmd.argv.index(str(entry_point())) + 1:]
    assert app[app.index("--tls-dir") + 1] == "/etc/fedspark/tls"
    assert cmd.option("--files") == f"{job_file.resolve()},{routes.resolve()}"
    assert not [arg for arg in cmd.argv if arg.endswith((".key", ".pem"))]


def test_cluster_mode_refuses_to_ship_a_local_tls_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"does not ship TLS files with --files.*tls_dir_on_nodes"):
        spark_submit_command(ClusterConfig.model_validate(YARN), job_file=tmp_path / "j.yaml", me=GUEST,
                             job_id="j", runs_dir=tmp_path, tls_dir=_tls_folder(tmp_path))


@pytest.mark.parametrize("name", ["party-9999.key", "job.yaml"])
def test_cluster_mode_never_ships_a_private_key_in_any_file(name: str, tmp_path: Path) -> None:
    """Whatever reaches --files is checked: a .key file, or a job file with a PEM private key pasted in."""
    path = tmp_path / name
    path.write_text("name: j\nnote: |\n  -----BEGIN PRIVATE KEY-----\n  secret\n  -----END PRIVATE KEY-----\n")
    with pytest.raises(ConfigError, match="holds a private key"):
        spark_submit_command(ClusterConfig.model_validate(YARN), job_file=path, me=GUEST, job_id="j",
                             runs_dir=tmp_path)


def test_tls_dir_on_nodes_must_be_absolute(tmp_path: Path) -> None:
    cluster = ClusterConfig.model_validate({**YARN, "tls_dir_on_nodes": "tls"})
    with pytest.raises(ConfigError, match="must be an absolute path"):
        spark_submit_command(cluster, job_file=tmp_path / "j.yaml", me=GUEST, job_id="j", runs_dir=tmp_path)


def test_client_mode_reads_the_local_tls_folder(tmp_path: Path) -> None:
    """The driver runs on the submitting host: it reads the folder in place, nothing is shipped."""
    tls = _tls_folder(tmp_path)
    client = ClusterConfig.model_validate({**YARN, "deploy_mode": "client", "tls_dir_on_nodes": "/etc/fedspark/tls"})
    cmd = spark_submit_command(client, job_file=tmp_path / "j.yaml", me=GUEST, job_id="j", runs_dir=tmp_path,
                               tls_dir=tls)
    app = cmd.argv[cmd.argv.index(str(entry_point())) + 1:]
    assert app[app.index("--tls-dir") + 1] == str(tls.resolve()) and cmd.option("--files") is None


def test_the_sealing_folder_is_read_in_place_in_client_mode_and_never_shipped(tmp_path: Path) -> None:
    """The sealing key (pair keys for secure aggregation) is a private key: client mode names the local
    folder, cluster deploy mode refuses to ship it."""
    sealing = tmp_path / "sealing"
    sealing.mkdir()
    client = ClusterConfig.model_validate({**YARN, "deploy_mode": "client"})
    cmd = spark_submit_command(client, job_file=tmp_path / "j.yaml", me=GUEST, job_id="j", runs_dir=tmp_path,
                               sealing_dir=sealing)
    app = cmd.argv[cmd.argv.index(str(entry_point())) + 1:]
    assert app[app.index("--sealing-dir") + 1] == str(sealing.resolve()) and cmd.option("--files") is None
    with pytest.raises(ConfigError, match="does not ship the sealing key"):
        spark_submit_command(ClusterConfig.model_validate(YARN), job_file=tmp_path / "j.yaml", me=GUEST,
                             job_id="j", runs_dir=tmp_path, sealing_dir=sealing)
