"""Regenerate the protobuf/gRPC modules from ``federation.proto``.

Run ``python -m fedspark.federation._generate`` after editing the proto. The
generated files are committed so that installing fedspark never needs
grpcio-tools; a test regenerates them into a temporary folder and compares, so
a proto edit without regeneration fails CI instead of shipping stale code.

protoc names the import in ``federation_pb2_grpc.py`` after the proto's path
relative to the include root, so the proto is copied into a temporary tree laid
out as ``fedspark/federation/federation.proto``: the gRPC module then says
``from fedspark.federation import federation_pb2``, which works however the
package is installed.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROTO_NAME = "federation.proto"
GENERATED_NAMES = ("federation_pb2.py", "federation_pb2.pyi", "federation_pb2_grpc.py")

# The gRPC plugin emits untyped code; mypy --strict checks our code against the
# .pyi of the messages and treats the stub module as typed enough to import.
_GRPC_PREAMBLE = "# mypy: ignore-errors\n"
# protoc's .pyi leaves some generics bare, which --strict reports.
_PYI_PREAMBLE = '# mypy: disable-error-code="type-arg"\n'


class GenerationError(RuntimeError):
    """protoc failed; the message carries its exit status."""


def generate(out_dir: Path, proto: Path | None = None) -> list[Path]:
    """Write the generated modules into ``out_dir`` and return their paths."""
    from grpc_tools import protoc  # type: ignore[import-untyped]  # lazily: a dev-only dependency

    source = proto if proto is not None else PACKAGE_DIR / PROTO_NAME
    with tempfile.TemporaryDirectory(prefix="fedspark-protoc-") as tmp:
        root = Path(tmp)
        tree = root / "fedspark" / "federation"
        tree.mkdir(parents=True)
        shutil.copyfile(source, tree / PROTO_NAME)
        gen = root / "out"
        gen.mkdir()
        args = [
            "grpc_tools.protoc",
            f"--proto_path={root}",
            f"--proto_path={_well_known_protos()}",
            f"--python_out={gen}",
            f"--pyi_out={gen}",
            f"--grpc_python_out={gen}",
            f"fedspark/federation/{PROTO_NAME}",
        ]
        status = protoc.main(args)
        if status != 0:
            raise GenerationError(f"protoc failed on {source} with exit status {status}")
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for name in GENERATED_NAMES:
            text = (gen / "fedspark" / "federation" / name).read_text(encoding="utf-8")
            if name.endswith("_grpc.py"):
                text = _GRPC_PREAMBLE + text
            elif name.endswith(".pyi"):
                text = _PYI_PREAMBLE + text
            target = out_dir / name
            target.write_text(text, encoding="utf-8")
            written.append(target)
    return written


def _well_known_protos() -> str:
    import grpc_tools

    return str(Path(grpc_tools.__file__).resolve().parent / "_proto")


def main() -> int:
    for path in generate(PACKAGE_DIR):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
