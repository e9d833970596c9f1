"""The student release of kvstore/raft still imports and constructs once marked regions are stubbed."""

from __future__ import annotations

import random
import sys
import types
from pathlib import Path

import pytest

import kvstore.raft.core as core_module
from kvstore.course.markers import scan_tree


def _stubbed_source(path: Path) -> str:
    """The file as the release tool would leave it: every marked region replaced by a raise."""
    regions, problems = scan_tree(path.parent)
    assert problems == []
    mine = sorted((r for r in regions if r.path.name == path.name), key=lambda r: r.begin_line, reverse=True)
    assert mine, "the file has marked regions"
    lines = path.read_text(encoding="utf-8").splitlines()
    for r in mine:
        lines[r.begin_line - 1 : r.end_line] = [f'{r.indent}raise NotImplementedError("{r.lab}: {r.function}")']
    return "\n".join(lines) + "\n"


def test_stubbed_core_imports_constructs_and_reports_the_lab_to_implement() -> None:
    """Unmarked code never depends on names bound inside marked regions: the stubbed core still builds."""
    source = _stubbed_source(Path(core_module.__file__))
    module = types.ModuleType("kvstore_raft_core_stubbed")
    sys.modules[module.__name__] = module
    try:
        exec(compile(source, "core_stubbed.py", "exec"), module.__dict__)
        core = module.RaftCore("n1", peers=("n1", "n2", "n3"), rng=random.Random(1))
        assert not core.has_ready()
        core.advance(core.ready())
        assert core.log.last_index() == 0
        with pytest.raises(NotImplementedError, match="raft-election"):
            core.tick()
    finally:
        del sys.modules[module.__name__]
