"""The tree matches the design card, and packaging knows every package."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_design_card_folders_exist() -> None:
    """Every folder the design card names is present."""
    for folder in [
        "proto",
        "kvstore/raft",
        "kvstore/lsm",
        "kvstore/server",
        "kvstore/client",
        "kvstore/sim",
        "cli",
        "tests",
        "jepsen-lite",
        "docs",
        "bench",
    ]:
        assert (ROOT / folder).is_dir(), folder
    assert (ROOT / "pyproject.toml").is_file()
    assert (ROOT / "README.md").is_file()


def test_every_package_is_listed_in_pyproject() -> None:
    """A folder with __init__.py under kvstore/ that pyproject does not list would vanish from a wheel."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(data["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "kvstore").rglob("__init__.py")}
    missing = found - listed
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {sorted(missing)}"
    assert {"kvstore_cli", "jepsen_lite"} <= listed


def test_hyphenated_folders_map_to_import_names() -> None:
    """cli/ imports as kvstore_cli and jepsen-lite/ as jepsen_lite."""
    import jepsen_lite
    import kvstore_cli

    assert Path(kvstore_cli.__file__).parent == ROOT / "cli"
    assert Path(jepsen_lite.__file__).parent == ROOT / "jepsen-lite"
