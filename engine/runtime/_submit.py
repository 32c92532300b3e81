"""A party's own cluster: its config section and the spark-submit command that runs its side of a job.

Users who pay for fedspark already run Spark on YARN or Kubernetes and submit
into queues; each party's side of a job is then one Spark application started
by ``spark-submit`` with :mod:`fedspark.engine.party_main` as the driver. The
Python environment (fedspark and its dependencies) travels as a venv-pack
archive that YARN/K8s unpack next to each container as ``./environment``, and
``PYSPARK_PYTHON`` points into it. The same builder serves the embedded
runner's ``--spark-master spark://...`` (standalone, client mode) so the
command an operator prints is the command the tests run.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from fedspark.common import ConfigError, PartyRef
from fedspark.engine.config._cluster import ClusterConfig


@dataclass(frozen=True)
class SubmitCommand:
    """The command and the environment variables it needs (printed as ``VAR=value spark-submit ...``)."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)

    def shell(self) -> str:
        assignments = [f"{key}={shlex.quote(value)}" for key, value in sorted(self.env.items())]
        return " ".join([*assignments, shlex.join(self.argv)])

    def conf(self) -> dict[str, str]:
        """The ``--conf`` settings, for checks."""
        return dict(self.argv[i + 1].split("=", 1) for i, arg in enumerate(self.argv) if arg == "--conf")

    def option(self, name: str) -> str | None:
        """The value after ``name`` before the application file, or None."""
        head = self.argv[: self.argv.index(str(entry_point()))]
        return head[head.index(name) + 1] if name in head else None


_MASTER = re.compile(r"^(yarn|local(\[(\d+|\*)\])?|spark://[^/\s]+|k8s://https?://[^/\s]+)$")


def entry_point() -> Path:
    """spark-submit's primary resource: the installed ``party_main.py`` (named, not imported: it imports this)."""
    return Path(os.path.abspath(__file__)).parent.parent / "party_main.py"


def find_spark_submit(configured: str | None = None) -> str:
    """The spark-submit to run: the configured one, one on PATH, or the one pyspark ships."""
    if configured:
        return configured
    on_path = shutil.which("spark-submit")
    if on_path:
        return on_path
    import pyspark

    return str(Path(pyspark.__file__).parent / "bin" / "spark-submit")


def spark_submit_command(
    cluster: ClusterConfig,
    *,
    job_file: Path,
    me: PartyRef,
    job_id: str,
    runs_dir: Path,
    spark_conf: dict[str, str] | None = None,
    port: int | None = None,
    routes_file: Path | None = None,
    tls_dir: Path | None = None,
    tap_dir: Path | None = None,
    check: bool = False,
    min_key_size: int | None = None,
    sealing_dir: Path | None = None,
) -> SubmitCommand:
    """Build the spark-submit command for ``me``'s side of ``job_id``.

    ``spark_conf`` (the job's ``spark`` section) goes in as ``--conf`` except
    ``spark.master`` and the driver's memory, which the cluster section sets.
    In cluster deploy mode the driver runs in the cluster, so the job file and
    routes are shipped with ``--files`` and named by their base names (YARN
    puts them in the driver's working folder); the run folder must then be a
    path the driver node can write. TLS material is *not* shipped: ``--files``
    copies through the cluster's staging area (HDFS, an upload bucket), where
    the party's private key would outlive the job and be readable by whoever
    reads that area. The driver instead reads ``cluster.tls_dir_on_nodes``, a
    folder already on the nodes (a mounted secret); a local ``tls_dir`` in
    cluster mode is a :class:`ConfigError`, as is a master spark-submit would
    not accept.
    """
    master, mode = cluster.master, cluster.deploy_mode
    if not _MASTER.match(master):
        raise ConfigError(f"party {me}: cluster.master {master!r} is not yarn, k8s://https://HOST:PORT, "
                          "spark://HOST:PORT or local[N]")
    if mode == "cluster" and master.startswith("local"):
        raise ConfigError(f"party {me}: cluster deploy mode needs a cluster master, not {master!r}")
    if master.startswith("k8s://") and cluster.kubernetes is None:
        raise ConfigError(f"party {me}: a k8s:// master needs cluster.kubernetes.image")
    if (cluster.principal is None) != (cluster.keytab is None):
        raise ConfigError(f"party {me}: cluster.principal and cluster.keytab go together")
    in_cluster = mode == "cluster"
    if in_cluster and tls_dir is not None:
        raise ConfigError(
            f"party {me}: cluster deploy mode does not ship TLS files with --files (the private key would be "
            f"copied into the cluster's staging area): put ca.pem, party-{me.party_id}.pem and "
            f"party-{me.party_id}.key on every node and set cluster.tls_dir_on_nodes instead of --tls-dir {tls_dir}"
        )
    nodes_tls = cluster.tls_dir_on_nodes
    if in_cluster and nodes_tls is not None and not PurePosixPath(nodes_tls).is_absolute():
        raise ConfigError(f"party {me}: cluster.tls_dir_on_nodes {nodes_tls!r} must be an absolute path on the nodes")
    python = cluster.executors_python()
    argv = [find_spark_submit(cluster.spark_submit), "--master", master, "--deploy-mode", mode,
            "--name", f"fedspark-{job_id}-{me.role.value}-{me.party_id}"]
    conf: dict[str, str] = {k: v for k, v in (spark_conf or {}).items() if k not in ("spark.master", "spark.driver.memory")}
    env = {"PYSPARK_PYTHON": python}
    conf["spark.pyspark.python"] = python
    conf["spark.executorEnv.PYSPARK_PYTHON"] = python
    if in_cluster:
        if master == "yarn":
            conf["spark.yarn.appMasterEnv.PYSPARK_PYTHON"] = python
        elif master.startswith("k8s://"):
            conf["spark.kubernetes.driverEnv.PYSPARK_PYTHON"] = python
    else:
        driver_python = cluster.driver_python or sys.executable
        conf["spark.pyspark.driver.python"] = driver_python
        env["PYSPARK_DRIVER_PYTHON"] = driver_python
    if master == "yarn":
        argv += _opt("--queue", cluster.queue) + _opt("--num-executors", cluster.num_executors)
    elif cluster.num_executors is not None:
        conf["spark.executor.instances"] = str(cluster.num_executors)
    if cluster.cores_max is not None:
        conf["spark.cores.max"] = str(cluster.cores_max)
    if cluster.kubernetes is not None:
        k8s = cluster.kubernetes
        conf["spark.kubernetes.container.image"] = k8s.image
        conf["spark.kubernetes.namespace"] = k8s.namespace
        if k8s.service_account:
            conf["spark.kubernetes.authenticate.driver.serviceAccountName"] = k8s.service_account
        if k8s.upload_path:
            conf["spark.kubernetes.file.upload.path"] = k8s.upload_path
    argv += _opt("--executor-cores", cluster.executor_cores) + _opt("--executor-memory", cluster.executor_memory)
    argv += _opt("--driver-memory", cluster.driver_memory or (spark_conf or {}).get("spark.driver.memory"))
    argv += _opt("--principal", cluster.principal) + _opt("--keytab", cluster.keytab)
    if cluster.python_archive:
        argv += ["--archives", f"{cluster.python_archive}#{cluster.archive_name}"]
    conf.update(cluster.conf)

    shipped: list[Path] = []

    def local(path: Path) -> str:
        if not in_cluster:
            return str(path.resolve())
        _refuse_key_material(path, me)
        shipped.append(path.resolve())
        return path.name

    app_args = ["--job", local(job_file), "--role", me.role.value, "--party", me.party_id, "--job-id", job_id,
                "--runs-dir", str(runs_dir if in_cluster else runs_dir.resolve())]
    if port is not None:
        app_args += ["--port", str(port)]
    if routes_file is not None:
        app_args += ["--routes", local(routes_file)]
    if in_cluster and nodes_tls is not None:
        app_args += ["--tls-dir", nodes_tls]
    elif tls_dir is not None:
        app_args += ["--tls-dir", str(tls_dir.resolve())]
    if sealing_dir is not None:
        if in_cluster:  # a private key, like the TLS key: never shipped
            raise ConfigError(f"party {me}: cluster deploy mode does not ship the sealing key in {sealing_dir}; put "
                              "the sealing folder on every node and name it as sealing_dir in the party's conf")
        app_args += ["--sealing-dir", str(sealing_dir.resolve())]
    if tap_dir is not None:
        app_args += ["--tap-dir", str(tap_dir.resolve())]
    if min_key_size is not None:
        app_args += ["--min-key-size", str(min_key_size)]
    if check:
        app_args.append("--check")
    if shipped:
        argv += ["--files", ",".join(str(p) for p in shipped)]
    for key in sorted(conf):
        argv += ["--conf", f"{key}={conf[key]}"]
    return SubmitCommand([*argv, str(entry_point()), *app_args], env)


def _refuse_key_material(path: Path, me: PartyRef) -> None:
    """Never ship a private key with ``--files``: by its name, or by a PEM private-key block inside it.

    A last check on whatever reaches ``--files`` (the job file, routes): the
    TLS folder is no longer shipped, and nothing else may carry a key out.
    """
    try:
        with path.open("rb") as file:
            head = file.read(1 << 20)
    except OSError:
        head = b""  # spark-submit itself reports a missing file
    if path.suffix == ".key" or b"PRIVATE KEY-----" in head:
        raise ConfigError(f"party {me}: {path} holds a private key; keys are never shipped with --files "
                          "(cluster deploy mode reads TLS material from cluster.tls_dir_on_nodes)")


def _opt(name: str, value: object) -> list[str]:
    return [] if value is None else [name, str(value)]


def submit_env(command: SubmitCommand) -> dict[str, str]:
    """This process's environment plus the command's variables, for running it here."""
    return {**os.environ, **command.env}
