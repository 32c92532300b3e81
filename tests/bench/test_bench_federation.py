"""`fedspark bench federation` at a tiny size: one JSON object of the agreed shape, data intact."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fedspark.bench import parse_size
from fedspark.common import ConfigError

FEDSPARK = [sys.executable, "-c", "from fedspark.engine.cli import main; main()"]


def test_bench_federation_prints_one_json_object(tmp_path: Path) -> None:
    proc = subprocess.run([*FEDSPARK, "bench", "federation", "--size", "8MiB"], capture_output=True, text=True,
                          cwd=tmp_path, timeout=600, env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert {"bench", "params", "results", "baseline", "ratio", "target", "meets_target"} <= result.keys()
    assert result["bench"] == "federation" and result["params"]["received_intact"] is True
    assert result["params"]["table_rows"] == (8 << 20) // (8 * 16)
    for name in ("send", "send_table"):
        assert result["results"][name]["unit"] == "MB/s" and result["results"][name]["rate"] > 0
    assert result["results"]["receiver_peak_rss"]["unit"] == "MiB"
    assert result["ratio"] == min(result["ratios"].values()) > 0
    assert isinstance(result["meets_target"], bool)


@pytest.mark.parametrize(("text", "size"), [("1GiB", 1 << 30), ("8MiB", 8 << 20), ("2000000", 2_000_000), ("1.5 MiB", 3 << 19)])
def test_sizes_parse(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["big", "10", "1TiBs"])
def test_bad_sizes_are_config_errors(text: str) -> None:
    with pytest.raises(ConfigError, match="--size"):
        parse_size(text)
