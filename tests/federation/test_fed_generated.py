"""The committed protobuf/gRPC modules are exactly what the proto generates."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedspark.federation import _generate

pytest.importorskip("grpc_tools", reason="grpcio-tools (test extra) regenerates the proto modules")


def test_regenerating_gives_identical_files(tmp_path: Path) -> None:
    written = _generate.generate(tmp_path)
    assert sorted(p.name for p in written) == sorted(_generate.GENERATED_NAMES)
    for path in written:
        committed = _generate.PACKAGE_DIR / path.name
        assert committed.read_text(encoding="utf-8") == path.read_text(encoding="utf-8"), (
            f"{path.name} is stale: run python -m fedspark.federation._generate"
        )


def test_grpc_module_imports_messages_through_the_package() -> None:
    text = (_generate.PACKAGE_DIR / "federation_pb2_grpc.py").read_text(encoding="utf-8")
    assert "from fedspark.federation import federation_pb2" in text
