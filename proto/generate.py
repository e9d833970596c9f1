"""Generate kvstore/wire/ from proto/*.proto (run as ``make proto``).

The .proto files live flat in ``proto/``; protoc is told that they sit at the
virtual path ``kvstore/wire/`` so that the generated modules import each other
as ``kvstore.wire.kv_pb2`` (a package import that works from anywhere).

Output per file: ``X_pb2.py`` (messages), ``X_pb2_grpc.py`` (service stubs and
servicers), and ``.pyi`` stubs for both (mypy-protobuf), so ``mypy --strict``
checks every use of the wire types.

``generate(out_dir)`` is also called by the drift test, which compares a fresh
generation with the committed files.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
WIRE_PACKAGE = "kvstore/wire"
PROTO_FILES = ("kv.proto", "raft.proto")


def _plugin(name: str) -> str:
    """Find a protoc plugin installed next to this Python (the virtualenv's bin/)."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def generate(out_dir: Path) -> list[Path]:
    """Run protoc into ``out_dir``; return the generated files under the package path."""
    from grpc_tools import protoc  # dev dependency, imported only when generating

    args = [
        "protoc",
        f"-I{WIRE_PACKAGE}={PROTO_DIR}",
        f"-I{Path(protoc.__file__).parent / '_proto'}",
        f"--plugin=protoc-gen-mypy={_plugin('protoc-gen-mypy')}",
        f"--plugin=protoc-gen-mypy_grpc={_plugin('protoc-gen-mypy_grpc')}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--mypy_out={out_dir}",
        f"--mypy_grpc_out={out_dir}",
        *[f"{WIRE_PACKAGE}/{name}" for name in PROTO_FILES],
    ]
    code = protoc.main(args)
    if code != 0:
        raise SystemExit(f"protoc failed with exit code {code}")
    return sorted((out_dir / WIRE_PACKAGE).glob("*_pb2*"))


def main() -> None:
    """Regenerate into the source tree."""
    with tempfile.TemporaryDirectory() as tmp:
        files = generate(Path(tmp))
        dest = ROOT / WIRE_PACKAGE
        for old in dest.glob("*_pb2*"):
            old.unlink()
        for f in files:
            (dest / f.name).write_bytes(f.read_bytes())
            print(f"wrote {os.path.relpath(dest / f.name, ROOT)}")


if __name__ == "__main__":
    main()
