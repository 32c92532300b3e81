"""A party's own cluster section: where and how its side of a job is submitted (``cluster:`` in its config).

The spark-submit command built from it lives in ``fedspark.engine.runtime._submit``.
"""

from __future__ import annotations

import sys
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KubernetesConfig(_Strict):
    image: str = Field(description="container image with Java, Spark and (unless an archive is shipped) fedspark")
    namespace: str = "default"
    service_account: str | None = Field(None, description="driver's service account (needs rights to create executor pods)")
    upload_path: str | None = Field(None, description="spark.kubernetes.file.upload.path for local job files, e.g. s3a:// or hdfs://")


class ClusterConfig(_Strict):
    """Where and how one party submits its Spark application (``parties.<role>.cluster`` in a job)."""

    master: str = Field("local[2]", description="yarn, k8s://https://HOST:PORT, spark://HOST:PORT or local[N]")
    deploy_mode: Literal["client", "cluster"] = "client"
    queue: str | None = Field(None, description="YARN queue")
    num_executors: int | None = Field(None, ge=1)
    executor_cores: int | None = Field(None, ge=1)
    executor_memory: str | None = None
    driver_memory: str | None = None
    cores_max: int | None = Field(None, ge=1, description="spark.cores.max: this application's share of a standalone cluster")
    python_archive: str | None = Field(None, description="venv-pack archive (local path or hdfs://...) unpacked as archive_name")
    archive_name: str = "environment"
    python: str | None = Field(None, description="executors' Python; default ./<archive_name>/bin/python with an archive")
    driver_python: str | None = Field(None, description="client mode: the local driver's Python (default: this interpreter)")
    principal: str | None = Field(None, description="Kerberos principal (with keytab): spark-submit renews tickets")
    keytab: str | None = None
    kubernetes: KubernetesConfig | None = None
    tls_dir_on_nodes: str | None = Field(
        None,
        description="cluster deploy mode: folder on every node (or mounted secret) holding ca.pem, party-<id>.pem "
                    "and party-<id>.key; the private key is never shipped with --files",
    )
    conf: dict[str, str] = Field(default_factory=dict, description="extra --conf settings")
    spark_submit: str | None = Field(None, description="spark-submit to run; default: on PATH, else pyspark's own")

    def executors_python(self) -> str:
        if self.python:
            return self.python
        return f"./{self.archive_name}/bin/python" if self.python_archive else sys.executable
