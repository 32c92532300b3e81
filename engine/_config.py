"""Job definitions (``jobs/*.yaml``), validated with pydantic.

A job names the parties and their roles, each party's table, the algorithm's
parameters and the security settings. Errors name the job file and the field,
so a typo fails before any party process starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from fedspark.common import ConfigError, PartyRef, Role
from fedspark.engine._cluster import ClusterConfig


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TableConfig(_Strict):
    uri: str
    id_column: str = "id"
    label_column: str | None = None
    feature_columns: list[str] | None = None
    format: Literal["csv", "parquet"] | None = None
    fill_missing: float | None = Field(None, description="fill empty/NaN cells with this value instead of failing")


class PartyConfig(_Strict):
    party_id: str
    data: TableConfig | None = None
    cluster: ClusterConfig | None = Field(None, description="this party's cluster for spark-submit (engine/_cluster.py)")

    @model_validator(mode="before")
    @classmethod
    def _party_id_as_text(cls, value: Any) -> Any:
        if isinstance(value, dict) and isinstance(value.get("party_id"), int):
            value = {**value, "party_id": str(value["party_id"])}
        return value


class PartiesConfig(_Strict):
    guest: PartyConfig
    hosts: list[PartyConfig] = Field(min_length=1)
    arbiter: PartyConfig


class SecurityConfig(_Strict):
    key_size: int = 2048
    allow_insecure_key_size: bool = False


class FederationConfig(_Strict):
    timeout_s: float = Field(300.0, gt=0, description="longest wait for any one message from a peer")
    host: str = "127.0.0.1"
    tls: bool = Field(False, description="mTLS between gateways; the embedded runner makes a job CA and party certificates")


class ComputeConfig(_Strict):
    """Where Paillier work runs: the ``driver`` (threads over cached Arrow data), ``spark``
    executors (one mapInArrow job per step), or ``auto``. With pooled obfuscators and
    multi-exponentiation a breast epoch takes well under a second in the driver, less
    than one Spark job's latency, so ``auto`` means the driver for tables that fit it."""

    backend: Literal["auto", "driver", "spark"] = "auto"
    partitions: int = Field(2, ge=1, description="threads (driver) or partitions (spark) for crypto work")


class DebugConfig(_Strict):
    delay_s: dict[str, float] = Field(default_factory=dict, description="role or party id -> seconds to stall at start")
    record_gradients: bool = Field(False, description="write each party's plaintext gradients to its own run folder")


class JobConfig(_Strict):
    name: str
    algorithm: Literal["hetero_lr"] = "hetero_lr"
    examples: Literal["breast"] | None = Field(None, description="example tables to generate when missing")
    parties: PartiesConfig
    params: dict[str, Any] = Field(default_factory=dict)
    security: SecurityConfig = Field(default_factory=SecurityConfig)
    federation: FederationConfig = Field(default_factory=FederationConfig)
    spark: dict[str, str] = Field(default_factory=dict)
    compute: ComputeConfig = Field(default_factory=ComputeConfig)
    debug: DebugConfig = Field(default_factory=DebugConfig)

    @model_validator(mode="after")
    def _check_parties(self) -> JobConfig:
        ids = [p.party_id for p in self.all_party_configs()]
        if len(set(ids)) != len(ids):
            raise ValueError(f"each role needs its own party id in the embedded runner, got {ids}")
        if self.parties.guest.data is None or any(h.data is None for h in self.parties.hosts):
            raise ValueError("guest and hosts need a 'data' table")
        if self.parties.guest.data.label_column is None:
            raise ValueError("parties.guest.data.label_column is required for hetero_lr")
        return self

    def all_party_configs(self) -> list[PartyConfig]:
        return [self.parties.guest, *self.parties.hosts, self.parties.arbiter]

    def party_refs(self) -> list[PartyRef]:
        return [
            PartyRef(Role.GUEST, self.parties.guest.party_id),
            *[PartyRef(Role.HOST, h.party_id) for h in self.parties.hosts],
            PartyRef(Role.ARBITER, self.parties.arbiter.party_id),
        ]

    def party_config(self, me: PartyRef) -> PartyConfig:
        for ref, cfg in zip(self.party_refs(), self.all_party_configs()):
            if ref == me:
                return cfg
        raise ConfigError(f"job {self.name}: {me} is not a party of this job")

    def delay_for(self, me: PartyRef) -> float:
        return self.debug.delay_s.get(me.party_id, self.debug.delay_s.get(me.role.value, 0.0))


def load_job(path: Path) -> JobConfig:
    """Read and validate a job file; errors name the file and the offending field."""
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"job file {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"job file {path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"job file {path} must hold a mapping at the top level")
    try:
        job = JobConfig.model_validate(raw)
        _algorithm_params_model(job.algorithm).model_validate(job.params)
    except ValidationError as exc:
        prefix = () if exc.title == "JobConfig" else ("params",)
        problems = "; ".join(
            f"{'.'.join(str(p) for p in (*prefix, *err['loc'])) or '(top)'}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"job file {path}: {problems}") from None
    return job


def _algorithm_params_model(algorithm: str) -> type[BaseModel]:
    from fedspark.algorithms.hetero_lr import HeteroLRParams

    return {"hetero_lr": HeteroLRParams}[algorithm]
