"""A party's own configuration (a YAML file it writes; none ships): who it is, where its peers are, its TLS files.

Jobs name parties; only a party's own conf says how to reach them, because
addresses and keys are each organisation's business. Relative paths are read
from the conf file's folder, so a conf folder can be copied as a whole.

Example::

    party_id: "9999"
    routes: {"10000": "bank-b.example:9370", "10001": "exchange.example:9370"}
    tls: {ca_cert: certs/ca.pem, cert: certs/party-9999.pem, key: certs/party-9999.key}
    federation: {insecure_plaintext: false}   # the default; see PartyFederation
    sealing_dir: sealing    # sealing.key, ca.pem, peers/*.pem: pair keys for secure aggregation

The plaintext opt-in lives here, in the party's own file, and never in a job:
a job file is shared by every party, and one party must not be able to lower
another's transport security by editing it (as with ``--min-key-size``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from fedspark.engine.config._job import load_yaml_model
from fedspark.federation import TlsConfig


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TlsFiles(_Strict):
    ca_cert: Path
    cert: Path
    key: Path


class PartyFederation(_Strict):
    """How this party's gateway may talk when it has no TLS material."""

    insecure_plaintext: bool = Field(
        False, description="allow plaintext gRPC off loopback (gateway bind and routes) without mTLS: peers are "
        "then not authenticated and traffic is readable on the network; every output of such a run says so"
    )


class PartyConf(_Strict):
    party_id: str
    routes: dict[str, str] = {}
    tls: TlsFiles | None = None
    federation: PartyFederation = Field(default_factory=PartyFederation)
    sealing_dir: Path | None = Field(
        None, description="this party's sealing.key with ca.pem and peers/*.pem (certificates carrying the peers' "
        "sealing keys): the pair keys homo_nn's secure aggregation needs across machines")

    @field_validator("party_id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value

    @field_validator("routes", mode="before")
    @classmethod
    def _keys_as_text(cls, value: Any) -> Any:
        return {str(k): v for k, v in value.items()} if isinstance(value, dict) else value

    def tls_config(self) -> TlsConfig | None:
        if self.tls is None:
            return None
        return TlsConfig(self.tls.ca_cert, self.tls.cert, self.tls.key)


def load_party_conf(path: Path) -> PartyConf:
    """Read and validate a party conf; errors name the file and the field."""
    conf = load_yaml_model(path, "party conf", PartyConf)
    if conf.sealing_dir is not None:
        conf.sealing_dir = path.parent / conf.sealing_dir
    if conf.tls is not None:
        base = path.parent
        conf.tls = TlsFiles(ca_cert=base / conf.tls.ca_cert, cert=base / conf.tls.cert, key=base / conf.tls.key)
    return conf
