"""Parity between the reference and a starter kit: what imports, and every public signature.

Theory of operation. A release must differ from the reference only inside
function bodies. :func:`api_of` starts a Python process that imports from one
tree only (:mod:`kvstore.course.isolate`), imports the given modules, and
reports each module's file and the ``inspect.signature`` of every public
function, class and method defined in it (names not starting with ``_``, plus
``__init__``). Comparing the reference's report with a release's proves that
the release imports cleanly, from itself, with the same interface.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

from kvstore.course.isolate import isolated_env, python, write_bootstrap
from kvstore.errors import InvalidArgument

API_DUMP = r"""
import importlib, inspect, json, re, sys

def sig(obj):
    try:
        return re.sub(r" at 0x[0-9a-f]+", "", str(inspect.signature(obj)))  # default objects' addresses vary
    except (TypeError, ValueError):
        return "<no signature>"

report = {}
for name in sys.argv[1:]:
    module = importlib.import_module(name)
    api = {}
    for attr, obj in vars(module).items():
        if attr.startswith("_") or getattr(obj, "__module__", None) != name:
            continue
        if inspect.isfunction(obj):
            api[attr] = sig(obj)
        elif inspect.isclass(obj):
            api[attr] = "class"
            for member, value in vars(obj).items():
                if member.startswith("_") and member != "__init__":
                    continue
                if inspect.isfunction(value):
                    api[f"{attr}.{member}"] = sig(value)
                elif isinstance(value, (staticmethod, classmethod)):
                    api[f"{attr}.{member}"] = sig(value.__func__)
                elif isinstance(value, property):
                    api[f"{attr}.{member}"] = "property"
    report[name] = {"file": module.__file__, "api": api}
print(json.dumps(report))
"""


def module_name(rel_path: str, packages: dict[str, str]) -> str:
    """The import name of a repository file (``jepsen-lite/checker.py`` -> ``jepsen_lite.checker``).

    Args:
        rel_path: a ``.py`` file, relative to the repository root.
        packages: top-level import name -> folder (:func:`kvstore.course.isolate.package_map`).

    Raises:
        InvalidArgument: the file is in no package.
    """
    parts = Path(rel_path).with_suffix("").parts
    for name, folder in packages.items():
        if parts[0] == folder:
            rest = [p for p in parts[1:] if p != "__init__"]
            return ".".join([name, *rest])
    raise InvalidArgument(f"{rel_path} is not inside a package")


def api_of(tree: Path, modules: list[str], *, timeout_s: float = 120.0) -> dict[str, dict[str, object]]:
    """Import ``modules`` in a process that sees only ``tree``; return each one's file and API.

    Raises:
        InvalidArgument: an import failed (the message carries the traceback).
    """
    with tempfile.TemporaryDirectory(prefix="kv-course-parity-") as tmp:
        boot = write_bootstrap(tree, Path(tmp) / "boot")
        proc = subprocess.run(
            [python(), "-c", API_DUMP, *modules],
            cwd=tree,
            env=isolated_env(tree, boot),
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    if proc.returncode != 0:
        raise InvalidArgument(f"importing {modules} from {tree} failed:\n{proc.stderr[-4000:]}")
    report: dict[str, dict[str, object]] = json.loads(proc.stdout)
    return report
