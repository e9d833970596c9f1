"""The lin-checker lab: marked regions are well-formed, and the stubbed module still imports and runs around them."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import jepsen_lite.checker as checker
import pytest
from jepsen_lite.history import Operation
from jepsen_lite.models import RegisterModel

from kvstore.course.markers import scan_tree

PACKAGE = Path(checker.__file__).resolve().parent


def _stubbed_source() -> str:
    """checker.py with every lin-checker region replaced the way the release tool does it."""
    regions, problems = scan_tree(PACKAGE)
    assert problems == []
    lines = Path(checker.__file__).read_text().splitlines()
    for region in sorted(regions, key=lambda r: r.begin_line, reverse=True):
        stub = f'{region.indent}raise NotImplementedError("{region.lab}: write {region.function}()")'
        lines[region.begin_line - 1 : region.end_line] = [stub]
    return "\n".join(lines) + "\n"


def test_the_lab_marks_lift_unlift_and_search() -> None:
    """Exactly the three search functions of checker.py are marked, all for lin-checker."""
    regions, problems = scan_tree(PACKAGE)
    assert problems == []
    assert sorted((r.path.name, r.function, r.lab) for r in regions) == [
        ("checker.py", "lift", "lin-checker"),
        ("checker.py", "search", "lin-checker"),
        ("checker.py", "unlift", "lin-checker"),
    ]


def test_the_stubbed_checker_imports_and_only_the_student_parts_are_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the regions stubbed the module still loads, the plumbing works, and checking reaches the stub."""
    module = types.ModuleType("jepsen_lite_stubbed_checker")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(_stubbed_source(), "stubbed_checker.py", "exec"), module.__dict__)
    op = Operation(0, 0, "write", "x", 1, 1, "ok", 0.0, 1.0, 0, 1)
    head = module.make_entries([op])
    assert head.next is not None and head.next.is_call
    assert module.check_operations([], RegisterModel()).verdict == checker.LINEARIZABLE
    with pytest.raises(NotImplementedError, match="lin-checker: write search"):
        module.check_operations([op], RegisterModel())
