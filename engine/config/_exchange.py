"""The exchange's configuration (``conf/exchange.yaml``), validated with pydantic.

An exchange needs little: where to listen, the gateway of every party it
serves, and its TLS material. It has no job list and no sealing key: it routes
by header and never reads a payload. Errors name the file and the field.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from fedspark.common import ConfigError
from fedspark.engine.config._job import load_yaml_model


class ExchangeTls(BaseModel):
    """The exchange's own certificate (naming ``name``), its key, and the federation CA."""

    model_config = ConfigDict(extra="forbid")
    ca_cert: Path
    cert: Path
    key: Path


class ExchangeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field("exchange", description="the identity the exchange's certificate names")
    host: str = "127.0.0.1"
    port: int = Field(9370, ge=0, le=65535, description="0 picks a free port (reported on start)")
    routes: dict[str, str] = Field(default_factory=dict, description="party id -> host:port of its gateway")
    tls: ExchangeTls | None = None
    tap_dir: Path | None = Field(None, description="record every forwarded chunk and its header (audits, tests)")
    insecure_plaintext: bool = Field(
        False, description="without tls, allow listening and routes off loopback (plaintext gRPC: nothing is authenticated)"
    )

    @field_validator("routes", mode="before")
    @classmethod
    def _party_ids_as_text(cls, value: object) -> object:
        if isinstance(value, dict):
            return {str(k): str(v) for k, v in value.items()}
        return value

    @field_validator("routes")
    @classmethod
    def _addresses_have_ports(cls, value: dict[str, str]) -> dict[str, str]:
        for party, address in value.items():
            host, _, port = address.rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"party {party}: '{address}' is not host:port")
        return value


def load_exchange_conf(path: Path) -> ExchangeConfig:
    """Read and validate an exchange configuration; relative paths are taken from the file's folder."""
    conf = load_yaml_model(path, "exchange configuration", ExchangeConfig)
    base = path.parent
    if conf.tls is not None:
        conf.tls = ExchangeTls(ca_cert=base / conf.tls.ca_cert, cert=base / conf.tls.cert, key=base / conf.tls.key)
    if conf.tap_dir is not None:
        conf.tap_dir = base / conf.tap_dir
    return conf


def parse_route(text: str) -> tuple[str, str]:
    """``PARTY=HOST:PORT`` from the command line."""
    party, sep, address = text.partition("=")
    if not sep or not party or ":" not in address:
        raise ConfigError(f"route '{text}' is not PARTY=HOST:PORT")
    return party, address
