"""The Raft core stays sans-I/O: checked on its source, not on trust."""

from __future__ import annotations

import ast
from pathlib import Path

import kvstore.raft.core as core_module

FORBIDDEN = {"asyncio", "socket", "time", "os", "threading", "grpc", "subprocess", "selectors"}


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, [alias.name for alias in node.names]))
    return found


def test_core_module_imports_no_io_clock_thread_or_network_modules() -> None:
    """kvstore/raft/core.py imports none of asyncio, socket, time, os, threading, grpc (DESIGN boundary 1)."""
    imports = _imports(Path(core_module.__file__))
    assert imports, "the scan found the module's imports"
    bad = [name for name, _ in imports if name.split(".")[0] in FORBIDDEN]
    assert bad == []


def test_core_module_uses_random_only_as_an_injected_instance() -> None:
    """core.py may import `random` for the type only; it never calls module-level random functions."""
    source = Path(core_module.__file__).read_text(encoding="utf-8")
    tree = ast.parse(source)
    from_random = [names for name, names in _imports(Path(core_module.__file__)) if name == "random" and names]
    assert from_random == [], "no `from random import ...` (that would be the global generator)"
    module_calls = [
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "random"
        and node.attr != "Random"
    ]
    assert module_calls == []


def test_purity_scan_detects_a_forbidden_import(tmp_path: Path) -> None:
    """The scan used above does see `import time` and `from os import path` (it can fail)."""
    sample = tmp_path / "sample.py"
    sample.write_text("import time\nfrom os import path\nimport random\nx = random.random()\n", encoding="utf-8")
    names = [name for name, _ in _imports(sample)]
    assert {"time", "os"} <= {n.split(".")[0] for n in names if n.split(".")[0] in FORBIDDEN}
