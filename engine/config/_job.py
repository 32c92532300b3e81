"""Job definitions (``jobs/*.yaml``), validated with pydantic.

A job names the parties and their roles, each party's table, the algorithm's
parameters and the security settings. Errors name the job file and the field,
so a typo fails before any party process starts.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from fedspark.algorithms import algorithm_names, get_algorithm
from fedspark.common import ConfigError, PartyRef, Role
from fedspark.engine.config._cluster import ClusterConfig

if TYPE_CHECKING:
    from fedspark.algorithms.homo_nn import SimulationSettings
    from fedspark.storage import TableSpec

_M = TypeVar("_M", bound=BaseModel)

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TableConfig(_Strict):
    uri: str
    id_column: str = "id"
    label_column: str | None = None
    feature_columns: list[str] | None = None
    format: Literal["csv", "parquet"] | None = None
    fill_missing: float | None = Field(None, description="fill empty/NaN cells with this value instead of failing")

    def spec(self, **changes: Any) -> TableSpec:
        """The storage layer's :class:`~fedspark.storage.TableSpec` of this table (``changes`` over it)."""
        from fedspark.storage import TableSpec

        return TableSpec(**{**self.model_dump(), **changes})


class PartyConfig(_Strict):
    party_id: str
    data: TableConfig | None = None
    model_dir: str | None = Field(
        None, description="this party's model folder (model.json, transforms.json), a path or a file://, "
        "hdfs:// or webhdfs:// URI: training writes there too, scoring reads from there"
    )
    test_data: TableConfig | None = Field(None, description="held-out table this party scores the final model on")
    cluster: ClusterConfig | None = Field(None, description="this party's cluster for spark-submit (engine/config/_cluster.py)")

    @model_validator(mode="before")
    @classmethod
    def _party_id_as_text(cls, value: Any) -> Any:
        if isinstance(value, dict) and isinstance(value.get("party_id"), int):
            value = {**value, "party_id": str(value["party_id"])}
        return value


class PartiesConfig(_Strict):
    guest: PartyConfig
    hosts: list[PartyConfig] = Field(min_length=1)
    arbiter: PartyConfig | None = Field(None, description="required for training; scoring and psi jobs have none")


class SecurityConfig(_Strict):
    """What the job asks for. Whether a party accepts it is that party's own setting (``--min-key-size``)."""

    key_size: int = Field(2048, description="bits of the Paillier modulus the arbiter generates")

    @model_validator(mode="before")
    @classmethod
    def _no_shared_opt_in(cls, value: Any) -> Any:
        if isinstance(value, dict) and "allow_insecure_key_size" in value:
            raise ValueError(
                "allow_insecure_key_size is no longer a job setting: a shared job file must not lower any party's "
                "key-size floor; each party sets its own (fedspark run --min-key-size BITS)"
            )
        return value


class FederationConfig(_Strict):
    timeout_s: float = Field(300.0, gt=0, description="longest wait for any one message from a peer")
    host: str = "127.0.0.1"
    tls: bool = Field(
        True, description="mTLS between gateways, on loopback too: the embedded runner makes a job CA and party "
        "certificates and deletes their keys when the run ends; false (plaintext) only with a loopback host"
    )
    topology: Literal["mesh", "star"] = Field(
        "mesh", description="mesh: every party dials every gateway; star: all through an exchange, payloads sealed"
    )


class ComputeConfig(_Strict):
    """Where a party's per-row work runs: the ``driver`` (its aligned table collected once, Paillier
    work in driver threads and processes), ``spark`` (the table stays a persisted DataFrame, every
    per-row step of a mini-batch runs in the executors), or ``auto``.

    ``auto`` chooses by size (``algorithms/hetero_lr/_training_job.choose_backend``): the driver up
    to 20M (rows × features) cells, the executors above; the choice and its reason are logged and
    written to ``metrics.json``. Both paths run the same batch plan, so with the same seed they
    train the same weights."""

    backend: Literal["auto", "driver", "spark"] = "auto"
    partitions: int = Field(2, ge=1, description="driver worker processes, or the executor path's partitions "
                                                 "(at least Spark's default parallelism)")


class FeaturesConfig(_Strict):
    """Feature steps each party runs on its own columns before training (and again when scoring)."""

    fill: Literal["none", "mean", "median", "zero"] = Field(
        "none", description="fill missing feature cells; 'none' makes a missing cell an error"
    )
    scale: Literal["none", "standard", "minmax"] = "none"

    @property
    def active(self) -> bool:
        return self.fill != "none" or self.scale != "none"


class ScoringConfig(_Strict):
    """Which trained model a scoring job uses and how its rows are aligned."""

    model_job: str | None = Field(
        None, description="training job name: use its latest run under the runs folder"
    )
    model_job_id: str | None = Field(None, description="training job id (a folder under the runs folder)")
    output: str | None = Field(
        None, description="where the guest writes the scores (Parquet; a path or file:// / hdfs:// URI); "
        "default: scores.parquet in the guest's run folder"
    )


class DebugConfig(_Strict):
    delay_s: dict[str, float] = Field(default_factory=dict, description="role or party id -> seconds to stall at start")
    record_gradients: bool = Field(False, description="write each party's plaintext gradients to its own run folder")


class SimulationConfig(_Strict):
    """``homo_nn`` with virtual clients: one table split non-IID (Dirichlet over labels) into
    ``clients`` parts, trained as Spark tasks in one process, with the same arbiter code."""

    clients: int = Field(100, ge=2)
    data: TableConfig
    test_data: TableConfig | None = None
    dirichlet_alpha: float = Field(0.5, gt=0)
    seed: int = 0
    partitions: int = Field(2, ge=1, description="Spark partitions the virtual clients are spread over")

    def settings(self) -> SimulationSettings:
        """What :class:`fedspark.algorithms.homo_nn.Simulation` takes."""
        from fedspark.algorithms.homo_nn import SimulationSettings

        return SimulationSettings(
            data=self.data.spec(), test_data=self.test_data.spec() if self.test_data is not None else None,
            clients=self.clients, dirichlet_alpha=self.dirichlet_alpha, seed=self.seed, partitions=self.partitions,
        )


class JobConfig(_Strict):
    name: str
    algorithm: str = Field("hetero_lr", description="a registered algorithm (fedspark.algorithms.algorithm_names())")
    modules: list[str] = Field(
        default_factory=list, description="modules to import first: third-party algorithms register on import"
    )
    examples: Literal["breast", "breast_homo"] | None = Field(None, description="example tables to generate when missing")
    parties: PartiesConfig | None = Field(None, description="required unless 'simulation' is given")
    simulation: SimulationConfig | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    security: SecurityConfig = Field(default_factory=SecurityConfig)
    federation: FederationConfig = Field(default_factory=FederationConfig)
    spark: dict[str, str] = Field(default_factory=dict)
    compute: ComputeConfig = Field(default_factory=ComputeConfig)
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    scoring: ScoringConfig = Field(default_factory=ScoringConfig)
    align: Literal["psi", "same_ids"] = Field(
        "same_ids", description="psi: private set intersection of the parties' ids; "
        "same_ids: the parties hold the same ids (checked with a salted digest)"
    )
    debug: DebugConfig = Field(default_factory=DebugConfig)

    @model_validator(mode="before")
    @classmethod
    def _import_modules(cls, value: Any) -> Any:
        if isinstance(value, dict) and isinstance(value.get("modules"), list):
            for module in value["modules"]:
                try:
                    importlib.import_module(str(module))
                except ImportError as exc:
                    raise ValueError(f"modules: cannot import {module!r} ({exc})") from None
        return value

    @field_validator("algorithm")
    @classmethod
    def _registered(cls, name: str) -> str:
        if name not in algorithm_names():
            raise ValueError(f"unknown algorithm {name!r} (known: {', '.join(algorithm_names())})")
        return name

    @model_validator(mode="after")
    def _check_parties(self) -> JobConfig:
        algorithm = get_algorithm(self.algorithm)
        if self.simulation is not None:
            if not algorithm.simulation:
                simulated = [n for n in algorithm_names() if get_algorithm(n).simulation]
                raise ValueError(f"simulation runs {', '.join(simulated)} only, not {self.algorithm}")
            return self
        ids = [p.party_id for p in self.all_party_configs()]
        if len(set(ids)) != len(ids):
            raise ValueError(f"each role needs its own party id in the embedded runner, got {ids}")
        if self.roster.guest.data is None or any(h.data is None for h in self.roster.hosts):
            raise ValueError("guest and hosts need a 'data' table")
        labelled = [cfg for ref, cfg in zip(self.party_refs(), self.all_party_configs()) if ref.role in algorithm.labels_at]
        for party in labelled:
            if party.data is not None and party.data.label_column is None:
                raise ValueError(f"party {party.party_id}: data.label_column is required for {self.algorithm}")
        if algorithm.requires_arbiter and self.roster.arbiter is None:
            raise ValueError(f"parties.arbiter is required for {self.algorithm} training")
        return self

    @property
    def roster(self) -> PartiesConfig:
        if self.parties is None:
            raise ValueError(f"job {self.name}: 'parties' is required unless the job is a simulation")
        return self.parties

    def parties_with_data(self) -> list[PartyConfig]:
        return [self.roster.guest, *self.roster.hosts]

    def all_party_configs(self) -> list[PartyConfig]:
        if self.simulation is not None:
            return [PartyConfig(party_id="simulation", data=self.simulation.data, test_data=self.simulation.test_data)]
        arbiter = [self.roster.arbiter] if self.roster.arbiter is not None else []
        return [self.roster.guest, *self.roster.hosts, *arbiter]

    def party_refs(self) -> list[PartyRef]:
        if self.simulation is not None:
            return []
        arbiter = [PartyRef(Role.ARBITER, self.roster.arbiter.party_id)] if self.roster.arbiter is not None else []
        return [
            PartyRef(Role.GUEST, self.roster.guest.party_id),
            *[PartyRef(Role.HOST, h.party_id) for h in self.roster.hosts],
            *arbiter,
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
    raw = read_yaml_mapping(path, "job file")
    try:
        job = JobConfig.model_validate(raw)
        get_algorithm(job.algorithm).params.model_validate(job.params)
    except ValidationError as exc:
        prefix = () if exc.title == "JobConfig" else ("params",)
        problems = "; ".join(
            f"{'.'.join(str(p) for p in (*prefix, *err['loc'])) or '(top)'}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"job file {path}: {problems}") from None
    return job


def load_yaml_model(path: Path, what: str, model: type[_M]) -> _M:
    """A YAML file validated as ``model``; every problem names ``what``, the file and the field."""
    raw = read_yaml_mapping(path, what)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}" for err in exc.errors())
        raise ConfigError(f"{what} {path}: {problems}") from None


def read_yaml_mapping(path: Path, what: str) -> dict[str, Any]:
    """The mapping at the top of a YAML file; errors name ``what`` and the file."""
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} {path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{what} {path} must hold a mapping at the top level")
    return raw
