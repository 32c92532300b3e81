"""A party's Spark settings: the quick JIT for small local inputs, the JVM's default otherwise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from fedspark.common import PartyRef, Role
from fedspark.engine.config._job import load_job
from fedspark.engine.runtime._party import party_spark_conf
from fedspark.engine.runtime._spark import QUICK_JIT_CONF, SMALL_INPUT_BYTES

GUEST = PartyRef(Role.GUEST, "9999")
HOST = PartyRef(Role.HOST, "10000")
ARBITER = PartyRef(Role.ARBITER, "10001")
JIT = "spark.driver.extraJavaOptions"


def _job(tmp_path: Path, guest_uri: str, host_uri: str, **extra: Any) -> Any:
    job = {
        "name": "conf", "algorithm": "hetero_lr",
        "parties": {"guest": {"party_id": "9999", "data": {"uri": guest_uri, "label_column": "y"}},
                    "hosts": [{"party_id": "10000", "data": {"uri": host_uri}}],
                    "arbiter": {"party_id": "10001"}},
        **extra,
    }
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(job))
    return load_job(tmp_path / "job.yaml")


def test_a_small_local_table_gets_the_quick_jit_a_large_one_the_default(tmp_path: Path) -> None:
    (tmp_path / "small.csv").write_text("id,y,x\n1,0,0.5\n")
    with (tmp_path / "large.csv").open("wb") as large:
        large.truncate(SMALL_INPUT_BYTES + 1)  # sparse: its size is what counts
    job = _job(tmp_path, str(tmp_path / "small.csv"), str(tmp_path / "large.csv"))
    assert party_spark_conf(job, GUEST)[JIT] == QUICK_JIT_CONF[JIT] == "-XX:TieredStopAtLevel=1"
    assert JIT not in party_spark_conf(job, HOST)
    assert JIT not in party_spark_conf(job, ARBITER)  # no table (and no Spark session)


def test_unknown_sizes_keep_the_default_and_the_job_file_decides_last(tmp_path: Path) -> None:
    (tmp_path / "small.csv").write_text("id,y,x\n1,0,0.5\n")
    job = _job(tmp_path, "hdfs://namenode:8020/t.csv", str(tmp_path / "not-yet.csv"))
    assert JIT not in party_spark_conf(job, GUEST) and JIT not in party_spark_conf(job, HOST)
    chosen = _job(tmp_path, str(tmp_path / "small.csv"), str(tmp_path / "small.csv"),
                  spark={JIT: "-Xss4m", "spark.driver.memory": "3g"})
    assert party_spark_conf(chosen, GUEST) == {JIT: "-Xss4m", "spark.driver.memory": "3g"}
