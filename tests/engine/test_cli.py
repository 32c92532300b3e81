"""The CLI as a user types it: `fedspark examples`, `fedspark version`, and usage errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

FEDSPARK = [sys.executable, "-c", "from fedspark.engine.cli import main; main()"]


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*FEDSPARK, *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def test_examples_writes_the_public_breast_split(tmp_path: Path, test_data: Path) -> None:
    proc = _cli("examples", "--out", "ex", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for name in ("breast_hetero_guest.csv", "breast_hetero_host.csv", "breast_homo_guest.csv", "breast_homo_test.csv"):
        ours, public = pd.read_csv(tmp_path / "ex" / name), pd.read_csv(test_data / name)
        assert list(ours.columns) == list(public.columns)
        pd.testing.assert_frame_equal(ours, public, atol=1e-6, check_exact=False)


def test_version_and_missing_job_file(tmp_path: Path) -> None:
    assert _cli("version", cwd=tmp_path).stdout.strip() == "0.1.0"
    proc = _cli("run", "nope.yaml", cwd=tmp_path)
    assert proc.returncode == 2
    assert "nope.yaml does not exist" in proc.stderr


@pytest.mark.parametrize("args", [("nosuch",), ("run", "--bogus", "job.yaml")], ids=["unknown_command", "unknown_option"])
def test_usage_errors_print_the_usage_line_and_exit_2(tmp_path: Path, args: tuple[str, ...]) -> None:
    """Through the installed console script, as a user types it: no traceback (typer no longer installs click)."""
    script = Path(sys.executable).parent / "fedspark"
    proc = subprocess.run([str(script), *args], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "Usage:" in proc.stderr and "Traceback" not in proc.stderr


def test_certs_init_and_issue_name_the_party(tmp_path: Path) -> None:
    from cryptography import x509

    assert _cli("certs", "init", "--out", "ca", cwd=tmp_path).returncode == 0
    proc = _cli("certs", "issue", "--party", "9999", "--ca", "ca", "--out", "p9999", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    cert = x509.load_pem_x509_certificate((tmp_path / "p9999" / "party-9999.pem").read_bytes())
    assert "9999" in cert.subject.rfc4514_string()
    again = _cli("certs", "init", "--out", "ca", cwd=tmp_path)
    assert again.returncode != 0 and "ca" in again.stderr


def test_bench_paillier_prints_one_json_object(tmp_path: Path) -> None:
    import json

    proc = _cli("bench", "paillier", "--bits", "1024", "--seconds", "0.2", "--allow-insecure-key-size", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert {"bench", "params", "results", "baseline", "ratio", "target", "meets_target"} <= result.keys()
    assert result["bench"] == "paillier" and result["ratio"] > 1
