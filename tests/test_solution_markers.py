"""Solution markers are well-formed everywhere, and the checker catches each kind of mistake."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from kvstore.course.markers import check_source, known_labs, scan_tree

ROOT = Path(__file__).resolve().parent.parent
LABS = {"raft-election", "lsm-sstable"}


def problems_in(source: str) -> list[str]:
    _, problems = check_source(Path("x.py"), textwrap.dedent(source), LABS)
    return [p.problem for p in problems]


def test_every_marker_pair_in_the_tree_is_well_formed() -> None:
    """The release tool can stub every marked region of this repository."""
    regions, problems = scan_tree(ROOT)
    assert not problems, "\n".join(str(p) for p in problems)
    for r in regions:
        assert r.lab in known_labs()


def test_lab_catalog_ids_are_unique_and_well_named() -> None:
    """Lab ids are the markers' vocabulary: lower-case, hyphenated, unique."""
    import tomllib

    data = tomllib.loads((ROOT / "kvstore" / "course" / "labs.toml").read_text())
    ids = [lab["id"] for lab in data["lab"]]
    assert len(ids) == len(set(ids))
    assert all(i == i.lower() and " " not in i for i in ids)


def test_a_well_formed_region_is_found_with_its_function() -> None:
    """A region inside a method body, after the docstring, is accepted and located."""
    src = textwrap.dedent('''
        class Node:
            def become_candidate(self) -> None:
                """Start an election."""
                # BEGIN SOLUTION raft-election
                self.term += 1
                self.vote = self.id
                # END SOLUTION
    ''')
    regions, problems = check_source(Path("x.py"), src, LABS)
    assert problems == []
    assert [(r.lab, r.function) for r in regions] == [("raft-election", "Node.become_candidate")]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("def f():\n    # BEGIN SOLUTION raft-election\n    return 1\n", "never closed"),
        ("def f():\n    return 1\n    # END SOLUTION\n", "END SOLUTION without a BEGIN"),
        ("# BEGIN SOLUTION raft-election\nx = 1\n# END SOLUTION\n", "not inside a function"),
        ("def f():\n    # BEGIN SOLUTION no-such-lab\n    return 1\n    # END SOLUTION\n", "unknown lab id"),
        ("def f():\n    # BEGIN SOLUTION\n    return 1\n    # END SOLUTION\n", "needs a lab id"),
        (
            "def f():\n    # BEGIN SOLUTION raft-election\n    # BEGIN SOLUTION raft-election\n    x = 1\n"
            "    # END SOLUTION\n    # END SOLUTION\n",
            "BEGIN inside the region",
        ),
        ('def f():\n    # BEGIN SOLUTION raft-election\n    """doc"""\n    # END SOLUTION\n', "docstring"),
        ("def f():\n    # BEGIN SOLUTION raft-election\n    # END SOLUTION\n    return 1\n", "holds no statement"),
        (
            "def f():\n    if True:\n        # BEGIN SOLUTION raft-election\n        x = 1\n"
            "        # END SOLUTION\n    return 1\n",
            "indentation of the function body",
        ),
        ("def f():\n    #BEGIN  SOLUTION raft-election\n    return 1\n", "malformed marker"),
    ],
)
def test_each_kind_of_broken_marker_is_reported(source: str, expected: str) -> None:
    """Unclosed, unopened, outside a function, unknown lab, nested, around the docstring, empty, misplaced."""
    found = problems_in(source)
    assert any(expected in p for p in found), found


def test_marker_text_inside_a_string_is_not_a_marker() -> None:
    """Documentation that shows a marker (in a docstring) is ignored."""
    src = 'def f():\n    """Example:\n\n    # BEGIN SOLUTION raft-election\n    """\n    return 1\n'
    assert problems_in(src) == []
