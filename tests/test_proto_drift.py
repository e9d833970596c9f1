"""The committed generated code in kvstore/wire/ matches proto/*.proto."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Lines that record the version of the generator, not the content of the
# protocol: they change with a grpcio-tools upgrade and are not drift.
VERSION_LINE = re.compile(
    r"Protobuf Python Version|GRPC_GENERATED_VERSION = |_runtime_version\.Domain\.PUBLIC|^\s*\d+,\s*$|^\s*'',\s*$"
)


def _normalized(text: str) -> list[str]:
    return [line for line in text.splitlines() if not VERSION_LINE.search(line)]


def _load_generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("proto_generate", ROOT / "proto" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_wire_code_matches_proto_files(tmp_path: Path) -> None:
    """Regenerating from proto/ gives the committed files (run `make proto` if this fails)."""
    fresh = _load_generator().generate(tmp_path)
    assert fresh, "protoc generated nothing"
    committed = sorted((ROOT / "kvstore" / "wire").glob("*_pb2*"))
    assert [f.name for f in fresh] == [f.name for f in committed]
    for new, old in zip(fresh, committed, strict=True):
        assert _normalized(new.read_text()) == _normalized(old.read_text()), (
            f"{old.relative_to(ROOT)} is out of date: run `make proto` and commit the result"
        )


def test_drift_check_notices_a_changed_proto(tmp_path: Path) -> None:
    """The comparison above is not vacuous: a changed field name changes the generated code."""
    gen = _load_generator()
    original = gen.PROTO_DIR
    changed = tmp_path / "proto"
    changed.mkdir()
    for name in gen.PROTO_FILES:
        text = (original / name).read_text()
        (changed / name).write_text(text.replace("leader_hint", "leader_hint_renamed"))
    gen.PROTO_DIR = changed
    out = tmp_path / "out"
    out.mkdir()
    fresh = {f.name: f.read_text() for f in gen.generate(out)}
    committed = (ROOT / "kvstore" / "wire" / "kv_pb2.py").read_text()
    assert _normalized(fresh["kv_pb2.py"]) != _normalized(committed)


def test_every_proto_field_is_documented() -> None:
    """Each message field, enum value, rpc and message has a comment line right above it."""
    for name in ["kv.proto", "raft.proto"]:
        lines = (ROOT / "proto" / name).read_text().splitlines()
        for i, line in enumerate(lines):
            s = line.strip()
            is_field = re.match(r"^((repeated\s+)?[\w.]+\s+)?\w+\s*=\s*\d+;", s)
            is_decl = re.match(r"^(message|enum|service|rpc)\s", s)
            if (is_field or is_decl) and not s.startswith("//"):
                above = lines[i - 1].strip() if i else ""
                assert above.startswith("//"), f"{name}:{i + 1}: undocumented: {s}"
