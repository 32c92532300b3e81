"""``conf/exchange.yaml`` and ``fedspark exchange`` flags: what loads, what is refused and how it is named."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fedspark.common import ConfigError
from fedspark.engine.config._exchange import load_exchange_conf

REPO = Path(__file__).resolve().parents[2]
FEDSPARK = [sys.executable, "-c", "from fedspark.engine.cli import main; main()"]


def test_the_shipped_example_loads_with_paths_from_its_folder() -> None:
    conf = load_exchange_conf(REPO / "conf" / "exchange.yaml")
    assert conf.name == "exchange" and conf.port == 9370
    assert conf.routes == {"9999": "guest.example.org:9371", "10000": "host.example.org:9371",
                           "10001": "arbiter.example.org:9371"}
    assert conf.tls is not None and conf.tls.cert == REPO / "conf" / "../certs/exchange/party-exchange.pem"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ({"routes": {9999: "nowhere"}}, r"routes: .*party 9999: 'nowhere' is not host:port"),
        ({"port": 70000}, r"port: "),
        ({"colour": "blue"}, r"colour: Extra inputs are not permitted"),
        (["not", "a", "mapping"], r"must hold a mapping"),
    ],
)
def test_bad_configurations_name_the_file_and_field(tmp_path: Path, content: object, expected: str) -> None:
    path = tmp_path / "exchange.yaml"
    path.write_text(yaml.safe_dump(content))
    with pytest.raises(ConfigError, match=expected) as info:
        load_exchange_conf(path)
    assert str(path) in str(info.value)


def test_the_command_refuses_a_bad_route_flag_and_a_missing_file(tmp_path: Path) -> None:
    bad = subprocess.run([*FEDSPARK, "exchange", "--port", "0", "--route", "9999"], capture_output=True,
                         text=True, cwd=tmp_path, timeout=60)
    assert bad.returncode == 2 and "route '9999' is not PARTY=HOST:PORT" in bad.stderr
    missing = subprocess.run([*FEDSPARK, "exchange", "--conf", "nope.yaml"], capture_output=True, text=True,
                             cwd=tmp_path, timeout=60)
    assert missing.returncode == 2 and "exchange configuration nope.yaml does not exist" in missing.stderr
